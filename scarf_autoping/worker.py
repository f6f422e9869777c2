"""The delivery engine: nothing of ours runs while the host is busy, and the host never waits.

One raw OS thread (``_thread``, not ``threading``) serves every package in the process:

1. **Deferral.** The thread first waits :data:`DEFERRAL` seconds on a lock, with the GIL
   released and nothing imported. A host that forks, monkey-patches or imports right
   after importing an adopting package never meets a busy thread. ``Ping.wait()`` ends
   the deferral at once.
2. **Delivery.** Then it hands the pings to a detached sender process
   (:mod:`scarf_autoping.spawn`): spawning costs the host well under a millisecond, and
   ``requests``, ``ssl`` and ``distro`` are never imported in the host. The sender is
   never the host's child (a host that waits for its children or forks must not meet
   it); the thread reads each outcome from a pipe, settles the
   :class:`~scarf_autoping.Ping`, and sees the sender's end as the pipe's end. Where no sender can be started (Windows, frozen applications, a failed
   spawn), while the host handles SIGCHLD itself (no process of ours may be its child
   then) and for background events, the thread sends from the host with
   :mod:`scarf_autoping.transport`, as an ordinary background worker.
3. **Exit.** At interpreter exit, pings that have not gone out are handed to a detached
   sender and the host exits at once (``on_exit="handoff"``, the default); with
   ``on_exit="wait"`` the host sends them and waits at most ``exit_timeout``; with
   ``"drop"`` they are dropped. A ping already in a sender's hands is never waited for
   and never sent twice. Where a process started at exit would die with the host (PID 1,
   the one child of a container's init, a systemd service's main process) or the host
   reaps its own children, exit sends and waits instead. Ctrl-C ends any wait at exit;
   the other exit handlers run, and then the process dies of SIGINT.
4. **Fork.** ``os.register_at_fork`` hooks stop the idle thread before a fork and wait
   until the OS thread is gone, so CPython's "multi-threaded fork" warning never fires on
   our account and the child inherits nothing. The parent's queued pings then go to a
   detached sender right away (a thread restarted in the after-fork hook would be counted
   by CPython 3.13's warning); pings that retry go to a sender that retries for as long
   as the parent lives. A thread that is busy sending from the host cannot be stopped;
   the fork then waits only for its import phase, as a fork must.

Processes that fork from C (uWSGI) or cannot have our threads (sub-interpreters) never
get here with a thread: see :func:`submit` and ``scarf_autoping.autoping``.

On the host's import path: no ``from __future__ import annotations`` (importing
``__future__`` costs the host about 0.1 ms), so annotations that need it are strings.
"""

import _thread
import atexit
import os
import sys
import time

try:  # eventlet patches os.read and os.waitpid; the posix module itself is never patched
    import posix as _posix
except ImportError:  # pragma: no cover - Windows: no detached sender, nothing to read or reap
    _posix = os

import scarf_autoping as _face

from . import host, spawn
from .output import debug, write_stderr

__all__ = ["DEFERRAL", "Job", "debug", "flush", "hurry", "submit", "write_stderr"]

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable

    from . import Ping

#: Seconds the worker waits before it does anything. Long enough for what hosts do
#: right after their imports (gunicorn --preload forks within milliseconds, uWSGI at
#: once, apps monkey-patch next), short enough that a process living a few seconds
#: still reports from inside, with its outcome in ``Ping.status``.
DEFERRAL = 1.0
#: Seconds between two looks at a sender's result pipe while one is out.
POLL = 0.02
#: The same while the only senders out are ones that retry for as long as we live (a fork
#: handed them a retrying ping): they may be out for hours, and report once.
LOOP_POLL = 0.25
#: How long the thread sleeps at a time while it only keeps parked jobs (see ``_parked``).
PARKED_NAP = 3600.0
#: The deadline of a sender that retries for as long as we live: none.
FOREVER = float("inf")
#: The most a fork waits for our idle thread to stop.
STOP_WAIT = 0.5
#: The most a fork waits for a thread that is sending from the host to finish importing.
FORK_WAIT = 5.0
#: Seconds allowed beyond a sender's own bound before it is given up on.
SENDER_SLACK = 2.0

_allocate_lock, _start_new_thread = host.thread_primitives()
_get_native_id = getattr(_thread, "get_native_id", None)


class _StateLock:
    """The engine's state lock: a real lock that a thread never waits on while it holds it.

    A signal handler runs on the main thread between any two bytecodes, also while that
    thread holds this lock or waits for it (in :func:`submit`, ``Ping.wait()``, at exit).
    A handler that calls ``autoping()`` then must not wait for the lock its own thread
    holds: each thread's entries are counted (before it waits, until after it has let go),
    :meth:`held_here` says so, and :func:`submit` and :func:`hurry` leave their work in
    :data:`_inbox`, done by that thread as soon as it lets go.

    Not a re-entrant ``RLock``: ``eventlet.monkey_patch()`` run after our import replaces
    every ``RLock`` it finds with a green one and writes "RLock(s) were not greened" to
    the host's stderr for one it cannot replace. A plain lock from the unpatched
    ``_thread`` is left alone.
    """

    __slots__ = ("_depth", "_ident", "_lock")

    def __init__(self) -> None:
        self._lock = _allocate_lock()
        self._ident = _thread.get_ident  # its own reference: finalization clears module globals
        self._depth: dict[int, int] = {}  # thread: how many times it is in (one, but for a handler)

    def held_here(self) -> bool:
        """Whether the current thread holds the lock or is waiting for it (a handler's view)."""
        return self._ident() in self._depth

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        me = self._ident()
        depth = self._depth
        depth[me] = depth.get(me, 0) + 1  # before the wait: a handler inside it must not wait too
        got = False
        try:
            got = self._lock.acquire(blocking, timeout)  # type: ignore[attr-defined]
        finally:
            if not got:
                self._leave(me)
        return got

    def release(self) -> None:
        me = self._ident()
        try:
            self._lock.release()  # type: ignore[attr-defined]
        finally:
            out = self._leave(me)  # after the release: a handler before it must not wait
        if out and _inbox and me != _worker_ident:
            _drain_inbox()

    def _leave(self, me: int) -> bool:
        depth = self._depth
        left = depth.get(me, 1) - 1
        if left > 0:
            depth[me] = left
        else:
            depth.pop(me, None)
        return left <= 0

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


