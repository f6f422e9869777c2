"""The boundary with the host at exit and around its children.

* Background events the thread has taken but not yet sent at exit are handed over (or
  waited for), never left to die with the interpreter.

Every host runs in a child process and pings a loopback collector.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap

import pytest
from helpers import NOTHING_QUIET, child_env, run_child

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
