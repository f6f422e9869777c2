"""A host that forks: right after the import (gunicorn ``--preload``), during the deferral,
while a retry waits, while our thread sends or a sender is out, after ``closerange``, with
Ctrl-C inside our fork hook, and as logging or queueing races the fork. The child gets a
disabled copy of the parent's ping and its own fresh worker; the parent keeps its ping;
nothing deadlocks and nothing is sent twice.

Elsewhere, because they belong to their suite's harness: the fork under ``-W always`` with
a ping in flight (``test_faults.py::test_fork``), a SIGCHLD-reaping host that forks
(``test_host_boundary.py``), a forked child and the parent's connection pool
(``unit/test_transport.py``).
"""

from __future__ import annotations

import json
import os
import sys
import threading

import pytest
from helpers import (
    NO_INTERPRETER,
    NOTHING_QUIET,
    QUERY_T,
    autoping_package,
    child_env,
    linux_only,
    needs_posix_spawn,
    run_child,
    run_host,
)
from helpers import collector_template as _template
from loopback import Collector, free_port

needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


@needs_fork
@pytest.mark.parametrize("delay", [0.0, 0.005, 0.02, 0.05])
def test_fork_soon_after_import_never_deadlocks_when_logging_arrives_late(site, collector, delay):
    """The host has not imported logging; the worker imports it (registering logging's fork
    hook after ours) and then urllib3, which needs logging's lock. A fork in that phase
    deadlocked: logging's newer hook held its lock while ours waited for the worker."""
    autoping_package(site, "pkg_late_log", collector.url + "/l{?version}")
    child = run_child(
        f"""
        import os, sys, time, warnings
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with a live thread
        assert "logging" not in sys.modules
        import pkg_late_log
        time.sleep({delay})
        for _ in range(3):
            pid = os.fork()
            if pid == 0:
                import requests  # the child can import what the worker was importing
                os._exit(0)
            os.waitpid(pid, 0)
        print("ok", pkg_late_log.PING.wait(5))
        """,
        child_env(site),
        timeout=20,
    )
    assert child.returncode == 0, child
    assert child.stdout.strip() == "ok True"
    assert len(collector.settle(0.3)) == 1


@needs_fork
def test_fork_between_registering_and_queueing_settles_the_childs_copy(site, collector):
    child = run_child(
        f"""
        import os, threading, time
        import scarf_autoping as s
        from scarf_autoping import engine
        s.autoping("first", "{collector.url}/t/{{package}}")
        real = engine.ENGINE.submit
        def slow_submit(job):  # widen the window between the registry and the queue
            time.sleep(0.3)
            real(job)
        engine.ENGINE.submit = slow_submit
        t = threading.Thread(target=s.autoping, args=("second", "{collector.url}/t/{{package}}"))
        t.start()
        time.sleep(0.1)
        pid = os.fork()
        if pid == 0:
            p = s.autoping("second", "{collector.url}/t/{{package}}")
            print("child", p.status, p.wait(2), flush=True)
            os._exit(0)
        os.waitpid(pid, 0)
        t.join()
        print("parent", s.REGISTRY.pings["second"].wait(5))
        """,
        child_env(None, PYTHONWARNINGS="ignore::DeprecationWarning"),
        timeout=20,
    )
    assert child.returncode == 0, child
    assert child.stdout.splitlines() == ["child disabled False", "parent True"]
    # "first" was handed to a detached sender at the fork; it goes out after the deferral.
    collector.wait_for(2, timeout=10)
    assert sorted(r.path for r in collector.settle(0.5)) == ["/t/first", "/t/second"]


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_fork_while_worker_imports_its_dependencies(collector, site):
    autoping_package(site, "pkg_fork", _template(collector, QUERY_T))
    child = run_child(
        """
        import os, sys, warnings
        warnings.simplefilter("ignore", DeprecationWarning)  # CPython >= 3.12 warns on fork with threads
        import pkg_fork
        pid = os.fork()  # the worker is importing requests/distro right now
        if pid == 0:
            import requests  # must not deadlock on an import lock held by a thread that is gone
            import distro
            p = pkg_fork.PING
            sys.stdout.write("child %s %s\\n" % (p.status, "requests" in sys.modules))
            sys.stdout.flush()
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        print("parent", os.waitstatus_to_exitcode(status), pkg_fork.PING.wait(5))
        """,
        child_env(site),
        timeout=20,
    )
    assert child.returncode == 0, child
    lines = sorted(child.stdout.splitlines())
    assert lines[0].startswith("child ") and lines[0].endswith(" True")
    assert lines[1] == "parent 0 True"
    assert len(collector.expect(1, quiet=0.5)) == 1