#: Guards all the state below. Held only for list and flag updates, never across I/O.
_lock = _StateLock()
#: Held while nothing happens; released to wake the thread (deferral over, work, stop).
_wake = _allocate_lock()
_wake.acquire()
#: Held by the thread while it imports for a send from the host; taken by the fork hooks.
_import_lock = _allocate_lock()
#: Held while a sender's report is read: the thread and exit may both read it.
_reading = _allocate_lock()
#: Never released: acquiring it with a timeout is a sleep that green libraries cannot patch.
_nap = _allocate_lock()
_nap.acquire()


class Job:
    """One ping or event for the worker.

    ``spec`` is what a detached sender needs (plain data, see :mod:`scarf_autoping.sender`).
    ``prepare()`` (imports, facts, the URL) and ``send(prepared) -> (status, reason[, retry])``
    are how the host sends it itself (``retry``: see :func:`scarf_autoping.retry.retryable`). ``detach``: deliver through a detached sender while the
    host lives. ``on_exit``: ``"handoff"``, ``"wait"`` or ``"drop"``. ``here``: the thread
    has taken it to send from the host and not started yet (exit may take it back).
    """

    __slots__ = ("debug", "detach", "here", "on_exit", "ping", "prepare", "retry_interval", "send", "spec",
                 "started")

    def __init__(
        self,
        ping: "Ping",
        spec: dict,
        prepare: "Callable[[], object]",
        send: "Callable[[object], tuple[str, str | None]]",
        *,
        detach: bool = True,
        on_exit: str = "handoff",
        debug: bool = False,
    ) -> None:
        self.ping = ping
        self.spec = spec
        self.prepare = prepare
        self.send = send
        self.detach = detach
        self.on_exit = on_exit
        self.debug = debug
        self.started = 0.0
        self.here = False
        self.retry_interval: float | None = spec.get("retry_interval")


class _Sender:
    """A detached sender the thread waits on: its pid, result pipe and jobs.

    ``pipe`` is the result pipe's identity (device and inode): the descriptor number is
    only ours for as long as it still names that pipe (see :func:`_ours`); ``fd`` is -1
    once it no longer does.
    """

    __slots__ = ("buffer", "deadline", "eof", "fd", "jobs", "pid", "pipe", "reaped")

    def __init__(self, pid: int, fd: int, jobs: "list[Job]", deadline: float, pipe: "tuple[int, int]") -> None:
        self.pid = pid
        self.fd = fd
        self.jobs = jobs
        self.deadline = deadline
        self.pipe = pipe
        self.buffer = b""
        self.eof = False
        self.reaped = False


#: Why a ping is handed over when the host closed the pipe its sender reports through.
UNKNOWN = "sent by a detached process; its outcome is unknown (the host closed the descriptor it reported through)"


_queue: "list[Job]" = []  # submitted, not yet dispatched
_busy: "list[Job]" = []  # taken by the thread, not yet with a sender or in _inline (see Job.here)
_inline: "list[Job]" = []  # being sent from the host by the thread
_later: "list[tuple[float, Job]]" = []  # (monotonic time, job): failed, to be tried again then
_senders: "list[_Sender]" = []  # detached senders whose results are awaited
_running = False  # a thread of ours exists
_stop = False  # asks the thread to leave at its next look
_hurry = False  # the deferral is over (Ping.wait(), exit)
_deadline = 0.0  # when the current thread's deferral ends
_left: "object | None" = None  # lock the current thread releases as it leaves
_tid: "int | None" = None  # the current thread's OS id
_worker_ident: "int | None" = None  # the current thread's Python id
_exiting = False
_atexit_registered = False
#: Work a signal handler asked for while its thread held (or waited for) ``_lock``: a job
#: to submit, or None for :func:`hurry`. Done by that thread as it lets go of the lock.
_inbox: "list[Job | None]" = []
#: Jobs for a host that reaps its own children and has not imported ``threading`` (before
#: CPython 3.13): no process of ours may start, and our thread may not send them (sending
#: imports ``threading``, which must happen on a thread of the host's). They wait for the
#: host's own thread to call in: ``Ping.wait()``, another ``autoping()``, or exit.
_parked: "list[Job]" = []
_warmed = False


# --- submitting and waking ------------------------------------------------------------


