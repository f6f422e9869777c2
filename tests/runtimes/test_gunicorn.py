"""Real gunicorn serving an app whose import pings: with ``--preload`` (the master imports
the app, then forks its workers within milliseconds) and without (each worker imports it).

Seen from outside: requests served, a clean stop on SIGTERM, nothing in gunicorn's log on
our account (no multi-threaded-fork ``DeprecationWarning``), and the pings that arrive at
a loopback collector: one from the master with ``--preload``, one per worker without.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from helpers import NOTHING_QUIET, autoping_package, child_env
from loopback import Collector, free_port

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="gunicorn forks its workers (POSIX)"),
    pytest.mark.skipif(not hasattr(os, "posix_spawn"), reason="the detached sender needs posix_spawn"),
]
gunicorn = pytest.importorskip("gunicorn")

APP = """\
import pkg_gunicorn

def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [pkg_gunicorn.PING.status.encode()]
"""


def _wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"gunicorn exited early: {proc.communicate()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("gunicorn never listened")


@pytest.mark.parametrize("preload", [True, False], ids=["preload", "no-preload"])
def test_gunicorn_serves_stops_cleanly_and_pings_once_per_import(site, preload):
    server = Collector()
    port = free_port()
    try:
        autoping_package(site, "pkg_gunicorn", server.url + "/g/{package}")
        (site / "gunicorn_app.py").write_text(APP, encoding="utf-8")
        # -W always::DeprecationWarning: CPython 3.12+'s multi-threaded-fork warning, shown every
        # time (gunicorn's own ResourceWarnings at exit are not ours to judge).
        argv = [sys.executable, "-W", "always::DeprecationWarning", "-m", "gunicorn", "--workers", "2", "--bind", f"127.0.0.1:{port}",
                "--graceful-timeout", "5", *(["--preload"] if preload else []), "gunicorn_app:app"]
        proc = subprocess.Popen(argv, cwd=site, env=child_env(site, HOME=str(site)), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            _wait_for_port(port, proc)
            bodies = [urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).read() for _ in range(4)]
            time.sleep(2.5)  # past the deferral in every process
        finally:
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert out == "", out
        for word in ("Traceback", "Warning", "[ERROR]", "scarf", "Exception"):
            assert word not in err, err
        # A preloaded worker's copy of the master's ping is settled 'disabled' at the fork.
        assert set(bodies) <= ({b"disabled"} if preload else {b"pending", b"sent"}), bodies
        expected = 1 if preload else 2
        reqs = server.expect(expected, timeout=15, quiet=NOTHING_QUIET)
        assert [r.path for r in reqs] == ["/g/pkg-gunicorn"] * expected, reqs
    finally:
        server.close()
