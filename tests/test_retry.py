"""Retry until delivered (``autoping(..., retry_interval=...)``), seen from outside.

Child interpreters import throwaway packages pinging a loopback collector that refuses,
answers 503 or 429, or comes up late. ``PING.wait()`` ends the first deferral; the
retries themselves keep their interval.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

import pytest
from helpers import NOTHING_QUIET, Collector, autoping_package, child_env, free_port, run_child

from scarf_autoping import autoping, retry

pytestmark = pytest.mark.skipif(not hasattr(os, "posix_spawn"), reason="the detached sender needs posix_spawn")


# --- the policy -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code,after,expected",
    [(None, None, 0.0), (500, None, 0.0), (503, 7.0, 0.0), (429, None, 0.0), (429, 2.0, 2.0),
     (404, None, None), (400, 5.0, None), (410, None, None)],
)
def test_what_is_retried(code, after, expected):
    assert retry.retryable(code, after) == expected


def test_delays_are_jittered_and_honour_retry_after():
    assert retry.next_delay(10.0, 0.0, 0.0) == pytest.approx(8.0)
    assert retry.next_delay(10.0, 0.0, 1.0) == pytest.approx(12.0)
    assert retry.next_delay(1.0, 30.0, 0.5) == 30.0  # the server's Retry-After is later
    assert retry.next_delay(86400.0, 0.0, 1.0) == 86400.0
    assert 0.0 <= retry.jitter_fraction() <= 1.0


@pytest.mark.parametrize("value", [0.5, 0, -1, 86401, float("nan"), True, "60"])
def test_retry_interval_out_of_range_is_the_authors_mistake(value, monkeypatch):
    monkeypatch.setenv("DO_NOT_TRACK", "1")
    with pytest.raises(ValueError, match="retry_interval"):
        autoping("pkg-retry-bad", "https://x.invalid/{package}", retry_interval=value)


# --- real retries -----------------------------------------------------------------------

REPORT = "print(json.dumps([PING_MOD.PING.status, PING_MOD.PING.reason, PING_MOD.PING.attempts]))"


def _host(name: str, wait: float, after: str = "") -> str:
    """Import ``name``, wait for its ping (ending the deferral), report, then ``after``."""
    return (f"import json, os, sys, time\nimport {name} as PING_MOD\n"
            f"PING_MOD.PING.wait({wait})\n{REPORT}\n{after}")


def test_an_endpoint_that_comes_up_late_gets_exactly_one_ping(site):
    port = free_port()
    autoping_package(site, "pkg_late", f"http://127.0.0.1:{port}/t/{{package}}", args="retry_interval=1")
    servers: list[Collector] = []
    timer = threading.Timer(2.5, lambda: servers.append(Collector(port=port)))  # refused until then
    timer.start()
    try:
        child = run_child(_host("pkg_late", 15), child_env(site), timeout=30)
        assert (child.returncode, child.stderr) == (0, ""), child
        status, reason, attempts = json.loads(child.stdout)
        assert (status, reason) == ("sent", "HTTP 204"), child
        assert attempts >= 2, child  # refused at least once first
        assert len(servers[0].settle(NOTHING_QUIET)) == 1
    finally:
        timer.cancel()
        for server in servers:
            server.close()


def test_503_twice_then_delivered_with_one_debug_line_per_attempt(site, make_collector):
    server = make_collector("sequence:503,503,204")
    autoping_package(site, "pkg_503", server.url + "/t/{package}", args="retry_interval=1")
    child = run_child(_host("pkg_503", 15), child_env(site, SCARF_AUTOPING_DEBUG="1"), timeout=30)
    assert child.returncode == 0, child
    assert json.loads(child.stdout) == ["sent", "HTTP 204", 3], child
    lines = child.stderr.splitlines()
    assert [line.split(" failed")[0] for line in lines[:2]] == [
        "scarf-autoping: pkg_503: attempt 1", "scarf-autoping: pkg_503: attempt 2"], child
    assert "(HTTP 503), retrying in 1 s" in lines[0], child
    assert lines[2].startswith("scarf-autoping: pkg_503: sent (HTTP 204)"), child
    reqs = server.settle(0.5)
    assert len(reqs) == 3
    gaps = [b.at - a.at for a, b in zip(reqs, reqs[1:])]
    assert all(0.7 <= gap <= 2.5 for gap in gaps), gaps  # the 1 s interval, jittered by 20%


def test_429_waits_for_retry_after(site, make_collector):
    server = make_collector("sequence:429/3,204")
    autoping_package(site, "pkg_429", server.url + "/t/{package}", args="retry_interval=1")
    child = run_child(_host("pkg_429", 15), child_env(site), timeout=30)
    assert (child.returncode, child.stderr) == (0, ""), child
    assert json.loads(child.stdout) == ["sent", "HTTP 204", 2], child
    first, second = server.settle(0.3)
    assert second.at - first.at >= 2.9  # Retry-After: 3 wins over the 1 s interval


@pytest.mark.parametrize("code", [404, 400])
def test_other_4xx_are_final(site, make_collector, code):
    server = make_collector(f"status:{code}")
    autoping_package(site, "pkg_404", server.url + "/t/{package}", args="retry_interval=1")
    child = run_child(_host("pkg_404", 10, "time.sleep(2.5)"), child_env(site), timeout=30)
    assert (child.returncode, child.stderr) == (0, ""), child
    assert json.loads(child.stdout) == ["failed", f"HTTP {code}", 1], child
    assert len(server.settle(0.3)) == 1  # no second attempt, also not at exit


def test_without_retry_interval_a_failure_is_final(site, make_collector):
    server = make_collector("status:503")
    autoping_package(site, "pkg_once", server.url + "/t/{package}")
    child = run_child(_host("pkg_once", 10, "time.sleep(2)"), child_env(site), timeout=30)
    assert json.loads(child.stdout) == ["failed", "HTTP 503", 1], child
    assert len(server.settle(0.3)) == 1


def test_exit_while_a_retry_waits_hands_it_over_once(site, make_collector):
    server = make_collector("sequence:503,204")
    autoping_package(site, "pkg_exitwait", server.url + "/t/{package}", args="retry_interval=30")
    code = ("import atexit, json\n"
            "atexit.register(lambda: print(json.dumps([pkg_exitwait.PING.status, pkg_exitwait.PING.attempts])))\n"
            "import pkg_exitwait, time\n"
            "pkg_exitwait.PING.wait(3)\n")  # the first attempt fails; the retry is 30 s away
    started = time.monotonic()
    child = run_child(code, child_env(site), timeout=30)
    assert (child.returncode, child.stderr) == (0, ""), child
    assert time.monotonic() - started < 10  # exit did not wait for the retry
    assert json.loads(child.stdout) == ["handed-over", 1], child
    reqs = server.expect(2)
    assert len(reqs) == 2 and server.settle(NOTHING_QUIET)[-1].path == "/t/pkg-exitwait"
    assert len(server.requests) == 2


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts threads in /proc/self/task")
def test_fork_while_a_retry_waits(site, make_collector):
    """No multi-threaded fork warning (-W always), the child sends nothing, the parent's
    ping is delivered once by a detached process that retries for the parent's lifetime,
    and the parent's wait() says so."""
    server = make_collector("sequence:503,204")
    autoping_package(site, "pkg_forkretry", server.url + "/t/{package}", args="retry_interval=1")
    after = (
        "deadline = time.monotonic() + 10\n"
        "while PING_MOD.PING.status != 'retrying' and time.monotonic() < deadline:\n"
        "    time.sleep(0.02)\n"
        "print(json.dumps([PING_MOD.PING.status, PING_MOD.PING.reason, PING_MOD.PING.attempts]))\n"
        "threads = len(os.listdir('/proc/self/task'))\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os._exit(0 if PING_MOD.PING.status == 'disabled' else 3)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "sent = PING_MOD.PING.wait(10)\n"
        "print(json.dumps([threads, os.waitstatus_to_exitcode(status), sent, PING_MOD.PING.status]))\n"
    )
    code = "import json, os, sys, time\nimport pkg_forkretry as PING_MOD\nPING_MOD.PING.wait(0)\n" + after
    child = run_child(code, child_env(site), args=("-W", "always"), timeout=30)
    assert (child.returncode, child.stderr) == (0, ""), child  # no DeprecationWarning about the fork
    first, second = (json.loads(line) for line in child.stdout.splitlines())
    assert first == ["retrying", "HTTP 503", 1], child
    assert second == [2, 0, True, "sent"], child  # our thread was there; the child saw it disabled
    reqs = server.expect(2)
    assert [r.path for r in reqs] == ["/t/pkg-forkretry"] * 2, reqs  # the 503, then delivered once
    assert len(server.settle(NOTHING_QUIET)) == 2


def test_twenty_packages_retrying_share_one_thread(site, make_collector):
    server = make_collector("status:503")
    names = [f"pkg_r{i:02d}" for i in range(20)]
    for name in names:
        autoping_package(site, name, server.url + "/t/{package}", args="retry_interval=1")
    code = (
        "import json, os, time\n"
        f"import {', '.join(names)}\n"
        "time.sleep(2.6)\n"  # the deferral, the first attempts, and into the retries
        "pings = [m.PING for m in (" + ", ".join(names) + ",)]\n"
        "print(json.dumps([len(os.listdir('/proc/self/task')), sorted({p.status for p in pings}),"
        " min(p.attempts for p in pings)]))\n"
    )
    child = run_child(code, child_env(site), timeout=30)
    assert (child.returncode, child.stderr) == (0, ""), child
    threads, statuses, attempts = json.loads(child.stdout)
    assert threads == 2, child  # the main thread and our one worker
    assert statuses == ["retrying"] and attempts >= 1, child
    reqs = server.expect(60, timeout=15)  # tried in the process, then once more each at exit
    for name in names:
        assert sum(r.path == f"/t/{name.replace('_', '-')}" for r in reqs) >= 2, name
