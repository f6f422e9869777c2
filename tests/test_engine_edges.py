"""The delivery engine where the host does something at the wrong moment: forks while a
sender is out or while our thread sends, waits for its own children, is Ctrl-C'd in a
fork, is PID 1, or has no shell; and a ping whose URL is longer than a pipe write.

Each case runs in a child interpreter importing a throwaway package with real metadata
and pinging a loopback collector; each failed against the engine before its fix.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest
from helpers import NOTHING_QUIET, Collector, autoping_package, child_env, free_port, run_child
from test_engine import NO_INTERPRETER, _can_unshare_pid

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "posix_spawn"), reason="the detached sender needs posix_spawn"),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux process semantics (/proc, fork)"),
]


def test_fork_during_the_deferral_keeps_retrying_in_the_parent(site):
    """gunicorn --preload: the app imports, the master forks within milliseconds. A ping
    that retries is handed to a sender that retries for the parent's lifetime: the
    endpoint, refusing for 2.5 s, gets it exactly once."""
    port = free_port()
    autoping_package(site, "pkg_forkearly", f"http://127.0.0.1:{port}/t/{{package}}", args="retry_interval=1")
    servers: list[Collector] = []
    timer = threading.Timer(2.5, lambda: servers.append(Collector(port=port)))  # refused until then
    timer.start()
    code = ("import json, os, time\nimport pkg_forkearly\n"
            "time.sleep(0.1)\n"
            "pid = os.fork()\n"
            "if pid == 0:\n"
            "    os._exit(0 if pkg_forkearly.PING.status == 'disabled' else 3)\n"
            "_, status = os.waitpid(pid, 0)\n"
            "time.sleep(6)\n"
            "print(json.dumps([os.waitstatus_to_exitcode(status), pkg_forkearly.PING.status]))\n")
    try:
        child = run_child(code, child_env(site), args=("-W", "always"), timeout=30)
        assert (child.returncode, child.stderr) == (0, ""), child
        # Unsettled until our thread reads the sender's report (Ping.wait(), exit): nothing woke it here.
        assert json.loads(child.stdout) == [0, "pending"], child
        assert servers, "the collector never came up"
        assert [r.path for r in servers[0].settle(NOTHING_QUIET)] == ["/t/pkg-forkearly"]
    finally:
        timer.cancel()
        for server in servers:
            server.close()


def test_a_host_waiting_for_its_own_child_never_meets_our_sender(site):
    """The sender is never the host's child: ``os.wait()`` returns the host's own child,
    the ping still settles, and the host has no child of ours left, not even a zombie."""
    server = Collector("delay:2")
    try:
        autoping_package(site, "pkg_waitchild", server.url + "/t/{package}")
        code = ("import json, os, time\nimport pkg_waitchild\n"
                "time.sleep(1.3)\n"  # past the deferral: the sender is out, the server answers at 2 s
                "pid = os.fork()\n"
                "if pid == 0:\n"
                "    time.sleep(2.5)\n"  # the sender ends first (at about 3 s)
                "    os._exit(7)\n"
                "wpid, status = os.wait()\n"
                "sent = pkg_waitchild.PING.wait(10)\n"
                "try:\n"
                "    left = os.waitpid(-1, os.WNOHANG)[0]\n"
                "except ChildProcessError:\n"
                "    left = None\n"
                "print(json.dumps([wpid == pid, os.waitstatus_to_exitcode(status), sent,\n"
                "                  pkg_waitchild.PING.status, left]))\n")
        child = run_child(code, child_env(site), args=("-W", "always"), timeout=30)
        assert (child.returncode, child.stderr) == (0, ""), child
        assert json.loads(child.stdout) == [True, 7, True, "sent", None], child
        assert len(server.settle(NOTHING_QUIET)) == 1
    finally:
        server.close()


def test_a_fork_does_not_wait_for_a_thread_sending_from_the_host(site):
    """Where the host sends itself (no interpreter for a sender), a fork while the request
    is out goes on at once; before, each such fork waited half a second for our thread."""
    server = Collector("delay:4")
    try:
        autoping_package(site, "pkg_forkbusy", server.url + "/t/{package}")
        code = (NO_INTERPRETER + "import json, os, time\nimport pkg_forkbusy\n"
                "import scarf_autoping.engine as engine\n"
                # The old engine spent this bound on every such fork: make it unmistakable.
                "engine.STOP_WAIT = 3.0\n"
                "time.sleep(1.8)\n"  # the deferral is over and the request is out (4 s)
                "took = []\n"
                "for _ in range(4):\n"
                "    started = time.monotonic()\n"
                "    pid = os.fork()\n"
                "    if pid == 0:\n"
                "        os._exit(0)\n"
                "    took.append(time.monotonic() - started)\n"
                "    os.waitpid(pid, 0)\n"
                "print(json.dumps([sorted(took)[1], pkg_forkbusy.PING.status]))\n")
        child = run_child(code, child_env(site), timeout=30)
        assert child.returncode == 0, child
        second_fastest, status = json.loads(child.stdout)
        assert status == "pending", child
        # A fork that waited for the sending thread would take STOP_WAIT (3 s here); one that
        # does not takes a few milliseconds. The bound only has to tell the two apart.
        assert second_fastest < 1.5, f"a fork took {second_fastest:.2f} s, expected a few ms: {child}"
    finally:
        server.close()


def test_ctrl_c_while_a_fork_waits_for_us_leaves_nothing_locked(site):
    """A KeyboardInterrupt inside our before-fork hook (simulated: the wait raises it)
    prints nothing, the fork goes on, and autoping() still works afterwards."""
    server = Collector()
    try:
        autoping_package(site, "pkg_forkint", server.url + "/t/{package}")
        code = ("import json, os, threading\nimport pkg_forkint\nfrom scarf_autoping import autoping, engine\n"
                "def interrupted():\n"
                "    raise KeyboardInterrupt\n"
                "engine.ENGINE.stop_idle_thread = interrupted\n"
                "pid = os.fork()\n"
                "if pid == 0:\n"
                "    os._exit(0)\n"
                "_, status = os.waitpid(pid, 0)\n"
                f"t = threading.Thread(target=autoping, args=('other-pkg', {server.url + '/o/{package}'!r}),\n"
                "                     kwargs={'version': '1'}, daemon=True)\n"
                "t.start()\n"
                "t.join(5)\n"
                "print(json.dumps([os.waitstatus_to_exitcode(status), t.is_alive(), pkg_forkint.PING.wait(10)]))\n")
        # The interrupted wait never stopped our thread: CPython 3.12+ warns about that
        # fork, rightly; anything else on stderr (a traceback from the hook) fails.
        child = run_child(code, child_env(site), args=("-W", "ignore::DeprecationWarning"), timeout=30)
        assert (child.returncode, child.stderr) == (0, ""), child
        assert json.loads(child.stdout) == [0, False, True], child
    finally:
        server.close()


@pytest.mark.skipif(not _can_unshare_pid(), reason="needs root and unshare --pid (a PID namespace) on Linux")
def test_pid_1_host_waits_for_a_sender_that_is_out(site):
    """PID 1's exit kills its namespace, a sender included: a ping already with a sender
    is waited for (within exit_timeout), not marked handed-over and lost."""
    server = Collector("delay:1")
    try:
        # The bound is generous: the sender's start-up and imports plus the server's 1 s
        # must fit in it on a loaded machine. A lost ping is "handed-over" or "pending".
        autoping_package(site, "pkg_init_out", server.url + "/t/{package}", args="exit_timeout=8")
        code = ("import atexit, os, time\n"
                "atexit.register(lambda: print(os.getpid(), pkg_init_out.PING.status))\n"
                "import pkg_init_out\n"
                "pkg_init_out.PING.wait(0)\n"  # ends the deferral: the sender starts now
                "time.sleep(0.4)\n")
        proc = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c", code],
                              env=child_env(site), capture_output=True, text=True, timeout=30, check=False,
                              stdin=subprocess.DEVNULL)
        assert (proc.returncode, proc.stderr) == (0, ""), proc
        assert proc.stdout == "1 sent\n", proc
        assert len(server.settle(NOTHING_QUIET)) == 1
    finally:
        server.close()


def test_without_a_shell_the_sender_is_still_no_child_of_ours(site):
    """A distroless image has no /bin/sh: the sender forks itself instead."""
    server = Collector("delay:1.5")
    try:
        autoping_package(site, "pkg_noshell", server.url + "/t/{package}")
        code = ("import glob, json, os, time\nfrom scarf_autoping import spawn\nspawn.SHELL = '/nonexistent/sh'\n"
                "import pkg_noshell\n"
                "pkg_noshell.PING.wait(0)\n"  # ends the deferral: the sender starts now
                "time.sleep(0.5)\n"  # it is out: the server answers at 1.5 s
                "children = ''.join(open(f).read() for f in glob.glob('/proc/self/task/*/children'))\n"
                "sent = pkg_noshell.PING.wait(10)\n"
                "try:\n"
                "    left = os.waitpid(-1, os.WNOHANG)[0]\n"
                "except ChildProcessError:\n"
                "    left = None\n"
                "print(json.dumps([children.split(), sent, left]))\n")
        child = run_child(code, child_env(site), timeout=30)
        assert (child.returncode, child.stderr) == (0, ""), child
        assert json.loads(child.stdout) == [[], True, None], child
        assert len(server.settle(NOTHING_QUIET)) == 1
    finally:
        server.close()


def test_a_url_longer_than_one_pipe_write_still_settles(site):
    """The sender's report line is cut at 3500 bytes; its newline must survive the cut."""
    server = Collector()
    try:
        autoping_package(site, "pkg_longurl", server.url + "/t/{package}/{extra}",
                         args="variables={'extra': 'x' * 5000}")
        code = ("import json\nimport pkg_longurl\n"
                "print(json.dumps([pkg_longurl.PING.wait(10), pkg_longurl.PING.status]))\n")
        started = time.monotonic()
        child = run_child(code, child_env(site), timeout=30)
        assert (child.returncode, child.stderr) == (0, ""), child
        assert json.loads(child.stdout) == [True, "sent"], child
        assert time.monotonic() - started < 8  # not the sender's deadline running out
        assert len(server.settle(NOTHING_QUIET)) == 1
    finally:
        server.close()
