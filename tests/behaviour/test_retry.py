"""Retry until delivered (``autoping(..., retry_interval=...)``), seen from outside.

Child interpreters import throwaway packages pinging a loopback collector that refuses,
answers 503 or 429, or comes up late. ``PING.wait()`` ends the first deferral; the
retries themselves keep their interval. A name resolver that never answers and a sender
that ends without a result are retried, not taken as final. The policy itself (what is
retried, the delays) is in ``unit/test_retry.py``; a fork while a retry waits in
``test_fork.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from helpers import NOTHING_QUIET, autoping_package, child_env, linux_only, run_child, run_host
from loopback import Collector, free_port

pytestmark = pytest.mark.skipif(not hasattr(os, "posix_spawn"), reason="the detached sender needs posix_spawn")


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
    assert all(0.7 <= gap <= 2.5 for gap in gaps), f"gaps {gaps}, expected the 1 s interval jittered by 20%"


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
    took = time.monotonic() - started
    assert took < 10, f"the host took {took:.1f} s, expected about 1 s: exit did not wait for the retry 30 s away"
    assert json.loads(child.stdout) == ["handed-over", 1], child
    reqs = server.expect(2)
    assert len(reqs) == 2 and server.settle(NOTHING_QUIET)[-1].path == "/t/pkg-exitwait"
    assert len(server.requests) == 2


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


#: Seconds a child may take before it counts as hung (each case expects a few seconds).
HANG = 60.0


# --- item 6: a resolver that never answers --------------------------------------------

#: Brings ``lo`` up in a fresh network namespace without ``ip`` (SIOCGIFFLAGS, SIOCSIFFLAGS).
LO_UP = """\
import fcntl, socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
flags = struct.unpack("16sH14s", fcntl.ioctl(s, 0x8913, struct.pack("16sH14s", b"lo", 0, b"")))[1]
fcntl.ioctl(s, 0x8914, struct.pack("16sH14s", b"lo", flags | 1, b""))
"""


#: A name server on 127.0.0.1:53 that reads queries and never answers; on the first
#: query (a sender is now stuck in DNS) the name is added to /etc/hosts (the namespace's own).
SILENT_DNS = """\
import socket, sys, time
hosts, name, ready = sys.argv[1:4]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 53))
s.settimeout(120)  # gone on its own if the test's shell could not stop it
open(ready, "w").close()
s.recvfrom(4096)
time.sleep(0.5)
with open(hosts, "a") as f:
    f.write("127.0.0.1 " + name + "\\n")
while True:
    s.recvfrom(4096)
"""


#: The tests directory, where the namespace's collector script imports its server from.
TESTS = Path(__file__).resolve().parent.parent

#: An HTTP collector inside the namespace, writing each request's path to a file.
NS_COLLECTOR = """\
import os, sys, time
sys.path.insert(0, sys.argv[1])
from loopback import Collector
server = Collector(port=8080)
open(sys.argv[3], "w").close()
end = time.monotonic() + 120  # gone on its own if the test's shell could not stop it
written = None
while time.monotonic() < end:
    time.sleep(0.05)
    text = "".join(r.path + "\\n" for r in list(server.requests))
    if text != written:  # replaced whole, so that a kill never leaves a half-written file
        with open(sys.argv[2] + ".new", "w") as f:
            f.write(text)
        os.replace(sys.argv[2] + ".new", sys.argv[2])
        written = text
