"""The library at the boundary with its host: the host's descriptors, signals, children and
reaping never meet ours.

* Descriptors: a pipe or log file the host opened on a number we used and closed is never
  read or closed by us.
* Signals: a signal the host blocks is never delivered to our thread; a signal handler that
  calls ``autoping()`` or waits on a ping while the main thread is inside our locked section
  neither deadlocks nor waits; the state lock forgets a wait that failed.
* Children: a host that reaps with ``os.wait()`` from a SIGCHLD handler (in life, at exit,
  across a fork, or starting after the import), gunicorn's arbiter, and a host waiting for
  its own child never meet our detached sender.

Each case runs a host in a child interpreter that imports a throwaway package with real
metadata and pings a loopback collector; each failed against the engine before its fix
(issue 16). Time bounds only catch hangs.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap

import pytest
from helpers import NOTHING_QUIET, autoping_package, child_env, make_package, run_child, run_host
from loopback import Collector

import scarf_autoping

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "posix_spawn"), reason="the detached sender needs posix_spawn"),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux process semantics (/proc, fork, signals)"),
]


# --- item 2: descriptors the host closed and reused -------------------------------------


def test_the_hosts_pipe_that_reuses_our_number_is_never_read(site):
    """A host closes every descriptor (os.closerange) while a sender is out, then makes a
    pipe that gets our result pipe's number: what it writes there, it reads back intact."""
    server = Collector("delay:3")
    try:
        autoping_package(site, "pkg_fdpipe", server.url + "/t/{package}")
        code = """\
            import json, os, select, time
            import pkg_fdpipe
            PING = pkg_fdpipe.PING
            PING.wait(0)             # the deferral ends: the sender starts, the server answers at 3 s
            time.sleep(0.5)          # the sender is out, our thread polls its pipe
            os.closerange(3, 1024)
            r, w = os.pipe()
            os.write(w, b"host data")
            time.sleep(0.5)          # our thread polls every 20 ms
            ready = select.select([r], [], [], 2)[0]
            data = os.read(r, 100) if ready else None
            print(json.dumps([r, data.decode() if data else None, PING.status, PING.reason]))
        """
        child = run_host(code, child_env(site))
        assert (child.returncode, child.stderr) == (0, ""), child
        _fd, data, status, reason = json.loads(child.stdout)
        assert data == "host data", child
        assert status == "handed-over" and "unknown" in reason, child
        assert [r.path for r in server.expect(1, timeout=15, quiet=NOTHING_QUIET)] == ["/t/pkg-fdpipe"]
    finally:
        server.close()


def test_the_hosts_log_file_that_reuses_our_number_is_never_closed(site, tmp_path):
    """The host reopens its log file after os.closerange and gets our number: when the
    sender ends, the log file stays open and writable."""
    server = Collector("delay:1.5")
    log = tmp_path / "host.log"
    try:
        autoping_package(site, "pkg_fdlog", server.url + "/t/{package}")
        code = f"""\
            import json, os, time
            import pkg_fdlog
            PING = pkg_fdlog.PING
            PING.wait(0)             # the sender starts; the server answers at 1.5 s
            time.sleep(0.5)
            os.closerange(3, 1024)
            log = open({str(log)!r}, "w")
            log.write("before\\n"); log.flush()
            PING.wait(10)            # the sender ends meanwhile
            time.sleep(3)            # and our thread has seen it
            try:
                log.write("after\\n"); log.flush(); error = None
            except OSError as exc:
                error = str(exc)
            print(json.dumps([log.fileno(), error, PING.status, PING.reason]))
        """
        child = run_host(code, child_env(site))
        assert (child.returncode, child.stderr) == (0, ""), child
        _fd, error, status, reason = json.loads(child.stdout)
        assert error is None, child
        assert log.read_text() == "before\nafter\n"
        assert status == "handed-over" and "unknown" in reason, child
        assert len(server.expect(1, timeout=15, quiet=NOTHING_QUIET)) == 1
    finally:
        server.close()


# --- item 3: signals ------------------------------------------------------------------