def submit(job: "Job") -> None:
    """Queue ``job``; start the thread if there is none. Never raises, never blocks on I/O."""
    if "threading" not in sys.modules and (not job.detach or spawn.interpreter() is None or _host_reaps()):
        # This job may be sent from the host, and sending imports ``threading`` (through
        # ``requests``). Before CPython 3.13, the thread that first imports ``threading``
        # becomes its "main thread", and interpreter exit then waits for *that* thread: it
        # must be the caller's, never ours. Jobs for a detached sender need none of this.
        try:
            import threading  # noqa: F401
        except Exception:  # noqa: BLE001
            pass
    if _lock.held_here():
        _inbox.append(job)  # a signal handler on a thread inside our lock: never wait on it
        return
    _unpark()
    with _lock:
        if _fork_dirty:
            _resolve(job, "failed", "forked while the worker was importing; not sent from this child")
            return
        _register_atexit()
        uwsgi = host.uwsgi_process()
        if not (_exiting or uwsgi):
            _queue.append(job)
            if _ensure_thread():
                return
            _queue.remove(job)
    # No thread of ours may run here (uWSGI forks its workers from C, at any time) or
    # none could be started: a detached sender, after the deferral, without a thread.
    if _hand_over([job], delay=0.0 if _exiting else DEFERRAL, orphan=not _exiting, loop=not _exiting):
        why = "uWSGI process" if uwsgi else "interpreter exit" if _exiting else "no worker thread"
        _resolve(job, "failed", f"{why}: no detached sender could be started")


def hurry() -> bool:
    """End the deferral now (``Ping.wait()``); restart the thread if work is left for it.

    False when called by a signal handler on a thread inside our lock: the work is left
    for that thread, and nothing can settle while the handler runs (do not wait for it).
    """
    global _hurry
    if _lock.held_here():
        _inbox.append(None)  # a signal handler on a thread inside our lock: never wait on it
        return False
    _unpark()
    with _lock:
        if _queue or _senders or _later:
            _ensure_thread()
        # Only for a thread that runs: a flag left for the next one would skip its deferral.
        _hurry = _hurry or _running
    _wake_thread()
    return True


def _import_threading() -> None:
    """Import ``threading`` on this thread, a host's, before our thread may need it.

    Before CPython 3.13, the thread that first imports ``threading`` becomes its "main
    thread", and interpreter exit waits for that thread: it must never be ours.
    """
    if "threading" not in sys.modules:
        try:
            import threading  # noqa: F401
        except Exception:  # noqa: BLE001
            pass


def _unpark() -> None:
    """Give parked jobs back to the thread, importing ``threading`` here, on the host's thread."""
    if not _parked:
        return
    _import_threading()
    with _lock:
        _queue.extend(_parked)
        del _parked[:]


def _drain_inbox() -> None:
    """Do what signal handlers asked for while this thread held ``_lock`` (it has let go)."""
    while _inbox:
        try:
            job = _inbox.pop(0)
        except IndexError:  # taken meanwhile
            return
        if job is None:
            hurry()
        else:
            submit(job)


def _wake_thread() -> None:
    try:
        _wake.release()
    except RuntimeError:  # already released: the thread will see it
        pass


def _ensure_thread() -> bool:
    """Start the thread unless it runs (caller holds ``_lock``); False if it cannot start."""
    global _running, _stop, _hurry, _deadline, _left, _tid
    if _running:
        return True
    if _fork_owner is not None and _fork_owner == _thread.get_ident():
        return False  # a signal handler inside a fork's hooks: no thread may start mid-fork
    left = _allocate_lock()
    left.acquire()
    _running, _stop, _hurry, _left, _tid = True, False, False, left, None
    _deadline = time.monotonic() + DEFERRAL
    try:
        # The thread gets its own references to the locks it waits on: interpreter
        # finalization clears module globals, and a lock freed while a thread waits on it
        # crashed CPython 3.9 under -X dev (a segfault at exit, 1 run in 30).
        _start_new_thread(_run, (left, _wake, _lock))
    except BaseException:  # noqa: BLE001 - "can't start new thread", interpreter shutdown
        _running = False
        return False
    return True


# --- the thread -----------------------------------------------------------------------


def _run(left: "object", wake: "object", lock: "object") -> None:
    global _running, _hurry, _tid, _worker_ident
    try:
        _block_signals()
        with lock:  # type: ignore[attr-defined]
            _tid = _get_native_id() if _get_native_id is not None else None
            _worker_ident = _thread.get_ident()
        while True:  # the deferral: nothing imported, nothing sent, the GIL released
            with lock:  # type: ignore[attr-defined]
                if _stop:
                    return
                remaining = 0.0 if _hurry else _deadline - time.monotonic()
            if remaining <= 0:
                break
            wake.acquire(True, remaining)  # type: ignore[attr-defined]
        while True:
            with lock:  # type: ignore[attr-defined]
                if _stop:
                    return
                now = time.monotonic()
                batch = _queue[:] + [job for when, job in _later if when <= now]
                del _queue[:]
                _later[:] = [(when, job) for when, job in _later if when > now]
                _busy.extend(batch)
                if not batch and not _senders and not _later and not _parked:
                    _running, _hurry = False, False
                    return
            if batch:
                _dispatch(batch)
            if _senders:
                _poll_senders()
            with lock:  # type: ignore[attr-defined]
                nap = None if _queue or _stop else _until_next_look()
            if nap:
                # Between retries: on a lock, the GIL released, for as long as there is to wait.
                wake.acquire(True, nap)  # type: ignore[attr-defined]
    except BaseException:  # noqa: BLE001 - interpreter shutdown can break anything here
        pass
    finally:
        try:
            with lock:  # type: ignore[attr-defined]
                if _left is left:  # not replaced yet: no thread of ours runs after this one
                    _running = False
        except BaseException:  # noqa: BLE001
            pass
        left.release()  # type: ignore[attr-defined]


def _block_signals() -> None:
    """Block every signal on this thread, first thing: the host's signals are the host's.

    The kernel delivers a signal for the process to any thread that does not block it: a
    host that blocks one on its own threads around a critical section (to take it later
    with ``sigwait``, or to be interrupted only outside it) would otherwise have it
    delivered here, and die of it or run its handler inside that section.
    """
    try:
        import _signal  # built in, and already imported by the interpreter: no import cost

        _signal.pthread_sigmask(_signal.SIG_BLOCK, _signal.valid_signals())
    except (ImportError, AttributeError, OSError, ValueError):  # no pthread_sigmask (Windows)
        pass


