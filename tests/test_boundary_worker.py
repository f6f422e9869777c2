"""The worker at the boundary with the host: its descriptors, its signals, its lock, and
what a retrying ping becomes when the sender cannot tell or the host forks.

Each case runs a host in a CHILD interpreter that imports a throwaway package with real
metadata and pings a loopback collector, and each failed against the engine before its
fix (issue 16, items 2, 3, 6, 14 and 15), except two that guard the fixes themselves:
the sender's signal mask, and the new state lock's error paths. Time bounds only catch
hangs.
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
from helpers import NOTHING_QUIET, ChildResult, Collector, autoping_package, child_env, free_port, make_package

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "posix_spawn"), reason="the detached sender needs posix_spawn"),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux process semantics (/proc, fork, signals)"),
]

#: Seconds a child may take before it counts as hung (each case expects a few seconds).
HANG = 60.0


def run_host(code: str, env: dict[str, str], *, timeout: float = HANG, expected: str = "a few seconds") -> ChildResult:
    """``run_child``, with a hang reported as a test failure that says what was expected."""
    started = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True,
                              text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the host hung: still running after {timeout:.0f} s (expected {expected}); "
                    f"stdout={exc.stdout!r} stderr={exc.stderr!r}", pytrace=False)
    return ChildResult(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)


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


def test_a_sender_started_by_our_thread_blocks_no_signal(site):
    """Our thread blocks every signal, and the sender it starts must not inherit that mask
    (posix_spawn resets it): a sender deaf to SIGTERM would outlive a container's stop."""
    server = Collector("delay:2")
    try:
        autoping_package(site, "pkg_sigsender", server.url + "/t/{package}")
        code = """\
            import ctypes, glob, json, time
            ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: the orphaned sender is ours to see
            import pkg_sigsender
            pkg_sigsender.PING.wait(0)   # our thread starts the sender; the server answers at 2 s
            time.sleep(0.8)
            masks = []
            for name in glob.glob("/proc/self/task/*/children"):
                for pid in open(name).read().split():
                    with open(f"/proc/{pid}/status") as f:
                        masks += [line.split()[1] for line in f if line.startswith("SigBlk:")]
            print(json.dumps([masks, pkg_sigsender.PING.wait(10)]))
        """
        child = run_host(code, child_env(site))
        assert (child.returncode, child.stderr) == (0, ""), child
        assert json.loads(child.stdout) == [["0000000000000000"], True], child
    finally:
        server.close()


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

#: An HTTP collector inside the namespace, writing each request's path to a file.
NS_COLLECTOR = """\
import os, sys, time
sys.path.insert(0, sys.argv[1])
from helpers import Collector
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
        {py} {tmp_path / 'collector.py'} {Path(__file__).parent} {got} {http_ready} &
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


# --- item 14: a retrying ping handed to a sender at a fork --------------------------------


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


# --- item 15: a signal handler that calls autoping() ----------------------------------


#: Raises SIGALRM once, from a profile hook, on the call that runs under the engine's
#: lock inside submit(): the handler then runs while the main thread holds that lock.
ALARM_INSIDE_SUBMIT = """\
        fired = []
        def profile(frame, event, arg):
            if event == "call" and frame.f_code is engine.Engine.ensure_thread.__code__ and not fired:
                fired.append(1)
                signal.raise_signal(signal.SIGALRM)
        sys.setprofile(profile)
"""


def test_a_signal_handler_calling_autoping_inside_submit_does_not_deadlock(site, collector):
    """SIGALRM arrives while the main thread is inside the engine's locked section (raised
    there on purpose, from a profile hook on the call that runs under the lock); its
    handler calls autoping() for another package. Both pings are delivered."""
    autoping_package(site, "pkg_siga", collector.url + "/a/{package}")
    make_package(site, "pkg_sigb")
    code = f"""\
        import json, signal, sys
        import scarf_autoping
        from scarf_autoping import engine
        late = []
        def handler(signum, frame):
            late.append(scarf_autoping.autoping("pkg_sigb", {collector.url + '/b/{package}'!r}))
        signal.signal(signal.SIGALRM, handler)
""" + ALARM_INSIDE_SUBMIT + """\
        import pkg_siga
        sys.setprofile(None)
        print(json.dumps([len(fired), len(late), pkg_siga.PING.wait(10), bool(late) and late[0].wait(10)]))
    """
    child = run_host(code, child_env(site), timeout=30, expected="about 2 s")
    assert (child.returncode, child.stderr) == (0, ""), child
    assert json.loads(child.stdout) == [1, 1, True, True], child
    assert sorted(r.path for r in collector.settle(0.3)) == ["/a/pkg-siga", "/b/pkg-sigb"]



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
    code = """\
        import json, signal, sys
        import pkg_waita
        from scarf_autoping import engine
        answers = []
        def handler(signum, frame):
            answers.append(pkg_waita.PING.wait())
        signal.signal(signal.SIGALRM, handler)
""" + ALARM_INSIDE_SUBMIT + """\
        import pkg_waitb
        sys.setprofile(None)
        print(json.dumps([len(fired), answers, pkg_waita.PING.wait(10), pkg_waitb.PING.wait(10)]))
    """
    child = run_host(code, child_env(site), timeout=30, expected="about 2 s")
    assert (child.returncode, child.stderr) == (0, ""), child
    assert json.loads(child.stdout) == [1, [False], True, True], child
    assert sorted(r.path for r in collector.settle(0.3)) == ["/a/pkg-waita", "/b/pkg-waitb"]
