"""Black-box: real uWSGI (``pyuwsgi`` from the package registry) serving an app that imports a
package with the one line (contract sections 7 and 11).

uWSGI forks its workers from C, where ``os.register_at_fork`` hooks never run: a thread of
ours alive in the master at that moment deadlocked the workers (the engine before the
host-first rewrite: workers hung, often before their first answer, and SIGINT did not stop
the server; when they did answer, ``THREADS`` below was 1 and the status "pending"). Each
case starts a real server on 127.0.0.1 in its own session, serves real requests, stops it
with SIGINT and checks the answers, the stop time, what reached the loopback collector and
what uWSGI logged.

Facts these tests rely on (pyuwsgi 2.0.30, see /work/notes/uwsgi.md): ``python -m pyuwsgi``
does not work but ``pyuwsgi.run()`` does; SIGINT stops the server in about 1 s; under
pyuwsgi Python threads run whether or not ``--enable-threads`` is given; ``--max-requests``
recycles nothing in a worker's first 60 s unless ``--min-worker-lifetime 0``; the master
logs ``subprocess <pid> exited with code <n>`` for every child it did not create and reaps.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from helpers import NOTHING_QUIET, autoping_package, child_env
from loopback import Collector, free_port

try:
    if sys.platform == "win32":
        raise ImportError("uWSGI does not run on Windows")
    import pyuwsgi  # noqa: F401 - importing it changes nothing in this process (no signal handlers)
except ImportError as exc:
    pytest.skip(f"pyuwsgi (uWSGI from the package registry, a test extra) cannot be imported: {exc}",
                allow_module_level=True)

PACKAGE = "uwsgiprobe"
PROCESSES = 3
#: Through the module rather than a console script: works wherever ``pyuwsgi`` imports.
LAUNCH = (sys.executable, "-c", "import sys, pyuwsgi; sys.exit(pyuwsgi.run())")
#: Seconds a clean stop may take (pyuwsgi needs about 1 s).
STOP_BOUND = 10.0
#: Log text that would mean we showed up in the host's output: a Python traceback or exception,
#: a Python warning, or the master reaping a child it did not create (``subprocess N exited ...``).
FORBIDDEN = ("Traceback", "Exception", "Warning:", "subprocess ", "scarf_autoping")

APP = f"""\
import _thread
import os

import {PACKAGE}

#: Threads alive right after the import (in the master unless --lazy-apps): must be none.
THREADS = _thread._count()


def application(environ, start_response):
    body = f"{{os.getpid()}} {{{PACKAGE}.PING.status}} {{THREADS}}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"""

#: Never through a proxy: every request of ours goes to 127.0.0.1.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
#: ``socket.timeout`` is not ``TimeoutError`` before 3.10.
_TIMEOUTS = (socket.timeout, TimeoutError)