def test_a_signal_the_host_blocks_is_not_delivered_to_our_thread(site, collector):
    """The host blocks SIGTERM and SIGUSR1 around a critical section and signals itself
    inside it: both stay pending for the host (it takes SIGTERM with sigtimedwait, SIGUSR1's
    handler runs once it unblocks), while the ping still goes out."""
    autoping_package(site, "pkg_sigmask", collector.url + "/t/{package}")
    code = """\
        import json, os, signal, time
        got = []
        signal.signal(signal.SIGUSR1, lambda *args: got.append(1))
        import pkg_sigmask
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGUSR1})
        time.sleep(0.2)              # our thread is in its deferral
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGUSR1)
        time.sleep(1.5)              # past the deferral: the ping goes to a sender
        inside = len(got)
        pending = sorted(int(s) for s in signal.sigpending())
        taken = signal.sigtimedwait({signal.SIGTERM}, 0)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})
        after = len(got)
        print(json.dumps([inside, pending, taken and taken.si_signo, after, pkg_sigmask.PING.wait(10)]))
    """
    child = run_host(code, child_env(site))
    assert (child.returncode, child.stderr) == (0, ""), child  # -15: SIGTERM went to our thread
    assert json.loads(child.stdout) == [0, [10, 15], 15, 1, True], child
    assert len(collector.settle(0.3)) == 1


# --- item 15: a signal handler that calls autoping() ----------------------------------


def alarm_inside(when: str, package: str, late_call: str, report: str, first: str = "scarf_autoping") -> str:
    """A child that imports ``first``, then ``package`` with SIGALRM raised once, from a
    profile hook, at the first call event for which ``when`` (an expression of ``frame``) is
    true; the handler appends ``late_call`` (an expression) to ``late``. ``report`` is
    printed as JSON afterwards."""
    return f"""\
        import json, signal, sys
        import {first}
        from scarf_autoping import autoping, engine
        late = []
        def handler(signum, frame):
            late.append({late_call})
        signal.signal(signal.SIGALRM, handler)
        fired = []
        def profile(frame, event, arg):
            if event == "call" and not fired and ({when}):
                fired.append(1)
                signal.raise_signal(signal.SIGALRM)
        sys.setprofile(profile)
        import {package}
        sys.setprofile(None)
        print(json.dumps({report}))
    """


def test_a_signal_handler_calling_autoping_inside_submit_does_not_deadlock(site, collector):
    """SIGALRM arrives while the main thread is inside the engine's locked section (raised
    there on purpose, from a profile hook on the call that runs under the lock); its
    handler calls autoping() for another package. Both pings are delivered."""
    autoping_package(site, "pkg_siga", collector.url + "/a/{package}")
    make_package(site, "pkg_sigb")
    code = alarm_inside("frame.f_code is engine.Engine.ensure_thread.__code__", "pkg_siga",
                        f"autoping('pkg_sigb', {collector.url + '/b/{package}'!r})",
                        "[len(fired), len(late), pkg_siga.PING.wait(10), bool(late) and late[0].wait(10)]")
    child = run_host(code, child_env(site), timeout=30, expected="about 2 s")
    assert (child.returncode, child.stderr) == (0, ""), child
    assert json.loads(child.stdout) == [1, 1, True, True], child
    assert sorted(r.path for r in collector.settle(0.3)) == ["/a/pkg-siga", "/b/pkg-sigb"]


def test_a_signal_handler_calling_autoping_while_the_checks_load_raises_nothing(site, collector):
    """SIGALRM arrives while the main thread's autoping() is importing the template's checks
    (raised from a profile hook on the body of ``facts``, which ``checks`` imports first, so
    ``checks`` is half-initialised); its handler calls autoping() for another package. The
    handler's call cannot use our half-loaded modules: it raises nothing (before, its
    ImportError went through the host's import) and is not sent; the first ping is."""
    autoping_package(site, "pkg_chka", collector.url + "/a/{package}")
    make_package(site, "pkg_chkb")
    code = alarm_inside("frame.f_code.co_name == '<module>' and frame.f_code.co_filename.endswith('facts.py')",
                        "pkg_chka", f"autoping('pkg_chkb', {collector.url + '/b/{package}'!r})",
                        "[len(fired), [(p.status, p.reason) for p in late], pkg_chka.PING.wait(10)]")
    child = run_host(code, child_env(site), timeout=30, expected="about 2 s")
    assert (child.returncode, child.stderr) == (0, ""), child
    assert json.loads(child.stdout) == [1, [["disabled", scarf_autoping.REENTRANT]], True], child
    assert sorted(r.path for r in collector.settle(0.3)) == ["/a/pkg-chka"]