def _until_next_look() -> "float | None":
    """Seconds the thread naps before it looks again (caller holds ``_lock``), None: no nap."""
    if any(sender.deadline != FOREVER for sender in _senders):
        return POLL
    nap = _until_next_retry()
    if _senders:  # only senders that retry for as long as this process lives
        nap = LOOP_POLL if nap is None else min(nap, LOOP_POLL)
    if _parked and nap is None:
        # Stay, idle: CPython 3.12 starts no thread in an atexit handler, and exit needs
        # one to send what is parked (a fork stops an idle thread, as always).
        nap = PARKED_NAP
    return nap


def _until_next_retry() -> "float | None":
    """Seconds until the earliest retry is due (caller holds ``_lock``), None if none."""
    if not _later:
        return None
    return max(0.001, min(min(when for when, _ in _later) - time.monotonic(), _thread.TIMEOUT_MAX))


def _dispatch(batch: "list[Job]") -> None:
    """Send ``batch``: through one detached sender where it may, else from the host.

    While the host handles SIGCHLD itself, no process of ours is started (see
    :func:`_host_reaps`): its pings are sent from the host too.
    """
    kept = []  # state: an endpoint that answered 410 Gone or is backed off gets no sender
    for job in batch:  # state:
        why = None  # state:
        if job.spec.get("state"):  # state: only pings of autoping(), and only with a state directory
            from . import state  # state:

            why = state.suppressed(job.spec)  # state:
        if why is None:  # state:
            kept.append(job)  # state:
            continue  # state:
        with _lock:  # state:
            _unbusy([job])  # state:
        _settle(job, "disabled", why)  # state:
    batch = kept  # state:
    green = host.green()
    reaps = not green and _host_reaps()
    if reaps and not _may_import_threading():
        # Neither a process of ours nor a send from this thread: parked for the host's own.
        park = [job for job in batch if job.detach]
        with _lock:
            _parked.extend(park)
            _unbusy(park)
        batch = [job for job in batch if not job.detach]
    spawning = not reaps
    detached = [job for job in batch if green or (job.detach and spawning)]
    here = [job for job in batch if job not in detached]
    if detached and _start_sender(detached, delay=0.0) is None:
        here += detached
    with _lock:
        for job in here:
            job.here = True  # taken, not started: exit may take it back
    for job in here:
        _send_here(job)


def _host_reaps() -> bool:
    """The host handles SIGCHLD in Python: start no process of ours while it lives.

    Green hosts keep their detached sender (sending from the host is what broke them).
    """
    return host.reaps_children() and not host.green()


def _may_import_threading() -> bool:
    """Whether our thread may import ``threading`` (as sending from the host does).

    Before CPython 3.13 the thread that first imports it becomes its "main thread", and
    interpreter exit waits for that thread: it must not be ours. :func:`submit` imports it
    on the caller's thread when it can tell; a host that installs its SIGCHLD handler
    later and never imports ``threading`` keeps the detached sender.
    """
    return "threading" in sys.modules or sys.version_info >= (3, 13)


def _start_sender(
    jobs: "list[Job]", *, delay: float, specs: "list[dict] | None" = None, loop: bool = False
) -> "_Sender | None":
    """A detached sender for ``jobs`` that reports back through a pipe; None if none started.

    It is not our child (see :func:`scarf_autoping.spawn.spawn`): a host that waits for its
    own children, or forks while it is out, never meets it. Its end is the pipe's end.
    ``specs``: what it is given for ``jobs`` (default: their own). ``loop``: it retries
    for as long as this process lives, so it has no deadline of ours either.
    """
    pipe = spawn.result_pipe()
    if pipe is None:
        return None
    read_end, write_end = pipe
    identity = _pipe_identity(read_end)
    if identity is None:  # cannot happen to a pipe just made; never trust what cannot be checked
        return None
    now = time.monotonic()
    for job in jobs:
        job.started = now
    pid = spawn.spawn([job.spec for job in jobs] if specs is None else specs, delay=delay, result_fd=write_end,
                      orphan=True, loop=loop)
    _close_pipe(write_end, identity)
    if pid is None:
        _close_pipe(read_end, identity)
        return None
    longest = max(float(job.spec.get("timeout", 3.0)) for job in jobs)
    deadline = FOREVER if loop else now + delay + longest + SENDER_SLACK + 3.0
    sender = _Sender(pid, read_end, jobs, deadline, identity)
    sender.reaped = spawn.orphans()  # what started it is reaped; its end is the pipe's EOF
    with _lock:
        _senders.append(sender)
        _unbusy(jobs)
    return sender


def _unbusy(jobs: "list[Job]") -> None:
    """The thread has placed ``jobs`` (caller holds ``_lock``)."""
    for job in jobs:
        if job in _busy:
            _busy.remove(job)


def _poll_senders() -> None:
    """Read what the senders reported, settle those pings, reap the senders that ended."""
    for sender in _senders[:]:  # _finish() removes from it
        _read(sender)
        if not sender.reaped:
            try:
                pid, _ = _posix.waitpid(sender.pid, os.WNOHANG)
                sender.reaped = pid != 0
            except ChildProcessError:  # reaped by the host (gunicorn's arbiter, a SIGCHLD handler)
                sender.reaped = True
            except OSError:
                sender.reaped = True
            if sender.reaped:
                _read(sender)
        overdue = time.monotonic() > sender.deadline
        if overdue and not sender.reaped:  # our own child, stuck past its own deadline
            _kill(sender)
        settled = all(job is None for job in sender.jobs)
        if (sender.reaped and (sender.eof or settled)) or overdue:
            _finish(sender, "the detached sender ended without a result" if not overdue
                    else "the detached sender did not answer in time")


