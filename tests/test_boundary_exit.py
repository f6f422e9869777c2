"""The boundary with the host at exit and around its children.

* Background events the thread has taken but not yet sent at exit are handed over (or
  waited for), never left to die with the interpreter.
* Ctrl-C during the exit wait ends our wait only: every other ``atexit`` handler runs
  (the application's own, ``logging.shutdown``), and then the process ends by SIGINT.

Every host runs in a child process and pings a loopback collector.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from helpers import NOTHING_QUIET, autoping_package, child_env, run_child

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux: PID namespaces, cgroups, SIGCHLD"),
    pytest.mark.skipif(not hasattr(os, "posix_spawn"), reason="the detached sender needs posix_spawn"),
]

#: Seconds a child may run before it counts as hung.
HANG = 30.0


# --- 12. jobs the thread has taken but not yet sent at exit ------------------------------


def test_background_events_logged_just_before_exit_all_arrive(make_collector):
    server = make_collector("delay:0.1")
    code = textwrap.dedent(f"""\
        from scarf_autoping import ScarfEventLogger
        logger = ScarfEventLogger({server.url + "/e"!r})
        pings = [logger.log_event({{"event": "e", "n": n}}, background=True) for n in range(5)]
        pings[-1].wait(0)  # ends the deferral: the thread takes all five at once
        import time; time.sleep(0.05)  # and the program ends
        """)
    child = run_child(code, child_env(), timeout=HANG)
    assert (child.returncode, child.stdout, child.stderr) == (0, "", ""), child
    server.wait_for(5, timeout=20)
    numbers = sorted(json.loads(r.body.decode("utf-8"))["n"] for r in server.settle(NOTHING_QUIET))
    assert numbers == [0, 1, 2, 3, 4], child  # old code: 2 or 3 of them


def test_events_taken_by_the_thread_follow_on_exit_drop(make_collector):
    """What the thread has taken but not started is treated as queued: ``drop`` drops it."""
    server = make_collector("delay:0.2")
    code = textwrap.dedent(f"""\
        import atexit, json
        from scarf_autoping import ScarfEventLogger, worker
        atexit.register(lambda: print(json.dumps(sorted(p.status for p in pings))))  # runs after ours
        logger = ScarfEventLogger({server.url + "/e"!r}, exit_timeout=10)
        pings = [logger.log_event({{"event": "e", "n": n}}, background=True) for n in range(4)]
        for job in worker._queue:
            job.on_exit = "drop"
        pings[-1].wait(0)  # ends the deferral: the thread takes all four at once
        import time; time.sleep(0.05)  # and the program ends
        """)
    child = run_child(code, child_env(), timeout=HANG)
    assert (child.returncode, child.stderr) == (0, ""), child
    statuses = json.loads(child.stdout)
    # The one being sent when exit began is waited for; the others are dropped, none left pending.
    assert set(statuses) <= {"dropped", "sent"} and statuses.count("dropped") >= 3, child


# --- 13. Ctrl-C during the exit wait --------------------------------------------------------


def test_ctrl_c_during_the_exit_wait_lets_every_other_handler_run(make_collector, site, tmp_path):
    server = make_collector("hang")
    autoping_package(site, "pkg_ctrlc", server.url + "/t/{package}", args="on_exit='wait', exit_timeout=30")
    marker = tmp_path / "handler-ran"
    log = tmp_path / "app.log"
    code = textwrap.dedent(f"""\
        import atexit, logging, logging.handlers
        atexit.register(lambda: open({str(marker)!r}, "w").write("ran"))
        memory = logging.handlers.MemoryHandler(100, logging.CRITICAL, logging.FileHandler({str(log)!r}))
        logging.getLogger("app").addHandler(memory)
        logging.getLogger("app").warning("buffered until logging.shutdown")
        import pkg_ctrlc
        """)
    proc = subprocess.Popen([sys.executable, "-c", code], env=child_env(site), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert server.wait_for(1, timeout=HANG), "the ping never reached the collector"
        time.sleep(0.2)  # the request is in flight and the host waits for it at exit
        assert proc.poll() is None, f"the host did not wait at exit: rc={proc.returncode}"
        interrupted = time.monotonic()
        os.kill(proc.pid, signal.SIGINT)
        try:
            stdout, stderr = proc.communicate(timeout=HANG)
        except subprocess.TimeoutExpired:
            pytest.fail("the host hung after SIGINT")
        took = time.monotonic() - interrupted
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert marker.exists(), "an atexit handler registered before ours never ran"
    assert "buffered until logging.shutdown" in log.read_text(), "logging.shutdown never ran"
    assert (stdout, stderr) == (b"", b"")
    assert proc.returncode == -signal.SIGINT  # as an interrupted Python program ends
    assert took < 5.0, f"the host took {took:.2f} s to end after SIGINT (expected well under 1 s)"