# --- real retries -----------------------------------------------------------------------

REPORT = "print(json.dumps([PING_MOD.PING.status, PING_MOD.PING.reason, PING_MOD.PING.attempts]))"


def _host(name: str, wait: float, after: str = "") -> str:
    """Import ``name``, wait for its ping (ending the deferral), report, then ``after``."""
    return (f"import json, os, sys, time\nimport {name} as PING_MOD\n"
            f"PING_MOD.PING.wait({wait})\n{REPORT}\n{after}")


@needs_posix_spawn
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


@linux_only
@needs_posix_spawn
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


@linux_only
@needs_posix_spawn
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


@linux_only
@needs_posix_spawn
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


@linux_only
@needs_posix_spawn
def test_exit_after_a_fork_and_closerange_does_not_hang(site):
    """A server forks while a sender is out, then closes every descriptor and makes a pipe
    with our old number. Our thread, stopped by the fork, had not read the sender's pipe:
    exit read the host's (blocking, empty) pipe instead and hung forever."""
    server = Collector("delay:3")
    try:
        autoping_package(site, "pkg_fdfork", server.url + "/t/{package}")
        code = """\
            import atexit, json, os, sys, time
            def report():  # registered first: runs after the library's exit hook
                ping = sys.modules["pkg_fdfork"].PING
                print(json.dumps([ping.status, ping.reason]), flush=True)
            atexit.register(report)
            import pkg_fdfork
            PING = pkg_fdfork.PING
            PING.wait(0)             # the sender starts; the server answers at 3 s
            time.sleep(0.5)
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            os.waitpid(pid, 0)
            os.closerange(3, 1024)
            r, w = os.pipe()         # the host keeps both ends: a read would block forever
        """
        child = run_host(code, child_env(site), timeout=30, expected="an exit within a second")
        assert (child.returncode, child.stderr) == (0, ""), child
        status, _reason = json.loads(child.stdout)
        assert status == "handed-over", child
        assert len(server.expect(1, timeout=15, quiet=NOTHING_QUIET)) == 1
    finally:
        server.close()


# --- item 14: a retrying ping handed to a sender at a fork --------------------------------


@linux_only
@needs_posix_spawn
def test_after_a_fork_wait_says_true_once_the_looping_sender_delivers(site):
    """gunicorn --preload: the master forks during the deferral; its retrying ping goes to a
    sender that retries for the master's lifetime. wait() keeps its meaning: True once
    delivered (before: False at once, with the status handed-over)."""
    port = free_port()
    autoping_package(site, "pkg_forkwait", f"http://127.0.0.1:{port}/t/{{package}}", args="retry_interval=1")
    servers: list[Collector] = []
    timer = threading.Timer(2.0, lambda: servers.append(Collector(port=port)))  # refused until then
    timer.start()
    code = """\
        import json, os, time
        import pkg_forkwait
        time.sleep(0.1)
        pid = os.fork()
        if pid == 0:
            os._exit(0 if pkg_forkwait.PING.status == "disabled" else 3)
        _, status = os.waitpid(pid, 0)
        before = pkg_forkwait.PING.status
        sent = pkg_forkwait.PING.wait(20)
        print(json.dumps([os.waitstatus_to_exitcode(status), before, sent, pkg_forkwait.PING.status]))
    """
    try:
        child = run_host(code, child_env(site))
        assert (child.returncode, child.stderr) == (0, ""), child
        assert json.loads(child.stdout) == [0, "pending", True, "sent"], child
        assert servers, "the collector never came up"
        assert [r.path for r in servers[0].settle(NOTHING_QUIET)] == ["/t/pkg-forkwait"]
    finally:
        timer.cancel()
        for server in servers:
            server.close()