def _kill(sender: "_Sender") -> None:
    try:
        os.kill(sender.pid, 9)
        _posix.waitpid(sender.pid, 0)
    except OSError:
        pass
    sender.reaped = True


def _read(sender: "_Sender", wait: float = -1) -> None:
    """Settle what ``sender`` has reported so far (the thread and exit may both ask)."""
    if not _reading.acquire(True, wait):
        return
    try:
        _read_locked(sender)
    finally:
        _reading.release()


def _read_locked(sender: "_Sender") -> None:
    lost = False
    while not sender.eof:
        if not _ours(sender):
            # The host has closed our descriptor (os.closerange), and the number may name
            # its own pipe or file now: never read it (that would take the host's data, or
            # block), never close it. The sender was started: its outcome cannot be known.
            sender.fd, sender.eof, lost = -1, True, True
            break
        try:
            chunk = _posix.read(sender.fd, 65536)
        except BlockingIOError:
            break
        except OSError:
            chunk = b""
        if not chunk:
            sender.eof = True
            break
        sender.buffer += chunk
    *lines, sender.buffer = sender.buffer.split(b"\n")
    for line in lines:
        fields = line.decode("utf-8", "replace").split("\t")
        if len(fields) != 5 or not fields[0].isdigit():
            continue
        index = int(fields[0])
        if index < len(sender.jobs) and sender.jobs[index] is not None:
            job = sender.jobs[index]
            sender.jobs[index] = None  # type: ignore[call-overload]
            # "disabled": the sender found the distribution's own opt-out variable set.
            status = fields[1] if fields[1] in ("sent", "failed", "disabled") else "failed"
            try:
                again = float(fields[4]) if fields[4] else None
            except ValueError:
                again = None
            _outcome(job, status, fields[2] or None, fields[3] or None, again)
    if lost:
        for index, job in enumerate(sender.jobs):
            if job is not None:
                sender.jobs[index] = None  # type: ignore[call-overload]
                _settle(job, "handed-over", UNKNOWN)


def _outcome(job: "Job", status: str, reason: "str | None", url: "str | None", again: "float | None") -> None:
    """Settle an attempt's outcome, or schedule the next attempt of a ping that retries."""
    if status == "failed" and again is not None and job.retry_interval:
        from . import retry

        delay = retry.next_delay(job.retry_interval, again, retry.jitter_fraction())
        with _lock:  # exit takes what waits in _later under this lock: never one after it
            scheduled = not _exiting
            if scheduled:
                if url:
                    job.ping.url = url
                job.ping._retrying(reason)
                _later.append((time.monotonic() + delay, job))
        if scheduled:
            if job.debug:
                block = _thread.get_ident() == _worker_ident
                debug(f"{job.ping.package}: attempt {job.ping.attempts} failed ({reason}), "
                      f"retrying in {delay:.0f} s: {job.ping.url}", block=block)
            return
    job.ping.attempts += 1
    _settle(job, status, reason, url)


def _finish(sender: "_Sender", reason: str) -> None:
    for job in sender.jobs:
        if job is not None:
            if job.retry_interval:
                # Started, and it never said (it crashed, or was stuck past its deadline in a
                # name lookup: the network is not up yet). Exactly what retries are for.
                _outcome(job, "failed", reason, None, 0.0)
            else:
                _settle(job, "failed", reason)
    sender.jobs = []
    _close_ours(sender)
    with _lock:
        if sender in _senders:
            _senders.remove(sender)


def _send_here(job: "Job") -> None:
    """Send from the host (no sender possible, or an event): imports under the import lock."""
    with _lock:
        if job not in _busy:  # exit has taken it back: its on_exit decides
            return
        job.here = False
        _inline.append(job)
        _unbusy([job])
    job.started = time.monotonic()
    try:
        with _import_lock:
            _warm_up()
            prepared = job.prepare()
        status, reason, *hint = job.send(prepared)
    except BaseException as exc:  # noqa: BLE001 - a failure is a status, never a traceback
        status, reason, hint = "failed", type(exc).__name__, []
    with _lock:
        if job in _inline:
            _inline.remove(job)
    _outcome(job, status, reason, job.ping.url, hint[0] if hint else None)


def _settle(job: "Job", status: str, reason: "str | None", url: "str | None" = None) -> None:
    """Record an outcome; the debug line is written before the Ping is released."""
    if url:
        job.ping.url = url
    if job.debug:
        # Our thread may block on a full stderr; the host's own thread (exit, fork) never does.
        block = _thread.get_ident() == _worker_ident
        if job.started:
            ms = (time.monotonic() - job.started) * 1000
            debug(f"{job.ping.package}: {status} ({reason}) in {ms:.0f} ms: {job.ping.url}", block=block)
        else:
            debug(f"{job.ping.package}: {status} ({reason})", block=block)
    _resolve(job, status, reason)


def _resolve(job: "Job", status: str, reason: "str | None") -> None:
    job.ping._resolve(status, reason)


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def _pipe_identity(fd: int) -> "tuple[int, int] | None":
    """``(device, inode)`` of the pipe ``fd`` names; None if it names no pipe (or nothing)."""
    try:
        st = _posix.fstat(fd)
    except (OSError, ValueError):
        return None
    if st.st_mode & 0o170000 != 0o010000:  # not S_IFIFO
        return None
    return st.st_dev, st.st_ino