"""


def _can_unshare_net() -> bool:
    if shutil.which("unshare") is None or shutil.which("mount") is None or os.geteuid() != 0:
        return False
    probe = subprocess.run(["unshare", "--net", "--mount", "true"], capture_output=True, check=False)
    return probe.returncode == 0


@linux_only
@pytest.mark.skipif(not _can_unshare_net(), reason="needs root, unshare --net --mount and mount (network and "
                                                   "mount namespaces) to make name resolution hang for real")
def test_a_resolver_that_never_answers_is_retried_not_final(site, tmp_path):
    """The network is not up yet: the sender's name lookup hangs past its deadline. With
    retry_interval, that is a failure to retry (before: "the detached sender ended without
    a result", failed for good); once the name resolves, the ping is sent."""
    name = "collector.invalid-test"
    autoping_package(site, "pkg_dns", f"http://{name}:8080/t/{{package}}", args="timeout=1, retry_interval=2")
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\noptions timeout:30 attempts:1\n")
    nsswitch = tmp_path / "nsswitch.conf"
    nsswitch.write_text("hosts: files dns\n")  # no systemd-resolved or mDNS module answering from outside
    for script, text in (("lo_up.py", LO_UP), ("dns.py", SILENT_DNS), ("collector.py", NS_COLLECTOR)):
        (tmp_path / script).write_text(text)
    host = tmp_path / "host.py"
    host.write_text("import json, time\nimport pkg_dns\n"
                    "deadline = time.monotonic() + 40\n"
                    "while pkg_dns.PING.status == 'pending' and time.monotonic() < deadline:\n"
                    "    time.sleep(0.02)\n"
                    "first = [pkg_dns.PING.status, pkg_dns.PING.reason]\n"
                    "sent = pkg_dns.PING.wait(40)\n"
                    "print(json.dumps([first, sent, pkg_dns.PING.status, pkg_dns.PING.attempts]))\n")
    got, dns_ready, http_ready = tmp_path / "requests.txt", tmp_path / "dns.ready", tmp_path / "http.ready"
    py = sys.executable
    script = textwrap.dedent(f"""\
        set -e
        {py} {tmp_path / 'lo_up.py'}
        mount --bind {resolv} /etc/resolv.conf
        mount --bind {hosts} /etc/hosts
        mount --bind {nsswitch} /etc/nsswitch.conf
        for nscd in /run/nscd /var/run/nscd; do  # a name cache daemon would answer from outside
            if [ -d $nscd ]; then mount -t tmpfs none $nscd; fi
        done
        dns= http=
        trap 'kill $dns $http 2>/dev/null || true' EXIT
        {py} {tmp_path / 'dns.py'} {hosts} {name} {dns_ready} &
        dns=$!
        {py} {tmp_path / 'collector.py'} {TESTS} {got} {http_ready} &
        http=$!
        while [ ! -e {dns_ready} ] || [ ! -e {http_ready} ]; do sleep 0.05; done
        {py} {host}
        for _ in $(seq 100); do  # the collector writes what it received every 50 ms
            if [ -s {got} ]; then break; fi
            sleep 0.05
        done
        sleep 0.5
    """)
    try:
        proc = subprocess.run(["unshare", "--net", "--mount", "sh", "-c", script], env=child_env(site),
                              capture_output=True, text=True, timeout=HANG, check=False, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the host hung (expected about 10 s): {exc.stdout!r} {exc.stderr!r}", pytrace=False)
    assert (proc.returncode, proc.stderr) == (0, ""), proc
    first, sent, status, attempts = json.loads(proc.stdout)
    assert first[0] == "retrying" and first[1].startswith("timed out"), proc  # the sender said so
    assert [sent, status] == [True, "sent"], proc
    assert attempts >= 2, proc  # the lookup that hung, then the one that resolved
    assert got.read_text().splitlines() == ["/t/pkg-dns"], proc


@linux_only
def test_a_sender_that_ends_without_a_result_is_retried(site):
    """A sender killed while out (the OOM killer, a container's cleanup) says nothing: with
    retry_interval, that is retried like a failure of the network, not settled for good."""
    server = Collector("delay:2")
    try:
        autoping_package(site, "pkg_killed", server.url + "/t/{package}", args="retry_interval=1")
        code = """\
            import ctypes, glob, json, os, signal, time
            ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: the orphaned sender is ours to kill
            import pkg_killed
            PING = pkg_killed.PING
            PING.wait(0)             # the sender starts; the server answers each request at 2 s
            time.sleep(1.0)
            killed = []
            for name in glob.glob("/proc/self/task/*/children"):
                for pid in open(name).read().split():
                    os.kill(int(pid), signal.SIGKILL)
                    os.waitpid(int(pid), 0)
                    killed.append(pid)
            sent = PING.wait(20)
            print(json.dumps([len(killed), sent, PING.status, PING.attempts]))
        """
        child = run_host(code, child_env(site))
        assert (child.returncode, child.stderr) == (0, ""), child
        assert json.loads(child.stdout) == [1, True, "sent", 2], child
    finally:
        server.close()
