"""Real uWSGI (``pyuwsgi`` from the package registry) serving an app that imports a package
with the one line.

uWSGI forks its workers from C, where ``os.register_at_fork`` hooks never run: a thread of
ours alive in the master at that moment deadlocked every worker. Each case starts a real
server on 127.0.0.1, serves real requests, stops it, and checks what reached the loopback
collector and what uWSGI logged.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from helpers import NOTHING_QUIET, autoping_package, child_env, free_port

pytest.importorskip("pyuwsgi", reason="pyuwsgi (a test extra) is not installed")
UWSGI = Path(sys.executable).parent / "uwsgi"
pytestmark = pytest.mark.skipif(not UWSGI.exists(), reason=f"no uwsgi console script next to {sys.executable}")

APP = """\
import os
import pkg_uw

def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"{os.getpid()} {pkg_uw.PING.status}".encode()]
"""

#: Log lines that would mean we showed up in the host's output.
FORBIDDEN = ("Traceback", "Exception", "subprocess", "scarf", "Fatal", "DeprecationWarning")


def ours(log: str) -> list[str]:
    """Forbidden lines logged while serving. After the stop signal, a worker that
    --max-requests was just respawning can be interrupted in the middle of importing the
    app, and uWSGI prints that KeyboardInterrupt: its shutdown, not us."""
    serving = log.split("SIGINT/SIGTERM received")[0]
    return [line for line in serving.splitlines() if any(word in line for word in FORBIDDEN)]


def _get(url: str, timeout: float = 3.0) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.read().decode()


def serve(site: Path, tmp_path: Path, args: list[str], requests: int) -> tuple[list[tuple[int, str]], str, float]:
    """Start uWSGI, serve ``requests`` requests, stop it; the answers, its log, the stop time."""
    (site / "app.py").write_text(APP, encoding="utf-8")
    port = free_port()
    log = tmp_path / "uwsgi.log"
    cmd = [str(UWSGI), "--master", "--processes", "3", "--http-socket", f"127.0.0.1:{port}",
           "--wsgi-file", str(site / "app.py"), "--die-on-term", "--logto", str(log),
           # pyuwsgi on CPython 3.9 now and then leaves a worker deaf to the stop signal,
           # with or without our package (2 of 12 loaded runs with a plain package): uWSGI
           # then kills it after this many seconds instead of 60. A deadlock of ours shows
           # up before that, as workers that never serve.
           "--worker-reload-mercy", "5", *args]
    proc = subprocess.Popen(cmd, env=child_env(site), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    answers: list[tuple[int, str]] = []
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                answers.append(_get(f"http://127.0.0.1:{port}/"))
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise AssertionError(f"uWSGI never served: {log.read_text(errors='replace')[-2000:]}") from None
                time.sleep(0.1)
        for _ in range(requests - 1):
            answers.append(_get(f"http://127.0.0.1:{port}/"))
    finally:
        stopping = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(f"uWSGI did not stop: {log.read_text(errors='replace')[-2000:]}") from None
    return answers, log.read_text(errors="replace"), time.monotonic() - stopping


@pytest.mark.parametrize(
    "args",
    [[], ["--enable-threads"], ["--max-requests", "2"]],
    ids=["prefork", "prefork-enable-threads", "prefork-max-requests"],
)
def test_preforking_master_serves_and_pings_once(site, tmp_path, collector, args):
    autoping_package(site, "pkg_uw", collector.url + "/t/{package}/{version}")
    answers, log, stop_s = serve(site, tmp_path, args, requests=10)
    assert all(code == 200 for code, _ in answers), answers
    # The master imported the app: its ping was handed to a detached sender, no thread.
    assert all(body.endswith(" handed-over") for _, body in answers), answers
    assert stop_s < 10, log
    assert not ours(log), log
    reqs = collector.expect(1, timeout=15, quiet=NOTHING_QUIET)
    assert [r.path for r in reqs] == ["/t/pkg_uw/1.2.3"], log


@pytest.mark.parametrize("args", [["--lazy-apps"], ["--lazy-apps", "--enable-threads", "--max-requests", "2"]],
                         ids=["lazy-apps", "lazy-apps-threads-max-requests"])
def test_lazy_apps_ping_once_per_worker_at_most(site, tmp_path, collector, args):
    autoping_package(site, "pkg_uw", collector.url + "/t/{package}/{version}")
    answers, log, stop_s = serve(site, tmp_path, args, requests=10)
    assert all(code == 200 for code, _ in answers), answers
    assert stop_s < 10, log
    assert not ours(log), log
    reqs = collector.expect(1, timeout=15, quiet=NOTHING_QUIET)
    workers = {body.split()[0] for _, body in answers}
    recycled = "--max-requests" in args
    # One per worker process that imported the app (recycled workers import it again).
    assert 1 <= len(reqs) <= (3 + 10 if recycled else 3), (len(reqs), workers, log)
    assert all(r.path == "/t/pkg_uw/1.2.3" for r in reqs)
    if not recycled:
        assert len(reqs) <= len(workers) or len(reqs) <= 3


@pytest.mark.skipif(not hasattr(os, "posix_spawn"), reason="the detached sender needs posix_spawn")
def test_retrying_ping_in_the_master_is_retried_without_a_thread(site, tmp_path, make_collector):
    """uWSGI never has our thread: a ping with retry_interval goes to a detached process
    that retries for as long as the master lives."""
    server = make_collector("sequence:503,204")
    autoping_package(site, "pkg_uw", server.url + "/t/{package}/{version}", args="retry_interval=1")
    (site / "app.py").write_text(APP, encoding="utf-8")
    answers, log, _ = serve(site, tmp_path, [], requests=1)
    assert answers[0][0] == 200, answers
    reqs = server.expect(2, timeout=15)
    assert [r.path for r in reqs] == ["/t/pkg_uw/1.2.3"] * 2, log
