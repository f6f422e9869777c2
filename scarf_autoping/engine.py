"""The delivery engine: all its state on one object, one raw thread, the host never waits.

The rules (what follows them is below, and in :mod:`scarf_autoping.plans`):

* Every piece of state lives on the one :class:`Engine` in :data:`ENGINE`; a forked child
  gets a fresh one in one assignment. Nothing is a module global but constants.
* The host's threads only queue work and wake ours; they never wait on I/O of ours, and
  never on our lock while they hold it (a signal handler leaves its work in the inbox).
* Decisions (who sends a batch, what exit and a fork do) are pure functions of the
  state, in :mod:`scarf_autoping.plans`; one attempt at a ping is
  :mod:`scarf_autoping.pipeline`, the same in the sender and here; senders are watched
  by :mod:`scarf_autoping.supervise`.

One raw OS thread (``_thread``, not ``threading``) serves every package in the process:

1. **Deferral.** The thread first waits :data:`DEFERRAL` seconds on a lock, with the GIL
   released and nothing imported. A host that forks, monkey-patches or imports right
   after importing an adopting package never meets a busy thread. ``Ping.wait()`` ends
   the deferral at once.
2. **Delivery.** Then it hands the pings to a detached sender process
   (:mod:`scarf_autoping.spawn`): spawning costs the host well under a millisecond, and
   ``requests``, ``ssl`` and ``distro`` are not imported in the host. The sender is
   never the host's child (a host that waits for its children or forks must not meet
   it); the thread reads each outcome from a pipe and settles the
   :class:`~scarf_autoping.Ping`. The host sends a job itself, on this thread, with
   :mod:`scarf_autoping.pipeline`: for ``on_exit="wait"``, for background events, where
   no sender can be started (Windows, frozen applications, a failed spawn) and while
   the host handles SIGCHLD itself (no process of ours may be its child then).
3. **Exit.** At interpreter exit, pings that have not gone out are handed to a detached
   sender and the host exits at once (``on_exit="handoff"``, the default); with
   ``on_exit="wait"`` the host sends them and waits at most ``exit_timeout``; with
   ``"drop"`` they are dropped. A ping already in a sender's hands is never waited for
   and never sent twice. Where a process started at exit would die with the host (PID 1,
   the one child of a container's init, a systemd service's main process) or the host
   reaps its own children, exit has them sent and waits, within ``exit_timeout``. Ctrl-C ends any wait at exit;
   the other exit handlers run, and then the process dies of SIGINT.
4. **Fork.** ``os.register_at_fork`` hooks stop the idle thread before a fork and wait
   until the OS thread is gone, so CPython's "multi-threaded fork" warning never fires on
   our account and the child inherits nothing. The parent's queued pings then go to a
   detached sender right away; pings that retry go to a sender that retries for as long
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

import scarf_autoping as _face

from . import host, spawn
from .output import debug

__all__ = ["DEFERRAL", "ENGINE", "Engine", "Job", "hurry", "submit"]

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable

    from . import Ping
    from .supervise import Sender
    from .transport import Client, Result

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
#: How long the thread sleeps at a time while it only keeps parked jobs.
PARKED_NAP = 3600.0
#: The most a fork waits for our idle thread to stop.
STOP_WAIT = 0.5
#: The most a fork waits for a thread that is sending from the host to finish importing.
FORK_WAIT = 5.0

#: Why a ping is handed over when the host closed the pipe its sender reports through.
UNKNOWN = "sent by a detached process; its outcome is unknown (the host closed the descriptor it reported through)"

_allocate_lock, _start_new_thread = host.thread_primitives()
_get_native_id = getattr(_thread, "get_native_id", None)


class StateLock:
    """The engine's state lock: a real lock that a thread never waits on while it holds it.

    A signal handler runs on the main thread between any two bytecodes, also while that
    thread holds this lock or waits for it (in :func:`submit`, ``Ping.wait()``, at exit).
    A handler that calls ``autoping()`` then must not wait for the lock its own thread
    holds: each thread's entries are counted (before it waits, until after it has let go),
    :meth:`held_here` says so, and :func:`submit` and :func:`hurry` leave their work in
    the engine's inbox, done by that thread as soon as it lets go (``on_release``).

    Not a re-entrant ``RLock``: ``eventlet.monkey_patch()`` run after our import replaces
    every ``RLock`` it finds with a green one and writes "RLock(s) were not greened" to
    the host's stderr for one it cannot replace. A plain lock from the unpatched
    ``_thread`` is left alone.
    """

    __slots__ = ("_depth", "_ident", "_lock", "on_release")

    def __init__(self) -> None:
        self._lock = _allocate_lock()
        self._ident = _thread.get_ident  # its own reference: finalization clears module globals
        self._depth: dict[int, int] = {}  # thread: how many times it is in (one, but for a handler)
        self.on_release: "Callable[[int], None] | None" = None

    def held_here(self) -> bool:
        """Whether the current thread holds the lock or is waiting for it (a handler's view)."""
        return self._ident() in self._depth

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        me = self._ident()
        depth = self._depth
        depth[me] = depth.get(me, 0) + 1  # before the wait: a handler inside it must not wait too
        got = False
        try:
            got = self._lock.acquire(blocking, timeout)
        finally:
            if not got:
                self._leave(me)
        return got

    def release(self) -> None:
        me = self._ident()
        try:
            self._lock.release()
        finally:
            out = self._leave(me)  # after the release: a handler before it must not wait
        if out and self.on_release is not None:
            self.on_release(me)

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


class Job:
    """One ping or event for the engine.

    ``spec``: what :mod:`scarf_autoping.pipeline` (here or in a detached sender) needs:
    plain data. ``detach``: it may go to a detached sender while the host lives.
    ``on_exit``: ``"handoff"``, ``"wait"`` or ``"drop"``. ``timeout``, ``client`` and
    ``observe``: how the host sends it itself (an event logger's ``(connect, read)`` pair,
    its connection pool, its verbose output); a detached sender uses the spec's.
    ``taken_here``: the thread has taken it to send from the host and not started yet
    (exit may take it back).
    """

    __slots__ = ("client", "debug", "detach", "observe", "on_exit", "ping", "retry_interval", "spec", "started",
                 "taken_here", "timeout")

    def __init__(
        self,
        ping: "Ping",
        spec: "dict[str, object]",
        *,
        detach: bool = True,
        on_exit: str = "handoff",
        debug: bool = False,
        timeout: "float | tuple[float, float] | None" = None,
        client: "Client | None" = None,
        observe: "Callable[[Result], None] | None" = None,
    ) -> None:
        self.ping = ping
        self.spec = spec
        self.detach = detach
        self.on_exit = on_exit
        self.debug = debug
        self.timeout = timeout
        self.client = client
        self.observe = observe
        self.started = 0.0
        self.taken_here = False
        interval = spec.get("retry_interval")
        self.retry_interval: "float | None" = float(interval) if isinstance(interval, (int, float)) else None

    def seconds(self) -> float:
        """The ``timeout`` of one attempt, as a detached sender is given it."""
        value = self.spec.get("timeout", 3.0)
        return float(value) if isinstance(value, (int, float)) else 3.0


class ForkHold:
    """What our before-fork hook took, for the after-fork hooks to give back."""

    __slots__ = ("imports", "registry", "state", "stopped")

    def __init__(self, imports: bool = False, state: bool = False, stopped: bool = False,
                 registry: bool = False) -> None:
        self.imports = imports  # the import lock: no send from the host is importing
        self.state = state  # the state lock
        self.stopped = stopped  # our idle thread was stopped for the fork
        self.registry = registry  # the face's registry lock


class Engine:
    """All of the engine's state: its jobs, its thread, its locks, its fork bookkeeping.

    Lists are updated under :attr:`lock` only, never across I/O. A job is in at most one
    of ``queue`` (submitted), ``placing`` (taken by the thread, not yet with a sender or
    sent here), ``sending_here``, ``retries`` (failed, due again at a time), ``parked``
    (waiting for a thread of the host's), or a sender's jobs.
    """

    def __init__(self, *, registered: bool = False, warmed: bool = False, logging_hook_is_older: bool = False,
                 fork_dirty: bool = False) -> None:
        self.lock = StateLock()
        self.lock.on_release = self._released
        #: Held while nothing happens; released to wake the thread (deferral over, work, stop).
        self.wake = _allocate_lock()
        self.wake.acquire()
        #: Held by the thread while it imports for a send from the host; taken by the fork hooks.
        self.import_lock = _allocate_lock()
        #: Held while a sender's report is read: the thread and exit may both read it.
        self.reading = _allocate_lock()
        #: Never released: acquiring it with a timeout is a sleep that green libraries cannot patch.
        self.nap = _allocate_lock()
        self.nap.acquire()

        self.queue: list[Job] = []
        self.placing: list[Job] = []
        self.sending_here: list[Job] = []
        self.retries: list[tuple[float, Job]] = []  # (monotonic time due, job)
        self.senders: list[Sender] = []
        #: Work a signal handler asked for while its thread held (or waited for) the lock:
        #: a job to submit, or None for :func:`hurry`. Done by that thread as it lets go.
        self.inbox: "list[Job | None]" = []
        #: Jobs for a host that reaps its own children and has not imported ``threading``
        #: (before CPython 3.13): no process of ours may start, and our thread may not send
        #: them (sending imports ``threading``, which must happen on a thread of the host's).
        #: They wait for the host's own thread: ``Ping.wait()``, another ``autoping()``, exit.
        self.parked: list[Job] = []

        self.running = False  # a thread of ours exists
        self.stop = False  # asks the thread to leave at its next look
        self.hurried = False  # the deferral is over (Ping.wait(), exit)
        self.deferral_ends = 0.0  # when the current thread's deferral ends
        self.thread_done: "_thread.LockType | None" = None  # released by the current thread as it leaves
        self.thread_tid: "int | None" = None  # the current thread's OS id
        self.thread_ident: "int | None" = None  # the current thread's Python id
        self.exiting = False

        self.registered = registered  # our atexit handler is registered (inherited by a child)
        self.warmed = warmed  # what a send from the host imports is imported
        #: ``logging`` registers a fork hook that takes its lock, and our imports need that
        #: lock (``logging.getLogger`` in urllib3). Hooks run newest first before a fork, so
        #: if ``logging`` arrives after us, ours are registered again after it (see warm_up).
        self.logging_hook_is_older = logging_hook_is_older
        self.fork_owner: "int | None" = None  # the thread running our before-fork hook
        self.fork_depth = 0  # our hooks can be registered twice; only the outermost acts
        self.fork_hold = ForkHold()
        #: A child forked while a send from the host was importing (the wait ran out): it
        #: may hold half-finished imports, so it never starts a thread of its own.
        self.fork_dirty = fork_dirty

    # --- submitting and waking ------------------------------------------------------

    def submit(self, job: Job) -> None:
        """Queue ``job``; start the thread if there is none. Never raises, never blocks on I/O."""
        if "threading" not in sys.modules and (not job.detach or spawn.interpreter() is None or host_reaps()):
            # This job may be sent from the host, and sending imports ``threading``: it must
            # be imported on the caller's thread, never first by ours (see import_threading).
            import_threading()
        if self.lock.held_here():
            self.inbox.append(job)  # a signal handler on a thread inside our lock: never wait on it
            return
        self.unpark()
        with self.lock:
            if self.fork_dirty:
                job.ping._settle("failed", "forked while the worker was importing; not sent from this child")
                return
            self.register_atexit()
            uwsgi = host.uwsgi_process()
            if not (self.exiting or uwsgi):
                self.queue.append(job)
                if self.ensure_thread():
                    return
                self.queue.remove(job)
        # No thread of ours may run here (uWSGI forks its workers from C, at any time) or
        # none could be started: a detached sender, after the deferral, without a thread.
        exiting = self.exiting
        if self.hand_over([job], delay=0.0 if exiting else DEFERRAL, orphan=not exiting, loop=not exiting):
            why = "uWSGI process" if uwsgi else "interpreter exit" if exiting else "no worker thread"
            job.ping._settle("failed", f"{why}: no detached sender could be started")

    def hurry(self) -> bool:
        """End the deferral now (``Ping.wait()``); restart the thread if work is left for it.

        False when called by a signal handler on a thread inside our lock: the work is left
        for that thread, and nothing can settle while the handler runs (do not wait for it).
        """
        if self.lock.held_here():
            self.inbox.append(None)  # a signal handler on a thread inside our lock: never wait on it
            return False
        self.unpark()
        with self.lock:
            if self.queue or self.senders or self.retries:
                self.ensure_thread()
            # Only for a thread that runs: a flag left for the next one would skip its deferral.
            self.hurried = self.hurried or self.running
        self.wake_thread()
        return True

    def unpark(self) -> None:
        """Give parked jobs back to the thread, importing ``threading`` here, on the host's thread."""
        if not self.parked:
            return
        import_threading()
        with self.lock:
            self.queue.extend(self.parked)
            del self.parked[:]

    def _released(self, thread: int) -> None:
        """The state lock's release hook: do what signal handlers asked for meanwhile."""
        if self.inbox and thread != self.thread_ident:
            self.drain_inbox()

    def drain_inbox(self) -> None:
        """Do what signal handlers asked for while this thread held the lock (it has let go)."""
        while self.inbox:
            try:
                job = self.inbox.pop(0)
            except IndexError:  # taken meanwhile
                return
            if job is None:
                self.hurry()
            else:
                self.submit(job)

    def wake_thread(self) -> None:
        try:
            self.wake.release()
        except RuntimeError:  # already released: the thread will see it
            pass

    def ensure_thread(self) -> bool:
        """Start the thread unless it runs (caller holds the lock); False if it cannot start."""
        if self.running:
            return True
        if self.fork_owner is not None and self.fork_owner == _thread.get_ident():
            return False  # a signal handler inside a fork's hooks: no thread may start mid-fork
        done = _allocate_lock()
        done.acquire()
        self.running, self.stop, self.hurried, self.thread_done, self.thread_tid = True, False, False, done, None
        self.deferral_ends = time.monotonic() + DEFERRAL
        try:
            # The thread holds its engine and its own "done" lock: interpreter finalization
            # clears module globals, and a lock freed while a thread waits on it crashed
            # CPython 3.9 under -X dev (a segfault at exit, 1 run in 30).
            _start_new_thread(_run, (self, done))
        except BaseException:  # noqa: BLE001 - "can't start new thread", interpreter shutdown
            self.running = False
            return False
        return True

    def register_atexit(self) -> None:
        if not self.registered:
            atexit.register(_at_exit)
            self.registered = True

    # --- the thread -------------------------------------------------------------------

    def run(self, done: "_thread.LockType") -> None:
        """The thread's life: the deferral, then batches, senders and retries until idle."""
        lock = self.lock
        try:
            _block_signals()
            with lock:
                self.thread_tid = _get_native_id() if _get_native_id is not None else None
                self.thread_ident = _thread.get_ident()
            while True:  # the deferral: nothing imported, nothing sent, the GIL released
                with lock:
                    if self.stop:
                        return
                    remaining = 0.0 if self.hurried else self.deferral_ends - time.monotonic()
                if remaining <= 0:
                    break
                self.wake.acquire(True, remaining)
            # What every batch needs, loaded before any is taken: exit waits only briefly for
            # a batch being placed (PLACING_WAIT), and an import there would eat into that.
            from . import plans, supervise  # noqa: F401
            while True:
                with lock:
                    if self.stop:
                        return
                    batch = self.take_batch(time.monotonic())
                    if not (batch or self.senders or self.retries or self.parked):
                        self.running, self.hurried = False, False
                        return
                if batch:
                    self.dispatch(batch)
                if self.senders:
                    self.poll_senders()
                with lock:
                    nap = None if self.queue or self.stop else self.until_next_look()
                if nap:
                    # Between retries: on a lock, the GIL released, for as long as there is to wait.
                    self.wake.acquire(True, nap)
        except BaseException:  # noqa: BLE001 - interpreter shutdown can break anything here
            pass
        finally:
            try:
                with lock:
                    if self.thread_done is done:  # not replaced yet: no thread of ours runs after this one
                        self.running = False
            except BaseException:  # noqa: BLE001
                pass
            done.release()

    def take_batch(self, now: float) -> "list[Job]":
        """Take what is queued and what is due to retry (caller holds the lock)."""
        batch = self.queue[:] + [job for when, job in self.retries if when <= now]
        del self.queue[:]
        self.retries[:] = [(when, job) for when, job in self.retries if when > now]
        self.placing.extend(batch)
        return batch

    def until_next_look(self) -> "float | None":
        """Seconds the thread naps before it looks again (caller holds the lock); None: no nap."""
        if not all(sender.loops() for sender in self.senders):
            return POLL
        nap = self.until_next_retry()
        if self.senders:  # only senders that retry for as long as this process lives
            nap = LOOP_POLL if nap is None else min(nap, LOOP_POLL)
        if self.parked and nap is None:
            # Stay, idle: CPython 3.12 starts no thread in an atexit handler, and exit needs
            # one to send what is parked (a fork stops an idle thread, as always).
            nap = PARKED_NAP
        return nap

    def until_next_retry(self) -> "float | None":
        """Seconds until the earliest retry is due (caller holds the lock), None if none."""
        if not self.retries:
            return None
        return max(0.001, min(min(when for when, _ in self.retries) - time.monotonic(), _thread.TIMEOUT_MAX))

    def dispatch(self, batch: "list[Job]") -> None:
        """Send ``batch``: through one detached sender where it may, else from the host."""
        from . import plans

        stopped: "list[tuple[Job, str]]" = []
        if any(job.spec.get("state") for job in batch):  # pings of autoping(), with a state directory
            from . import state

            # An endpoint in a back-off, or gone (410): no sender for it.
            stopped = [(job, why) for job in batch if (why := state.suppressed(job.spec)) is not None]
        if stopped:
            held = [job for job, _ in stopped]
            with self.lock:
                self.unplace(held)
            for job, why in stopped:
                self.settle(job, "disabled", why)
            batch = [job for job in batch if job not in held]
        park, detached, here = plans.dispatch(batch, green=bool(host.green()), reaps=host_reaps(),
                                              may_import_threading=may_import_threading())
        if park:
            with self.lock:
                self.parked.extend(park)
                self.unplace(park)
        if detached and self.start_sender(detached, delay=0.0) is None:
            here += detached
        with self.lock:
            for job in here:
                job.taken_here = True  # taken, not started: exit may take it back
        for job in here:
            self.send_here(job)

    def unplace(self, jobs: "list[Job]") -> None:
        """The thread has placed ``jobs`` (caller holds the lock)."""
        for job in jobs:
            if job in self.placing:
                self.placing.remove(job)

    # --- detached senders ---------------------------------------------------------------

    def start_sender(
        self, jobs: "list[Job]", *, delay: float, waits: "list[float] | None" = None, loop: bool = False
    ) -> "Sender | None":
        """A detached sender for ``jobs`` that reports back through a pipe; None if none started.

        ``waits``: seconds each job waits before its first attempt (a fork's retries).
        ``loop``: it retries for as long as this process lives (no deadline of ours either).
        """
        from . import supervise

        now = time.monotonic()
        for job in jobs:
            job.started = now
        specs = [job.spec if waits is None else dict(job.spec, wait=wait) for job, wait in
                 zip(jobs, waits or [0.0] * len(jobs))]
        sender = supervise.start(jobs, specs, delay=delay, loop=loop, longest=max(job.seconds() for job in jobs))
        if sender is not None:
            with self.lock:
                self.senders.append(sender)
                self.unplace(jobs)
        return sender

    def poll_senders(self) -> None:
        """Read what the senders reported, settle those pings, reap the senders that ended."""
        from . import supervise

        for sender in self.senders[:]:  # sender_ended() removes from it
            self.read(sender)
            if not sender.reaped and supervise.reap(sender):
                self.read(sender)
            overdue = time.monotonic() > sender.deadline
            if overdue and not sender.reaped:  # our own child, stuck past its own deadline
                supervise.kill(sender)
            settled = not sender.out()
            if (sender.reaped and (sender.eof or settled)) or overdue:
                self.sender_ended(sender, "the detached sender ended without a result" if not overdue
                                  else "the detached sender did not answer in time")

    def read(self, sender: "Sender", wait: float = -1) -> None:
        """Settle what ``sender`` has reported so far (the thread and exit may both ask)."""
        from . import supervise

        if not self.reading.acquire(True, wait):
            return
        try:
            reports, lost = supervise.read(sender)
        finally:
            self.reading.release()
        for job, report in reports:
            self.record(job, report.status, report.reason, report.url, report.retry)
        for job in lost:
            self.settle(job, "handed-over", UNKNOWN)

    def sender_ended(self, sender: "Sender", reason: str) -> None:
        """``sender`` is gone: what it never reported failed (and is retried, if it retries)."""
        from . import supervise

        for job in sender.out():
            if job.retry_interval:
                # Started, and it never said (it crashed, or was stuck past its deadline in a
                # name lookup: the network is not up yet). Exactly what retries are for.
                self.record(job, "failed", reason, None, 0.0)
            else:
                self.settle(job, "failed", reason)
        sender.jobs = []
        supervise.close(sender)
        with self.lock:
            if sender in self.senders:
                self.senders.remove(sender)

    def hand_over(self, jobs: "list[Job]", *, delay: float, orphan: bool = False, loop: bool = False) -> "list[Job]":
        """Give ``jobs`` to a detached sender nobody waits on; return those that could not be."""
        pid = spawn.spawn([job.spec for job in jobs], delay=delay, orphan=orphan, loop=loop) if jobs else None
        if pid is None:
            return jobs
        for job in jobs:
            self.settle(job, "handed-over", "sent by a detached process" + ("" if orphan else f" (pid {pid})"))
        return []

    def give_up_at_exit(self, reason: str) -> None:
        """Exit without :mod:`scarf_autoping.exiting` (it could not be imported): nothing is
        handed over (a sender would not find our files either). What no sender has fails with
        ``reason``, what one has is ``handed-over``, and our thread is asked to leave."""
        with self.lock:
            self.exiting = True
            self.stop = True
            unsent = self.queue + self.placing + self.parked + [job for _, job in self.retries]
            unsent += [job for job in self.inbox if job is not None]
            out = [job for sender in self.senders for job in sender.out()]
        for job in unsent:
            self.settle(job, "failed", reason)
        for job in out:
            self.settle(job, "handed-over", "sent by a detached process")
        self.wake_thread()

    # --- sending from the host ----------------------------------------------------------

    def send_here(self, job: Job) -> None:
        """Send from the host, on this thread: the pipeline, its first step under the import lock."""
        from . import pipeline

        with self.lock:
            if job not in self.placing:  # exit has taken it back: its on_exit decides
                return
            job.taken_here = False
            self.sending_here.append(job)
            self.unplace([job])
        job.started = time.monotonic()
        prepared: "pipeline.Request | pipeline.Outcome | None" = None
        try:
            with self.import_lock:
                self.warm_up()
                prepared = pipeline.prepare(job.spec)
            if isinstance(prepared, pipeline.Outcome):
                outcome = prepared
            else:
                if not prepared.event:
                    job.ping.url = prepared.url
                timeout = job.timeout if job.timeout is not None else job.seconds()
                outcome = pipeline.deliver(prepared, timeout, job.client, job.observe)
        except BaseException as exc:  # noqa: BLE001 - a failure is a status, never a traceback
            pipeline.abandon(prepared)
            outcome = pipeline.Outcome("failed", type(exc).__name__)
        with self.lock:
            if job in self.sending_here:
                self.sending_here.remove(job)
        self.record(job, outcome.status, outcome.reason, outcome.url or job.ping.url, outcome.retry)

    def warm_up(self) -> None:
        """Import what a send from the host needs (under the import lock), once.

        ``logging`` comes first, so our fork hooks can be registered again after its own;
        then the logger gets its NullHandler, and the warnings that ``requests`` and
        ``urllib3`` raise about the machine's package versions at import time are silenced
        (narrowly, by message): they are not the host's business when we import them.
        """
        if self.warmed:
            return
        import logging

        if not self.logging_hook_is_older:
            register_fork_hooks()
            self.logging_hook_is_older = True

        logger = logging.getLogger("scarf_autoping")
        if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
            logger.addHandler(logging.NullHandler())

        import warnings

        for module, message in _IMPORT_TIME_WARNINGS:
            warnings.filterwarnings("ignore", message=message, module=module)

        from . import facts, transport

        transport.warm_up()
        facts.platform_facts()
        self.warmed = True

    # --- settling -----------------------------------------------------------------------

    def record(self, job: Job, status: str, reason: "str | None", url: "str | None", retry: "float | None") -> None:
        """An attempt's outcome: the next attempt scheduled for a ping that retries, else settled."""
        if status == "failed" and retry is not None and job.retry_interval:
            from . import retry as retries

            delay = retries.next_delay(job.retry_interval, retry, retries.jitter_fraction())
            with self.lock:  # exit takes what waits in retries under this lock: never one after it
                scheduled = not self.exiting
                if scheduled:
                    if url:
                        job.ping.url = url
                    job.ping._retrying(reason)
                    self.retries.append((time.monotonic() + delay, job))
            if scheduled:
                if job.debug:
                    debug(f"{job.ping.package}: attempt {job.ping.attempts} failed ({reason}), "
                          f"retrying in {delay:.0f} s: {job.ping.url}", block=self.on_our_thread())
                return
        job.ping.attempts += 1
        self.settle(job, status, reason, url)

    def settle(self, job: Job, status: str, reason: "str | None", url: "str | None" = None) -> None:
        """Settle ``job``'s ping for good; the debug line is written before the Ping is released."""
        if url:
            job.ping.url = url
        if job.debug:
            # Our thread may block on a full stderr; the host's own thread (exit, fork) never does.
            block = self.on_our_thread()
            if job.started:
                ms = (time.monotonic() - job.started) * 1000
                debug(f"{job.ping.package}: {status} ({reason}) in {ms:.0f} ms: {job.ping.url}", block=block)
            else:
                debug(f"{job.ping.package}: {status} ({reason})", block=block)
        job.ping._settle(status, reason)

    def on_our_thread(self) -> bool:
        return _thread.get_ident() == self.thread_ident

    def pending_pings(self) -> "list[Ping]":
        """Every ping this engine holds that has not settled (caller holds the lock)."""
        jobs = self.queue + self.placing + self.sending_here + self.parked + [job for _, job in self.retries]
        jobs += [job for job in self.inbox if job is not None]
        for sender in self.senders:
            jobs += sender.out()
        return [job.ping for job in jobs]

    # --- fork ---------------------------------------------------------------------------

    def before_fork(self) -> None:
        """Stop our idle thread, then take the registry, import and state locks, in that order."""
        me = _thread.get_ident()
        if self.fork_owner == me:
            self.fork_depth += 1
            return
        hold = ForkHold()
        try:
            # A fork running in another thread holds this lock until its own fork is done.
            hold.registry = _face.REGISTRY.lock.acquire()
            hold.stopped = self.stop_idle_thread()
            hold.imports = self.wait_for_import_phase()
            hold.state = self.lock.acquire(True, FORK_WAIT)
        except BaseException:  # noqa: BLE001 - Ctrl-C while the fork waited for us
            # The wait ends and the fork goes on. Re-raising is no use: CPython ignores an
            # exception from a fork hook after printing "Exception ignored in" to stderr, and
            # a signal re-raised here would fire inside the next hook. The after-fork hooks
            # release exactly what was taken; a child forked this early never sends.
            pass
        self.fork_owner, self.fork_depth, self.fork_hold = me, 1, hold

    def stop_idle_thread(self) -> bool:
        """Stop the thread if it is waiting (deferral, results); True when one was stopped.

        Waits until the OS thread has really gone (``/proc/self/task``): CPython 3.12 counts
        the process's OS threads for its fork warning, and a thread that has said goodbye to
        Python is still counted until the kernel has finished it.
        """
        with self.lock:
            if not self.running:
                return False
            self.stop = True
            done = self.thread_done
        self.wake_thread()
        deadline = time.monotonic() + STOP_WAIT
        while done is not None and not done.acquire(True, 0.002):
            with self.lock:
                # Sending from the host (on_exit="wait", events, no sender possible): it cannot
                # be stopped, so the fork does not wait for it (only for its imports).
                if self.sending_here or time.monotonic() > deadline:
                    self.stop = False
                    return False
        with self.lock:
            # Read after the thread has gone: it records its OS id first thing, under the lock.
            tid = self.thread_tid
            self.running, self.stop, self.thread_tid = False, False, None
        if tid is not None:
            task = f"/proc/self/task/{tid}"
            deadline = time.monotonic() + 0.05
            while os.path.exists(task) and time.monotonic() < deadline:
                self.nap.acquire(True, 0.0002)
        return True

    def wait_for_import_phase(self) -> bool:
        """Take the import lock, waiting for a send from the host to finish importing.

        If ``logging``'s own fork hook ran before ours (it registers itself in the middle of
        ``logging``'s import, which the thread may be running right now), this thread holds
        ``logging``'s lock while ours needs it to finish importing: let go of it while
        waiting, then take it back, so ``logging``'s after-fork hooks find it as they left it.
        """
        if self.import_lock.acquire(True, 0.05):
            return True
        held = _logging_lock_held_here()
        if held is None:
            return self.import_lock.acquire(True, FORK_WAIT)
        held.release()  # type: ignore[attr-defined]
        try:
            return self.import_lock.acquire(True, FORK_WAIT)
        finally:
            held.acquire()  # type: ignore[attr-defined]

    def leave_fork(self) -> bool:
        """Count one after-fork hook out; True for the outermost one, which does the work."""
        if self.fork_owner != _thread.get_ident():
            return False
        self.fork_depth -= 1
        if self.fork_depth:
            return False
        self.fork_owner = None
        return True

    def after_fork_parent(self) -> None:
        """Release the locks; a stopped thread's queued pings go to a detached sender now."""
        if not self.leave_fork():
            return
        hold = self.fork_hold
        if hold.state:
            self.lock.release()
        if hold.imports:
            self.import_lock.release()
        if hold.registry:
            _face.REGISTRY.lock.release()
        if not hold.stopped:
            return
        try:
            from . import plans

            with self.lock:
                queued, retrying = self.queue[:], self.retries[:]
                del self.queue[:], self.retries[:]
                now = time.monotonic()
                left = 0.0 if self.hurried else max(0.0, self.deferral_ends - now)
            reaps = host_reaps()
            once, looping, queue, kept = plans.fork_plan(queued, retrying, now=now, deferral_left=left, reaps=reaps)
            # One attempt each: one sender, after what is left of the deferral; its outcome is
            # read whenever our thread runs again (Ping.wait(), the next ping, exit).
            if once and self.start_sender(once, delay=left) is None:
                queue = once + queue
            # Retrying: a sender that sleeps until each is due and retries for as long as we
            # live. The ping stays unsettled: Ping.wait() says True once it is delivered.
            if looping and self.start_sender([job for job, _ in looping], delay=0.0,
                                             waits=[wait for _, wait in looping], loop=True) is None:
                kept += [(now + wait, job) for job, wait in looping]
            if queue or kept:
                # Only a ping that must be sent from the host restarts the thread here. Not for
                # a host that reaps its children: a forking one would meet that thread at its
                # next fork (CPython 3.13 counts it); its pings wait for the next ping,
                # Ping.wait() or exit.
                with self.lock:
                    self.queue[:0] = queue
                    self.retries.extend(kept)
                    if not reaps:
                        self.ensure_thread()
        except BaseException:  # noqa: BLE001 - never an error in the host's fork
            pass

    def child_engine(self) -> "Engine":
        """A fresh engine for a forked child; this one's pings are settled as the parent's."""
        inherited = _face.REGISTRY.pending()
        for ping in self.pending_pings():
            if ping not in inherited:
                inherited.append(ping)
        if self.senders:
            from .supervise import close

            for sender in self.senders:
                close(sender)  # this process's copy; the host may have reused the number before the fork
        child = Engine(registered=self.registered, warmed=self.warmed,
                       logging_hook_is_older=self.logging_hook_is_older,
                       fork_dirty=self.fork_dirty or not self.fork_hold.imports)
        _face.REGISTRY.after_fork_child()
        for ping in inherited:
            # Pings registered or in flight at the fork belong to the parent; settle the
            # child's copies so that wait() returns and nothing is sent twice.
            ping._renew()
            ping._settle("disabled", "forked child: the parent process sends this ping")
        return child


#: (module, message start) of warnings our dependencies raise at import about the
#: installed versions of their own dependencies or of OpenSSL.
_IMPORT_TIME_WARNINGS = (
    ("requests", "Unable to find acceptable character detection dependency"),
    ("requests", r"urllib3 \(.*\) or chardet"),
    ("requests", "Old version of cryptography"),
    ("urllib3", "urllib3 v2 only supports OpenSSL"),
)


#: The engine of this process. A forked child gets a new one (see ``_after_fork_child``).
ENGINE = Engine(logging_hook_is_older="logging" in sys.modules)


def submit(job: Job) -> None:
    """Queue ``job`` on this process's engine (see :meth:`Engine.submit`)."""
    ENGINE.submit(job)


def hurry() -> bool:
    """End the deferral of this process's engine (see :meth:`Engine.hurry`)."""
    return ENGINE.hurry()


def _run(engine: Engine, done: "_thread.LockType") -> None:
    engine.run(done)


def host_reaps() -> bool:
    """The host handles SIGCHLD in Python: start no process of ours while it lives.

    Green hosts keep their detached sender (sending from the host is what broke them).
    """
    return host.reaps_children() and not host.green()


def may_import_threading() -> bool:
    """Whether our thread may import ``threading`` (as sending from the host does).

    Before CPython 3.13 the thread that first imports it becomes its "main thread", and
    interpreter exit waits for that thread: it must not be ours. :meth:`Engine.submit`
    imports it on the caller's thread when it can tell; a host that installs its SIGCHLD
    handler later and never imports ``threading`` has its jobs parked.
    """
    return "threading" in sys.modules or sys.version_info >= (3, 13)


def import_threading() -> None:
    """Import ``threading`` on this thread, a host's, before our thread may need it.

    Before CPython 3.13, the thread that first imports ``threading`` becomes its "main
    thread", and interpreter exit waits for that thread: it must never be ours.
    """
    if "threading" not in sys.modules:
        try:
            import threading  # noqa: F401
        except Exception:  # noqa: BLE001
            pass


def _block_signals() -> None:
    """Block every signal on this thread, first thing: the host's signals are the host's.

    The kernel delivers a signal for the process to any thread that does not block it: a
    host that blocks one on its own threads around a critical section (to take it later
    with ``sigwait``, or to be interrupted only outside it) would otherwise have it
    delivered here, and die of it or run its handler inside that section.
    """
    try:
        import _signal  # type: ignore[import-not-found]  # built in, no stubs; already imported: no cost

        _signal.pthread_sigmask(_signal.SIG_BLOCK, _signal.valid_signals())
    except (ImportError, AttributeError, OSError, ValueError):  # no pthread_sigmask (Windows)
        pass


def _logging_lock_held_here() -> "object | None":
    """``logging``'s module lock when the current thread holds it (once), else None."""
    try:
        lock = getattr(sys.modules.get("logging"), "_lock", None)
        if lock is not None and lock._is_owned():
            return lock  # type: ignore[no-any-return]
    except Exception:  # noqa: BLE001 - another logging implementation: just wait
        pass
    return None


def _at_exit() -> None:
    """Interpreter exit: see :mod:`scarf_autoping.exiting` (imported only now)."""
    try:
        try:
            from . import exiting
        except Exception as exc:  # noqa: BLE001 - our files gone since the start (uninstalled, replaced)
            ENGINE.give_up_at_exit(f"interpreter exit: scarf_autoping's exit code could not be loaded "
                                   f"({type(exc).__name__})")
            return
        exiting.at_exit(ENGINE)
    except BaseException:  # noqa: BLE001 - never an error at interpreter exit
        pass


# --- fork ---------------------------------------------------------------------------


def _before_fork() -> None:
    ENGINE.before_fork()


def _after_fork_parent() -> None:
    ENGINE.after_fork_parent()


def _after_fork_child() -> None:
    """A fresh engine, in one assignment; what the parent had pending is the parent's to send."""
    global ENGINE
    old = ENGINE
    if not old.leave_fork():
        return
    ENGINE = old.child_engine()


def register_fork_hooks() -> None:
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_parent,
                            after_in_child=_after_fork_child)


register_fork_hooks()