def test_the_state_lock_forgets_a_wait_that_failed(site):
    """Error paths of the state lock: a wait that times out, and one a signal handler ends
    with an exception (Ctrl-C), leave no trace; a thread inside is seen as inside until it
    has let go."""
    code = """\
        import json, signal, threading, time
        from scarf_autoping import engine
        lock = engine.StateLock()
        seen = []
        holder_in, holder_go = threading.Event(), threading.Event()
        def hold():
            with lock:
                seen.append(lock.held_here())
                holder_in.set()
                holder_go.wait(5)
            seen.append(lock.held_here())
        t = threading.Thread(target=hold)
        t.start()
        holder_in.wait(5)
        timed_out = lock.acquire(True, 0.05)
        after_timeout = lock.held_here()
        def interrupt(*args):
            raise KeyboardInterrupt
        signal.signal(signal.SIGALRM, interrupt)
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        try:
            lock.acquire()
            interrupted = False
        except KeyboardInterrupt:
            interrupted = True
        after_interrupt = lock.held_here()
        holder_go.set()
        t.join(5)
        with lock:
            inside = lock.held_here()
        print(json.dumps([seen, timed_out, after_timeout, interrupted, after_interrupt, inside, lock.held_here()]))
    """
    child = run_host(code, child_env(site), timeout=30, expected="well under a second")
    assert (child.returncode, child.stderr) == (0, ""), child
    assert json.loads(child.stdout) == [[True, False], False, False, True, False, True, False], child


def test_a_signal_handler_waiting_on_a_ping_inside_submit_returns_at_once(site, collector):
    """The same interruption, but the handler calls ``PING.wait()`` with no timeout for a
    ping already registered: nothing can settle while it runs on the thread that holds our
    lock, so wait() returns at once (False) instead of hanging the host; both pings are
    delivered afterwards."""
    autoping_package(site, "pkg_waita", collector.url + "/a/{package}")
    autoping_package(site, "pkg_waitb", collector.url + "/b/{package}")
    code = alarm_inside("frame.f_code is engine.Engine.ensure_thread.__code__", "pkg_waitb",
                        "pkg_waita.PING.wait()",
                        "[len(fired), late, pkg_waita.PING.wait(10), pkg_waitb.PING.wait(10)]", first="pkg_waita")
    child = run_host(code, child_env(site), timeout=30, expected="about 2 s")
    assert (child.returncode, child.stderr) == (0, ""), child
    assert json.loads(child.stdout) == [1, [False], True, True], child
    assert sorted(r.path for r in collector.settle(0.3)) == ["/a/pkg-waita", "/b/pkg-waitb"]


#: Seconds a child may run before it counts as hung.
HANG = 30.0


# --- 7. a host that handles SIGCHLD itself ------------------------------------------------

#: A host whose SIGCHLD handler reaps with os.wait() and records what it got; it has a
#: child of its own. Its last atexit handler (registered before the import, so it runs
#: after ours) lingers, as a slow one does, then prints
#: [pids reaped, errors, its own child's pid, ping status].
#: A SIGCHLD handler as such hosts write it: it reaps whatever child ended.
REAPER = """\
reaped, errors = [], []

def on_sigchld(signum, frame):
    try:
        reaped.append(os.wait()[0])
    except ChildProcessError as exc:
        errors.append(type(exc).__name__)
"""


SIGCHLD_HOST = """\
import atexit, json, os, signal, subprocess, sys, time
""" + REAPER.replace("{", "{{").replace("}", "}}") + """
def report():
    time.sleep({linger})  # a SIGCHLD of ours would be handled in here
    print(json.dumps([reaped, errors, own.pid, pkg_chld.PING.status]))

signal.signal(signal.SIGCHLD, on_sigchld)
own = subprocess.Popen(["sleep", "{own_sleep}"])
atexit.register(report)
import pkg_chld
"""


def _until_reaped() -> str:
    return ("deadline = time.monotonic() + 20\n"
            "while not reaped and time.monotonic() < deadline:\n"
            "    time.sleep(0.01)\n")


def test_a_host_that_reaps_its_children_never_meets_ours_while_it_lives(make_collector, site):
    server = make_collector("delay:0.1")
    autoping_package(site, "pkg_chld", server.url + "/t/{package}")
    code = (SIGCHLD_HOST.format(own_sleep=0.3, linger=0.3) + _until_reaped()
            + "time.sleep(1.5)\n"  # past the deferral: our thread delivers the ping now
            + "pkg_chld.PING.wait(20)\n")
    child = run_child(code, child_env(site), timeout=HANG)
    assert (child.returncode, child.stderr) == (0, ""), child
    reaped, errors, own, status = json.loads(child.stdout)
    assert errors == [], child  # old code: our shell's SIGCHLD made its os.wait() fail
    assert reaped == [own], child  # its own child, and nothing of ours
    assert status == "sent", child
    assert len(server.settle(NOTHING_QUIET)) == 1