class Uwsgi:
    """One uWSGI server (``--master --processes 3``) in its own session, logging to a file."""

    def __init__(self, tmp_path: Path, site: Path, args: list[str]) -> None:
        app = tmp_path / "app.py"
        app.write_text(APP, encoding="utf-8")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = tmp_path / "uwsgi.log"
        cmd = [*LAUNCH, "--master", "--processes", str(PROCESSES), "--http-socket", f"127.0.0.1:{self.port}",
               "--wsgi-file", str(app), "--logto", str(self.log),
               # pyuwsgi on CPython 3.9 now and then leaves a worker deaf to the stop signal,
               # with or without our package (2 of 12 loaded runs with a package that does not
               # ping): uWSGI then kills it after 5 s instead of 60. A deadlock of ours shows
               # up before that, as workers that never answer.
               "--worker-reload-mercy", "5", *args]
        self.proc = subprocess.Popen(cmd, env=child_env(site), cwd=tmp_path, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        self.stdout = self.stderr = b""

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    def describe(self, collector: Collector | None = None) -> str:
        """uWSGI's log (without its root warnings), its output, and what the collector got."""
        lines = [line for line in self.text().splitlines() if "running as root" not in line and "--uid" not in line]
        got = f"\npings: {[r.target for r in collector.requests]}" if collector is not None else ""
        return ("\n--- uWSGI log (tail) ---\n" + "\n".join(lines[-60:])
                + f"\n--- stdout {self.stdout[-500:]!r}\n--- stderr {self.stderr[-500:]!r}{got}")

    def get(self, timeout: float = 5.0) -> str:
        with _OPENER.open(self.url, timeout=timeout) as response:
            assert response.status == 200, self.describe()
            return response.read().decode()

    def serve(self, count: int, gap: float = 0.0) -> list[str]:
        """Wait until the server answers, then GET it ``count`` times; the bodies."""
        deadline = time.monotonic() + 15
        while True:
            try:
                bodies = [self.get()]
                break
            except OSError as exc:
                # Refused: not listening yet. A timeout: listening but no worker answers (stuck).
                stuck = isinstance(exc, _TIMEOUTS) or isinstance(getattr(exc, "reason", None), _TIMEOUTS)
                if stuck or self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"uWSGI never answered ({exc}):{self.describe()}") from None
                time.sleep(0.05)
        for _ in range(count - 1):
            time.sleep(gap)
            try:
                bodies.append(self.get())
            except OSError as exc:
                raise AssertionError(f"request {len(bodies) + 1} failed ({exc}): workers stuck?{self.describe()}") \
                    from None
        return bodies

    def settle_respawns(self, timeout: float = 10.0) -> None:
        """Wait until every recycled worker has been respawned and the log is quiet.

        A master that respawns workers "too fast" sleeps 2 s first; a SIGINT that lands in
        that sleep leaves the late respawn running, and uWSGI never stops (its own race,
        seen on 3.13 under load). Stopping a settled master is what the tests are about.
        """
        deadline = time.monotonic() + timeout
        last, quiet_since = None, time.monotonic()
        while time.monotonic() < deadline:
            text = self.text()
            if text != last:
                last, quiet_since = text, time.monotonic()
            killed = text.count("killed successfully")
            respawned = text.count("Respawned uWSGI worker")
            if respawned >= killed and time.monotonic() - quiet_since > 0.5:
                return
            time.sleep(0.05)

    def stop(self) -> float:
        """SIGINT to the master; seconds until it exited and its stdout/stderr reached EOF."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGINT)
        try:
            self.stdout, self.stderr = self.proc.communicate(timeout=STOP_BOUND)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"uWSGI did not stop within {STOP_BOUND} s of SIGINT:{self.describe()}") from None
        return time.monotonic() - started

    def leftovers(self) -> bool:
        """True if a process of uWSGI's session (a worker) outlived the master."""
        try:
            os.killpg(self.proc.pid, 0)
        except ProcessLookupError:
            return False
        except OSError:
            return False
        return True

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            self.proc.communicate(timeout=5)
        except (subprocess.TimeoutExpired, ValueError):
            pass


@pytest.fixture
def uwsgi(tmp_path: Path, site: Path, collector: Collector):
    """Start servers for a test (``uwsgi(args)``); whatever is left of them is killed afterwards."""
    autoping_package(site, PACKAGE, collector.url + "/t/{package}/{version}")
    servers: list[Uwsgi] = []

    def start(args: list[str]) -> Uwsgi:
        server = Uwsgi(tmp_path, site, args)
        servers.append(server)
        return server

    yield start
    for server in servers:
        if server.proc.poll() is None or server.leftovers():
            server.kill()


def check_clean_stop(server: Uwsgi, collector: Collector) -> None:
    server.settle_respawns()
    seconds = server.stop()
    assert seconds < STOP_BOUND, server.describe(collector)
    assert not server.leftovers(), f"uWSGI processes outlived the master:{server.describe(collector)}"
    assert server.stdout == b"" and server.stderr == b"", server.describe(collector)
    # Up to the stop only: a worker that --max-requests is respawning when the stop comes can
    # be interrupted mid-import, and uWSGI logs that KeyboardInterrupt (its shutdown, not us).
    serving = server.text().split("SIGINT/SIGTERM received")[0]
    noise = [line for line in serving.splitlines() if any(word in line for word in FORBIDDEN)]
    assert not noise, f"uWSGI logged {noise}:{server.describe(collector)}"


def parse(bodies: list[str]) -> list[tuple[int, str, int]]:
    """``(worker pid, PING.status, threads after import)`` for each answer."""
    out = []
    for body in bodies:
        pid, status, threads = body.split()
        out.append((int(pid), status, int(threads)))
    return out


@pytest.mark.parametrize("threads", [[], ["--enable-threads"]], ids=["prefork", "prefork-enable-threads"])
def test_prefork_serves_and_pings_once(uwsgi, collector: Collector, threads: list[str]) -> None:
    server = uwsgi(threads)
    answers = parse(server.serve(6))
    # The master imported the package: no thread at all, the ping handed to a detached sender
    # at import, which every worker inherited with the rest of the master's memory.
    assert [(status, count) for _, status, count in answers] == [("handed-over", 0)] * 6, \
        f"{answers}{server.describe(collector)}"
    arrived = collector.wait_for(1, timeout=10)
    assert arrived, f"no ping within 10 s while uWSGI ran:{server.describe(collector)}"
    check_clean_stop(server, collector)
    pings = collector.settle(NOTHING_QUIET + 0.5)
    assert [r.path for r in pings] == [f"/t/{PACKAGE}/1.2.3"], \
        f"one ping per uWSGI process tree expected:{server.describe(collector)}"


