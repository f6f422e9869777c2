"""The boundary with the host at exit and around its children.

* A hand-over that cannot outlive the host: a program under an init that exits with it
  (a shell-form ``CMD``, tini, ``docker run --init``) or the main process of a systemd
  service (whose cgroup is killed when it exits) waits for its ping within
  ``exit_timeout``, as PID 1 does, instead of handing it to a sender that dies with it.
* A host that handles SIGCHLD itself never meets a process of ours: no SIGCHLD of ours,
  no ``ChildProcessError`` in its handler, none of its children's pids taken.
* Background events the thread has taken but not yet sent at exit are handed over (or
  waited for), never left to die with the interpreter.
* Ctrl-C during the exit wait ends our wait only: every other ``atexit`` handler runs
  (the application's own, ``logging.shutdown``), and then the process ends by SIGINT.

Every host runs in a child process and pings a loopback collector.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest
from helpers import NOTHING_QUIET, autoping_package, child_env, run_child

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux: PID namespaces, cgroups, SIGCHLD"),
    pytest.mark.skipif(not hasattr(os, "posix_spawn"), reason="the detached sender needs posix_spawn"),
]

#: Seconds a child may run before it counts as hung.
HANG = 30.0


# --- 5. a hand-over that cannot outlive the host ---------------------------------------


def _can_unshare_pid() -> bool:
    if shutil.which("unshare") is None or os.geteuid() != 0:
        return False
    probe = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True, check=False)
    return probe.returncode == 0


@pytest.mark.skipif(not _can_unshare_pid(), reason="SKIPPED LOUDLY: needs root and unshare --pid --mount-proc")
def test_a_host_under_a_shell_init_waits_instead_of_handing_over(make_collector, site):
    """``/bin/sh -c 'python app.py; true'`` as PID 1 (a shell-form CMD): the host is PID 2,
    and the shell exits right after it, which kills the whole namespace, a sender too."""
    server = make_collector("delay:0.3")
    autoping_package(site, "pkg_shinit", server.url + "/t/{package}", args="exit_timeout=10")
    code = ("import atexit, os\n"
            "atexit.register(lambda: print(os.getpid(), os.getppid(), pkg_shinit.PING.status))\n"
            "import pkg_shinit\n")
    script = f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}; true"  # `; true`: sh must not exec python
    proc = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "/bin/sh", "-c", script],
                          env=child_env(site), capture_output=True, text=True, timeout=HANG, check=False,
                          stdin=subprocess.DEVNULL)
    assert (proc.returncode, proc.stderr) == (0, ""), proc
    pid, ppid, status = proc.stdout.split()
    assert (ppid, status) == ("1", "sent"), proc  # the shell is PID 1; sent before the host exited
    assert pid != "1", proc
    assert len(server.settle(NOTHING_QUIET)) == 1


def _cgroup2_here() -> Path | None:
    """The cgroup v2 directory this process is in, if it can hold a new, killable child cgroup."""
    if os.geteuid() != 0:
        return None
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
        own = [line[3:] for line in Path("/proc/self/cgroup").read_text().splitlines() if line.startswith("0::")]
    except OSError:
        return None
    roots = [line.split()[1] for line in mounts if line.split()[2:3] == ["cgroup2"]]
    if not roots or not own:
        return None
    here = Path(roots[0] + own[0].rstrip("/"))
    return here if (here / "cgroup.procs").exists() else None


@pytest.mark.skipif(_cgroup2_here() is None, reason="SKIPPED LOUDLY: needs root and a writable cgroup v2 hierarchy")
def test_the_main_process_of_a_service_unit_waits_instead_of_handing_over(make_collector, site):
    """The main process of a systemd service: when it exits, systemd kills what is left in
    the unit's cgroup (KillMode=control-group, the default), a sender too. Simulated with a
    real ``<name>.service`` cgroup whose processes are killed (``cgroup.kill``) the moment
    the host has exited; the host's parent (this test) is outside the unit, as systemd is,
    and INVOCATION_ID is set, as systemd sets it for every unit's processes."""
    unit = _cgroup2_here() / f"scarf-autoping-test-{uuid.uuid4().hex[:8]}.service"  # type: ignore[operator]
    try:
        unit.mkdir()
    except OSError as exc:
        pytest.skip(f"SKIPPED LOUDLY: cannot create a cgroup: {exc}")
    try:
        if not (unit / "cgroup.kill").exists():
            pytest.skip("SKIPPED LOUDLY: no cgroup.kill (Linux 5.14+)")
        server = make_collector("delay:0.3")
        autoping_package(site, "pkg_unit", server.url + "/t/{package}", args="exit_timeout=10")
        code = ("import atexit\n"
                "atexit.register(lambda: print(open('/proc/self/cgroup').read().endswith('.service\\n'),"
                " pkg_unit.PING.status))\n"
                "import pkg_unit\n")
        proc = subprocess.run(["/bin/sh", "-c", 'echo $$ > "$1/cgroup.procs" && exec "$2" -c "$3"', "sh", str(unit),
                               sys.executable, code], env=child_env(site, INVOCATION_ID=uuid.uuid4().hex),
                              capture_output=True, text=True,
                              timeout=HANG, check=False, stdin=subprocess.DEVNULL)
        (unit / "cgroup.kill").write_text("1")  # what systemd does when the main process has exited
        assert (proc.returncode, proc.stderr) == (0, ""), proc
        assert proc.stdout == "True sent\n", proc
        assert len(server.settle(NOTHING_QUIET)) == 1
    finally:
        deadline = time.monotonic() + 10
        while True:
            try:
                unit.rmdir()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                try:
                    (unit / "cgroup.kill").write_text("1")
                except OSError:
                    pass
                time.sleep(0.05)