def test_a_host_that_reaps_its_children_never_meets_ours_at_exit(make_collector, site):
    server = make_collector("delay:0.1")
    autoping_package(site, "pkg_chld", server.url + "/t/{package}", args="exit_timeout=10")
    # Exits within the deferral; its last handler lingers long enough for a sender to end.
    code = SIGCHLD_HOST.format(own_sleep=0.1, linger=2.5) + _until_reaped()
    child = run_child(code, child_env(site), timeout=HANG)
    assert (child.returncode, child.stderr) == (0, ""), child
    reaped, errors, own, status = json.loads(child.stdout)
    assert errors == [], child
    assert reaped == [own], child
    assert status == "sent", child  # sent from the host within exit_timeout: no process was started
    assert len(server.settle(NOTHING_QUIET)) == 1


def test_a_host_that_reaps_its_children_and_forks_during_the_deferral_never_meets_ours(make_collector, site):
    """A fork during the deferral handed the ping to a sender from the fork hook: its shell's
    SIGCHLD reached the host's handler right as the host managed its new child."""
    server = make_collector("delay:0.1")
    autoping_package(site, "pkg_chld", server.url + "/t/{package}")
    code = (SIGCHLD_HOST.format(own_sleep=0.1, linger=0.3) + _until_reaped()
            + "reaped.clear()\n"
            + "time.sleep(0.1)\n"  # our thread is in its deferral
            + "child = os.fork()\n"
            + "if child == 0:\n"
            + "    time.sleep(0.3)\n"
            + "    os._exit(0)\n"
            + "deadline = time.monotonic() + 20\n"
            + "while not reaped and time.monotonic() < deadline:\n"
            + "    time.sleep(0.01)\n"
            + "own.pid = child\n"  # the child it reaps now
            + "pkg_chld.PING.wait(20)\n")
    child = run_child(code, child_env(site), args=("-W", "default::DeprecationWarning"), timeout=HANG)
    assert (child.returncode, child.stderr) == (0, ""), child  # no multi-threaded fork warning either
    reaped, errors, own, status = json.loads(child.stdout)
    assert errors == [], child
    assert reaped == [own], child
    assert status == "sent", child
    assert len(server.settle(NOTHING_QUIET)) == 1


def test_gunicorns_reaper_keeps_the_detached_sender(make_collector, site):
    """gunicorn's arbiter reaps with waitpid(-1, WNOHANG) and ignores pids it does not know:
    its SIGCHLD handler is no reason to send from the host (a fork would then meet our thread)."""
    server = make_collector()
    autoping_package(site, "pkg_chld", server.url + "/t/{package}")
    code = textwrap.dedent("""\
        import json, signal, sys
        class Arbiter:
            def handle_chld(self, signum, frame):
                pass
        Arbiter.__module__ = Arbiter.handle_chld.__module__ = "gunicorn.arbiter"
        signal.signal(signal.SIGCHLD, Arbiter().handle_chld)
        import pkg_chld
        pkg_chld.PING.wait(20)
        print(json.dumps([pkg_chld.PING.status, "requests" in sys.modules]))
        """)
    child = run_child(code, child_env(site), timeout=HANG)
    assert (child.returncode, child.stderr) == (0, ""), child
    assert json.loads(child.stdout) == ["sent", False], child  # sent by a sender: requests never imported here
    assert len(server.settle(NOTHING_QUIET)) == 1


def test_a_host_that_starts_reaping_after_the_import_never_meets_ours(make_collector, site):
    """The usual order: import the package, then install the SIGCHLD handler. A host that
    never imports ``threading`` (before 3.13 our thread must not be the one to) gets no
    process of ours while it lives: the ping waits for its own thread, here exit."""
    server = make_collector("delay:0.1")
    autoping_package(site, "pkg_late", server.url + "/t/{package}", args="exit_timeout=10")
    code = "import atexit, json, os, signal, sys, time\n" + REAPER + textwrap.dedent("""\
        atexit.register(lambda: print(json.dumps([reaped, errors, pkg_late.PING.status, threading_before])))
        import pkg_late
        threading_before = "threading" in sys.modules
        signal.signal(signal.SIGCHLD, on_sigchld)
        time.sleep(2.5)  # well past the deferral: the old engine started its shell here
    """)
    child = run_child(code, child_env(site), timeout=HANG)
    assert (child.returncode, child.stderr) == (0, ""), child
    reaped, errors, status, threading_before = json.loads(child.stdout)
    assert threading_before is False, child  # the case in question: nobody imported threading
    assert errors == [], child  # old code: our shell's SIGCHLD made the handler's os.wait() fail
    assert reaped == [], child
    assert status == "sent", child  # sent from the host at exit, within exit_timeout
    assert len(server.settle(NOTHING_QUIET)) == 1


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