def test_prefork_recycled_workers_ping_once(uwsgi, collector: Collector) -> None:
    # --max-requests recycles nothing during a worker's first 60 s without --min-worker-lifetime 0.
    server = uwsgi(["--max-requests", "2", "--min-worker-lifetime", "0"])
    answers = parse(server.serve(10, gap=0.1))
    assert [(status, count) for _, status, count in answers] == [("handed-over", 0)] * 10, \
        f"{answers}{server.describe(collector)}"
    assert collector.wait_for(1, timeout=10), f"no ping within 10 s while uWSGI ran:{server.describe(collector)}"
    check_clean_stop(server, collector)
    assert "The work of process" in server.text(), f"no worker was recycled:{server.describe(collector)}"
    assert len({pid for pid, _, _ in answers}) > 1, answers
    pings = collector.settle(NOTHING_QUIET + 0.5)
    assert [r.path for r in pings] == [f"/t/{PACKAGE}/1.2.3"], \
        f"recycled workers must not ping again:{server.describe(collector)}"


def test_lazy_apps_ping_once_per_worker_at_most(uwsgi, collector: Collector) -> None:
    # Each worker imports the app itself (worker_id() 1..3): one ping per worker is acceptable.
    server = uwsgi(["--lazy-apps"])
    answers = parse(server.serve(6))
    assert all(status not in ("failed", "disabled") for _, status, _ in answers), \
        f"{answers}{server.describe(collector)}"
    assert collector.wait_for(1, timeout=10), f"no ping within 10 s while uWSGI ran:{server.describe(collector)}"
    check_clean_stop(server, collector)
    pings = collector.settle(NOTHING_QUIET + 0.5)
    assert 1 <= len(pings) <= PROCESSES, f"{len(pings)} pings:{server.describe(collector)}"
    assert {r.path for r in pings} == {f"/t/{PACKAGE}/1.2.3"}, server.describe(collector)


def test_lazy_apps_recycled_ping_once_per_worker_process_at_most(uwsgi, collector: Collector) -> None:
    # Every respawned lazy worker imports the app again, and may ping again (the engine at
    # commit 5520560 does: 10 requests, 7 pings); never more than once per worker process.
    server = uwsgi(["--lazy-apps", "--max-requests", "2", "--min-worker-lifetime", "0"])
    answers = parse(server.serve(10, gap=0.1))
    assert all(status not in ("failed", "disabled") for _, status, _ in answers), \
        f"{answers}{server.describe(collector)}"
    assert collector.wait_for(1, timeout=10), f"no ping within 10 s while uWSGI ran:{server.describe(collector)}"
    check_clean_stop(server, collector)
    workers = set(re.findall(r"(?:spawned uWSGI worker \d+ \(pid|Respawned uWSGI worker \d+ \(new pid): (\d+)",
                             server.text()))
    assert len(workers) > PROCESSES, f"no worker was recycled:{server.describe(collector)}"
    pings = collector.settle(NOTHING_QUIET + 0.5)
    assert 1 <= len(pings) <= len(workers), f"{len(pings)} pings, {len(workers)} workers:{server.describe(collector)}"
    assert {r.path for r in pings} == {f"/t/{PACKAGE}/1.2.3"}, server.describe(collector)


@pytest.mark.skipif(not hasattr(os, "posix_spawn"), reason="the detached sender needs posix_spawn")
def test_retrying_ping_in_the_master_is_retried_without_a_thread(tmp_path: Path, site: Path, make_collector) -> None:
    """uWSGI never has our thread: a ping with retry_interval goes to a detached process that
    retries for as long as the master lives."""
    server_503 = make_collector("sequence:503,204")
    autoping_package(site, PACKAGE, server_503.url + "/t/{package}/{version}", args="retry_interval=1")
    server = Uwsgi(tmp_path, site, [])
    try:
        answers = parse(server.serve(2))
        assert [(status, count) for _, status, count in answers] == [("handed-over", 0)] * 2, server.describe()
        reqs = server_503.wait_for(2, timeout=15)
        assert [r.path for r in reqs] == [f"/t/{PACKAGE}/1.2.3"] * 2, server.describe(server_503)
        check_clean_stop(server, server_503)
    finally:
        if server.proc.poll() is None or server.leftovers():
            server.kill()