@pytest.mark.parametrize(("parent", "expected"), [
    (OSError, True),  # hidden (hidepid=2, ProtectProc=invisible: the manager runs as root) or gone
    ({b"": b"/system.slice/app.service", b"name=systemd": b"/system.slice/app.service"}, False),  # in the unit
    ({b"": b"/system.slice/app.service"}, False),  # the same, seen in one hierarchy only
    ({b"": b"/init.scope", b"name=systemd": b"/init.scope"}, True),  # started by the service manager
    ({b"": b"/user.slice/user-1000.slice/user@1000.service/init.scope"}, True),  # by a user's manager
])
def test_a_service_main_process_is_told_by_its_parents_cgroup(monkeypatch, parent, expected):
    from scarf_autoping import host

    def cgroups(pid: object) -> dict[bytes, bytes]:
        if pid == "self":
            return {b"": b"/system.slice/app.service", b"name=systemd": b"/system.slice/app.service"}
        if parent is OSError:
            raise PermissionError(13, "hidden")
        return parent  # type: ignore[return-value]

    monkeypatch.setattr(host, "_systemd_cgroups", cgroups)
    assert host._main_process_of_a_service(1) is expected


def test_an_ordinary_host_still_hands_over_and_exits_at_once(collector, site):
    """Not in a container, not a service's main process: the hand-over stays, exit is not delayed."""
    autoping_package(site, "pkg_plain_exit", collector.url + "/t/{package}")
    code = ("import atexit, time\n"
            "atexit.register(lambda: print(round(time.monotonic() - ended, 3), pkg_plain_exit.PING.status))\n"
            "import pkg_plain_exit\n"
            "ended = time.monotonic()\n")
    child = run_child(code, child_env(site), timeout=HANG)
    assert (child.returncode, child.stderr) == (0, ""), child
    seconds, status = child.stdout.split()
    assert status == "handed-over", child
    assert float(seconds) < 0.2, f"exit took {seconds} s for a hand-over (expected a few ms)"
    assert len(collector.expect(1)) == 1


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
        from scarf_autoping import ScarfEventLogger, engine
        atexit.register(lambda: print(json.dumps(sorted(p.status for p in pings))))  # runs after ours
        logger = ScarfEventLogger({server.url + "/e"!r}, exit_timeout=10)
        pings = [logger.log_event({{"event": "e", "n": n}}, background=True) for n in range(4)]
        for job in engine.ENGINE.queue:
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