def _ours(sender: "_Sender") -> bool:
    """Whether ``sender.fd`` still is the read end of the pipe made for it, non-blocking.

    Checked before every read and close: a host may close every descriptor above 2
    (daemonising, after a fork) and reuse the numbers for its own pipes and files. A
    descriptor that fails the check is the host's: never read, closed or waited on.
    """
    fd = sender.fd
    if fd < 0:
        return False
    try:
        return _pipe_identity(fd) == sender.pipe and not _posix.get_blocking(fd)
    except (OSError, ValueError):
        return False


def _close_ours(sender: "_Sender") -> None:
    """Close ``sender``'s read end if it still is ours; forget it either way."""
    if _ours(sender):
        _close(sender.fd)
    sender.fd = -1


def _close_pipe(fd: int, identity: "tuple[int, int]") -> None:
    """Close an end of the pipe ``identity`` names, if ``fd`` still is that pipe."""
    if _pipe_identity(fd) == identity:
        _close(fd)


def _warm_up() -> None:
    """Import what a send from the host needs (under the import lock), once.

    ``logging`` comes first, so our fork hooks can be registered again after its own;
    then the logger gets its NullHandler, and the warnings that ``requests`` and
    ``urllib3`` raise about the machine's package versions at import time are silenced
    (narrowly, by message): they are not the host's business when we import them.
    """
    global _warmed, _logging_hook_is_older
    if _warmed:
        return
    import logging

    if not _logging_hook_is_older:
        _register_fork_hooks()
        _logging_hook_is_older = True

    logger = logging.getLogger("scarf_autoping")
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())

    import warnings

    for module, message in _IMPORT_TIME_WARNINGS:
        warnings.filterwarnings("ignore", message=message, module=module)

    from . import facts, transport

    transport.warm_up()
    facts.platform_facts()
    _warmed = True


#: (module, message start) of warnings our dependencies raise at import about the
#: installed versions of their own dependencies or of OpenSSL.
_IMPORT_TIME_WARNINGS = (
    ("requests", "Unable to find acceptable character detection dependency"),
    ("requests", r"urllib3 \(.*\) or chardet"),
    ("requests", "Old version of cryptography"),
    ("urllib3", "urllib3 v2 only supports OpenSSL"),
)


# --- hand-over ------------------------------------------------------------------------


def _hand_over(jobs: "list[Job]", *, delay: float, orphan: bool = False, loop: bool = False) -> "list[Job]":
    """Give ``jobs`` to a detached sender nobody waits on; return those that could not be."""
    pid = spawn.spawn([job.spec for job in jobs], delay=delay, orphan=orphan, loop=loop) if jobs else None
    if pid is None:
        return jobs
    for job in jobs:
        _settle(job, "handed-over", "sent by a detached process" + ("" if orphan else f" (pid {pid})"))
    return []


# --- exit -----------------------------------------------------------------------------


def _at_exit() -> None:
    """Hand over what has not gone out, wait only where the author asked for it (or must)."""
    try:
        try:
            _exit_jobs()
        except KeyboardInterrupt:
            _interrupted()
        _leave_at_exit()
    except BaseException:  # noqa: BLE001 - never an error at interpreter exit
        pass


def _exit_jobs() -> None:
    """Exit proper: what is unsent is dropped, handed over or waited for, per on_exit."""
    global _exiting
    with _lock:
        _exiting = True
        queued = _queue[:] + [job for _, job in _later] + _parked  # a ping waiting to retry is unsent
        del _queue[:], _later[:], _parked[:]
    deadline = time.monotonic() + 0.25
    while any(not job.here for job in _busy) and time.monotonic() < deadline:
        _nap.acquire(True, 0.001)  # a batch the thread is placing with a sender right now
    with _lock:
        # Taken by the thread to send from the host (one at a time), not started: as unsent.
        taken = [job for job in _busy if job.here]
        _unbusy(taken)
        senders = list(_senders)
    queued += taken
    for job in queued:
        if job.on_exit == "drop":
            _resolve(job, "dropped", "dropped at interpreter exit")
    waiting = [job for job in queued if job.on_exit == "wait"]
    handoff = [job for job in queued if job.on_exit == "handoff"]
    # Asked only when something would be handed over or is out with a sender.
    stays = bool(handoff or senders or _busy) and host.dies_with_host()
    if stays:
        # A process started now dies with us (PID 1 of a container, the one child of an
        # init that exits with it, a systemd service's main process): send from here
        # instead, and wait for the senders that are out, all within exit_timeout.
        waiting += handoff
    elif handoff and _host_reaps():
        # The host reaps its children: no process of ours, sent from here within exit_timeout.
        waiting += handoff
    else:
        waiting += _hand_over(handoff, delay=0.0)
    if waiting:
        _import_threading()  # our thread sends these from the host: it must not be the first
        with _lock:
            _queue.extend(waiting)
            started = _ensure_thread()
        if not started:
            for job in waiting:
                _resolve(job, "failed", "could not start the worker thread at exit")
        hurry()
    out: list[Job] = []  # with a sender that is out
    for sender in senders:  # what the senders already reported; the rest is theirs to finish
        _read(sender, 0.25)
        out += [job for job in sender.jobs if job is not None]
    if not stays:
        for job in out:
            _resolve(job, "handed-over", "sent by a detached process")
        out = []
    with _lock:
        pending = [job.ping for job in waiting + _inline + out + (_busy if stays else [])
                   if job.ping.status in ("pending", "retrying")]
    if pending:
        _wait_for(pending, max(ping.exit_timeout for ping in pending))


def _leave_at_exit() -> None:
    """Ask our thread to leave before finalization starts; wait for it only if it is idle.

    Nothing is left for it to do that exit has not handed over or waited for, and a thread
    of ours blocked on a lock while the interpreter tears itself down is a hazard
    (modules are cleared, locks freed) that costs nothing to avoid.
    """
    global _stop
    with _lock:
        if not _running:
            return
        _stop = True
        left, busy = _left, bool(_inline or _busy)
    _wake_thread()
    if not busy:
        left.acquire(True, 0.1)  # type: ignore[attr-defined]


def _wait_for(pings: "list[Ping]", timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for ping in pings:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        ping.wait(remaining)


def _interrupted() -> None:
    """Ctrl-C while exit waited for us: our wait ends, the rest of exit runs, then SIGINT ends it.

    The handlers registered before ours (the application's own, ``logging.shutdown``) still
    have to run, so the process cannot be killed here; and an exception out of an atexit
    handler is printed and ignored. CPython itself ends a program by SIGINT, after
    finalizing it, when the code of ``__main__`` ended with an unhandled KeyboardInterrupt
    (so that a shell loop or ``make`` stops): that is recorded by the code runner that
    ran ``__main__`` (``PyRun_*``), which is asked here to run ``raise KeyboardInterrupt``,
    with ``sys.excepthook`` silenced for the moment. Where that cannot be done (not
    CPython, no ``ctypes``, an embedding program that does not look), exit just goes on.
    """
    if sys.implementation.name != "cpython":
        return
    try:
        import ctypes

        run = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)(
            ("PyRun_SimpleStringFlags", ctypes.pythonapi))
    except BaseException:  # noqa: BLE001 - no ctypes, no symbol: exit goes on as it is
        return
    names = ("last_exc", "last_type", "last_value", "last_traceback")
    saved = {name: getattr(sys, name) for name in names if hasattr(sys, name)}
    hook = sys.excepthook
    try:
        sys.excepthook = _quiet
        run(b"raise KeyboardInterrupt", None)
    finally:
        sys.excepthook = hook
        for name in names:  # PyErr_Print records the exception there: put back what was
            if name in saved:
                setattr(sys, name, saved[name])
            elif hasattr(sys, name):
                delattr(sys, name)


def _quiet(*args: object) -> None:
    """An excepthook that prints nothing."""


def flush(timeout: "float | None" = None) -> bool:
    """End the deferral and wait until nothing of ours is pending, at most ``timeout`` seconds.

    With ``timeout=None`` the bound is the largest ``exit_timeout`` of the pending pings.
    Returns True when everything settled.
    """
    if _lock.held_here():
        return False  # a signal handler on a thread inside our lock: nothing can settle meanwhile
    with _lock:
        pings = [job.ping for job in _queue + _busy + _inline] + [job.ping for _, job in _later]
        pings += [job.ping for sender in _senders for job in sender.jobs if job is not None]
    pings = [ping for ping in pings if ping.status in ("pending", "retrying")]
    if not pings:
        return True
    hurry()
    _wait_for(pings, max(ping.exit_timeout for ping in pings) if timeout is None else timeout)
    return all(ping.status not in ("pending", "retrying") for ping in pings)


def _register_atexit() -> None:
    global _atexit_registered
    if not _atexit_registered:
        atexit.register(_at_exit)
        _atexit_registered = True


# --- fork -----------------------------------------------------------------------------

_fork_owner: "int | None" = None  # the thread running our before-fork hook
_fork_depth = 0  # our hooks can be registered twice (see _warm_up); only the outermost acts
_fork_held: "tuple[bool, bool, bool, bool]" = (False, False, False, False)
#: Set in a child forked while the worker was still importing (the wait ran out): the
#: child may hold half-finished imports, so it never starts a worker of its own.
_fork_dirty = False


def _before_fork() -> None:
    """Stop our idle thread, then take the registry, import and state locks, in that order."""
    global _fork_owner, _fork_depth, _fork_held
    me = _thread.get_ident()
    if _fork_owner == me:
        _fork_depth += 1
        return
    registry = stopped = imported = state = False
    try:
        # A fork running in another thread holds this lock until its own fork is done.
        registry = _face._registry_lock.acquire()
        stopped = _stop_idle_thread()
        imported = _wait_for_import_phase()
        state = _lock.acquire(True, FORK_WAIT)
    except BaseException:  # noqa: BLE001 - Ctrl-C while the fork waited for us
        # The wait ends and the fork goes on. Re-raising is no use: CPython ignores an
        # exception from a fork hook after printing "Exception ignored in" to stderr, and
        # a signal re-raised here would fire inside the next hook. The after-fork hooks
        # release exactly what was taken; a child forked this early never sends.
        pass
    _fork_owner, _fork_depth, _fork_held = me, 1, (imported, state, stopped, registry)


def _stop_idle_thread() -> bool:
    """Stop the thread if it is waiting (deferral, results); True when one was stopped.

    Waits until the OS thread has really gone (``/proc/self/task``): CPython 3.12 counts
    the process's OS threads for its fork warning, and a thread that has said goodbye to
    Python is still counted until the kernel has finished it.
    """
    global _stop, _running, _tid
    with _lock:
        if not _running:
            return False
        _stop = True
        left, tid = _left, _tid
    _wake_thread()
    deadline = time.monotonic() + STOP_WAIT
    while not left.acquire(True, 0.002):  # type: ignore[attr-defined]
        with _lock:
            # Sending from the host (on_exit="wait", events, no sender possible): it cannot
            # be stopped, so the fork does not wait for it (only for its imports, below).
            sending = bool(_inline)
            if sending or time.monotonic() > deadline:
                _stop = False
                return False
    with _lock:
        _running, _stop, _tid = False, False, None
    if tid is not None:
        task = f"/proc/self/task/{tid}"
        deadline = time.monotonic() + 0.05
        while os.path.exists(task) and time.monotonic() < deadline:
            _nap.acquire(True, 0.0002)
    return True


def _wait_for_import_phase() -> bool:
    """Take the import lock, waiting for a send from the host to finish importing.

    If ``logging``'s own fork hook ran before ours (it registers itself in the middle of
    ``logging``'s import, which the worker may be running right now), this thread holds
    ``logging``'s lock while the worker needs it to finish importing: let go of it while
    waiting, then take it back, so ``logging``'s after-fork hooks find it as they left it.
    """
    if _import_lock.acquire(True, 0.05):
        return True
    held = _logging_lock_held_here()
    if held is None:
        return _import_lock.acquire(True, FORK_WAIT)
    held.release()
    try:
        return _import_lock.acquire(True, FORK_WAIT)
    finally:
        held.acquire()


def _logging_lock_held_here() -> "object | None":
    """``logging``'s module lock when the current thread holds it (once), else None."""
    try:
        lock = getattr(sys.modules.get("logging"), "_lock", None)
        if lock is not None and lock._is_owned():
            return lock
    except Exception:  # noqa: BLE001 - another logging implementation: just wait
        pass
    return None


def _leave_fork() -> bool:
    """Count one after-fork hook out; True for the outermost one, which does the work."""
    global _fork_owner, _fork_depth
    if _fork_owner != _thread.get_ident():
        return False
    _fork_depth -= 1
    if _fork_depth:
        return False
    _fork_owner = None
    return True


def _after_fork_parent() -> None:
    """Release the locks; a stopped thread's queued pings go to a detached sender now."""
    if not _leave_fork():
        return
    imported, state, stopped, registry = _fork_held
    if state:
        _lock.release()
    if imported:
        _import_lock.release()
    if registry:
        _face._registry_lock.release()
    if not stopped:
        return
    try:
        with _lock:
            queued = _queue[:]
            later = _later[:]
            del _queue[:], _later[:]
            now = time.monotonic()
            remaining = 0.0 if _hurry else max(0.0, _deadline - now)
        # A ping with no retry: one sender, after what is left of the deferral; its outcome
        # is read whenever our thread runs again (Ping.wait(), the next ping, exit).
        # No process of ours while the host reaps its children: the thread sends them.
        reaps = _host_reaps()
        detached = [] if reaps else [job for job in queued if job.detach and not job.retry_interval]
        if detached and _start_sender(detached, delay=remaining) is not None:
            queued = [job for job in queued if job not in detached]
        # A ping that retries (or waits to): a sender that sleeps until it is due and goes
        # on retrying for as long as this process lives (no thread of ours will be here).
        # The ping stays unsettled: the sender reports through a pipe like any other, read
        # whenever our thread runs again, so Ping.wait() says True once it is delivered.
        # At exit it is handed over (the sender goes on).
        later += [(now + remaining, job) for job in queued if job.detach and job.retry_interval]
        queued = [job for job in queued if not (job.detach and job.retry_interval)]
        waiting = [job for _, job in later if job.detach]
        specs = [dict(job.spec, wait=max(0.0, when - now)) for when, job in later if job.detach]
        if waiting and not reaps and _start_sender(waiting, delay=0.0, specs=specs, loop=True) is not None:
            later = [(when, job) for when, job in later if not job.detach]
        if queued or later:
            # Only a ping that must be sent from the host restarts the thread here. Not for
            # a host that reaps its children: a forking one would meet that thread at its next
            # fork (CPython 3.13 counts it); its pings wait for the next ping, Ping.wait() or exit.
            with _lock:
                _queue[:0] = queued
                _later.extend(later)
                if not reaps:
                    _ensure_thread()
    except BaseException:  # noqa: BLE001 - never an error in the host's fork
        pass


def _after_fork_child() -> None:
    """Fresh locks and an empty worker; what the parent had pending is the parent's to send."""
    global _lock, _wake, _import_lock, _reading, _running, _stop, _hurry, _tid, _left, _fork_dirty
    if not _leave_fork():
        return
    if not _fork_held[0]:
        _fork_dirty = True
    inherited = [p for p in _face._registry.values() if p.status in ("pending", "retrying")]
    inherited += [job.ping for job in _queue + _busy + _inline if job.ping not in inherited]
    inherited += [job.ping for _, job in _later if job.ping not in inherited]
    inherited += [job.ping for job in _inbox if job is not None and job.ping not in inherited]
    inherited += [job.ping for job in _parked if job.ping not in inherited]
    for sender in _senders:
        _close_ours(sender)  # this process's copy; the host may have reused the number before the fork
        inherited += [job.ping for job in sender.jobs if job is not None and job.ping not in inherited]
    _face._registry_lock = _face.RLock()
    _lock = _StateLock()
    _wake = _allocate_lock()
    _wake.acquire()
    _import_lock = _allocate_lock()
    _reading = _allocate_lock()
    del _queue[:], _busy[:], _inline[:], _senders[:], _later[:], _inbox[:], _parked[:]
    _running, _stop, _hurry, _tid, _left = False, False, False, None, None
    for ping in inherited:
        # Pings registered or in flight at the fork belong to the parent; settle the
        # child's copies so that wait() returns and nothing is sent twice.
        ping._renew()
        ping._resolve("disabled", "forked child: the parent process sends this ping")


def _register_fork_hooks() -> None:
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(
            before=_before_fork,
            after_in_parent=_after_fork_parent,
            after_in_child=_after_fork_child,
        )


_register_fork_hooks()
#: ``logging`` registers a fork hook that takes its lock, and the worker's imports need
#: that lock (``logging.getLogger`` in urllib3). Hooks run newest first before a fork, so
#: if ``logging`` arrives after us, ours must be registered again after it (see _warm_up).
_logging_hook_is_older = "logging" in sys.modules
