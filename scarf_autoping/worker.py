"""One background daemon thread that sends pings and events, and never blocks the host.

* The thread exists only while it has work: it starts when a job is submitted and ends
  when the queue is empty, so a host that forks later sees a single-threaded process.
* Interpreter exit waits for jobs still in flight, for at most the largest
  ``exit_timeout`` among them; with nothing in flight, exit is not delayed at all.
* Fork safety: the worker holds ``_import_lock`` while it imports ``requests``/``distro``
  and reads metadata. ``os.register_at_fork`` hooks take the same lock before a fork, so
  a fork waits for the import phase instead of giving the child an import lock held by
  a thread that does not exist there. The child starts with a fresh, empty worker and
  never re-sends what its parent had queued or in flight.
* Nothing escapes: every failure becomes a job status, never an exception or output.

On the host's import path: no ``from __future__ import annotations`` (importing
``__future__`` costs the host about 0.1 ms), so annotations that need it are strings.
"""

import atexit
import os
import sys
import threading
import time
from collections import deque

import scarf_autoping as _face

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable

    from . import Ping

#: Held by the worker across its import and preparation phase; taken by the fork hooks.
_import_lock = threading.RLock()
#: Guards the queue, the pending list and the thread handle.
_state_lock = threading.Lock()
_settled = threading.Condition(_state_lock)

_queue: "deque[Job]" = deque()
_pending: "list[Ping]" = []
_thread: "threading.Thread | None" = None
_atexit_registered = False
_warmed = False


class Job:
    """Work for the thread: ``prepare()`` runs under the import lock (imports, facts,
    metadata, URL building) and returns what ``send(prepared)`` needs; ``send`` does the
    network I/O and returns ``(status, reason)``. ``debug`` prints one line on stderr."""

    __slots__ = ("debug", "ping", "prepare", "send")

    def __init__(
        self,
        ping: "Ping",
        prepare: "Callable[[], object]",
        send: "Callable[[object], tuple[str, str | None]]",
        debug: bool = False,
    ) -> None:
        self.ping = ping
        self.prepare = prepare
        self.send = send
        self.debug = debug


def submit(job: "Job") -> None:
    """Queue ``job`` and make sure the thread runs. Never raises, never blocks on I/O."""
    global _thread
    with _state_lock:
        if _fork_dirty:
            _settle(job.ping, "failed", "forked while the worker was importing; not sent from this child")
            return
        _queue.append(job)
        _pending.append(job.ping)
        _register_atexit()
        if _thread is not None:
            return
        thread = threading.Thread(target=_run, name="scarf-autoping", daemon=True)
        try:
            thread.start()
        except BaseException:  # noqa: BLE001 - "can't create new thread at interpreter shutdown"
            _queue.remove(job)
            _settle(job.ping, "failed", "could not start the worker thread")
            return
        _thread = thread


def flush(timeout: "float | None" = None) -> bool:
    """Wait until nothing is queued or in flight, for at most ``timeout`` seconds.

    With ``timeout=None`` the bound is the largest ``exit_timeout`` of the jobs waiting.
    Returns True when everything settled.
    """
    with _settled:
        if not _pending:
            return True
        if timeout is None:
            timeout = max(p.exit_timeout for p in _pending)
        deadline = time.monotonic() + timeout
        while _pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            _settled.wait(remaining)
        return True


def _flush_at_exit() -> None:
    try:
        flush()
    except BaseException:  # noqa: BLE001 - never an error at interpreter exit
        pass


def _register_atexit() -> None:
    global _atexit_registered
    if not _atexit_registered:
        atexit.register(_flush_at_exit)
        _atexit_registered = True


def _settle(ping: "Ping", status: str, reason: "str | None") -> None:
    """Record the outcome (caller holds ``_state_lock``) and wake anyone waiting to exit."""
    ping._resolve(status, reason)
    try:
        _pending.remove(ping)
    except ValueError:
        pass
    _settled.notify_all()


def _warm_up() -> None:
    """First import phase (under the import lock): every module a job needs.

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


def _run() -> None:
    global _thread
    try:
        while True:
            with _state_lock:
                if not _queue:
                    _thread = None
                    return
                job = _queue.popleft()
            started = time.perf_counter()
            try:
                with _import_lock:
                    _warm_up()
                    prepared = job.prepare()
                status, reason = job.send(prepared)
            except BaseException as exc:  # noqa: BLE001 - a failure is a status, never a traceback
                status, reason = "failed", type(exc).__name__
            if job.debug:
                # Before settling: once settled, interpreter exit may proceed, and a daemon
                # thread still inside a stderr write then aborts the interpreter.
                _debug_line(job.ping.package, status, reason, job.ping.url, (time.perf_counter() - started) * 1000)
            with _state_lock:
                _settle(job.ping, status, reason)
    except BaseException:  # noqa: BLE001 - interpreter shutdown can break anything here
        _thread = None


def _debug_line(package: str, status: str, reason: "str | None", url: "str | None", ms: float) -> None:
    debug(f"{package}: {status} ({reason}) in {ms:.0f} ms: {url}")


def debug(message: str) -> None:
    """One ``scarf-autoping: ...`` line on stderr (only when the user asked for debug output)."""
    write_stderr(f"scarf-autoping: {message}\n")


def write_stderr(text: str) -> None:
    """Write ``text`` to stderr from any thread without ever aborting interpreter exit.

    Straight to the file descriptor when there is one: a daemon thread blocked inside
    ``sys.stderr.write`` (a full pipe) holds the stream's lock, and an interpreter that
    finalizes meanwhile aborts with ``Fatal Python error: _enter_buffered_busy``.
    ``os.write`` holds no Python-level lock while it blocks.
    """
    try:
        stream = sys.stderr
        try:
            fd = stream.fileno()
        except Exception:  # noqa: BLE001 - replaced by something without a descriptor
            fd = -1
        if fd < 0:
            stream.write(text)
            stream.flush()
            return
        data = text.encode(getattr(stream, "encoding", None) or "utf-8", "backslashreplace")
        while data:
            data = data[os.write(fd, data):]
    except BaseException:  # noqa: BLE001 - a closed stderr is not our caller's problem
        pass


#: The most a fork waits for the worker's import phase. Normally the phase ends within
#: a fraction of a second; on a heavily loaded machine it can take seconds, and a fork
#: that went ahead mid-import would give the child half-held import locks. The bound
#: only matters if another library's newer fork hook holds a lock the worker needs,
#: where waiting forever would freeze the host.
FORK_WAIT = 5.0

_fork_owner: "int | None" = None  # the thread running our before-fork hook
_fork_depth = 0  # our hooks can be registered twice (see _warm_up); only the outermost acts
_fork_held: "tuple[bool, bool]" = (False, False)
#: Set in a child forked while the worker was still importing (the wait above ran out):
#: the child may hold half-finished imports, so it never starts a worker of its own.
_fork_dirty = False


def _before_fork() -> None:
    """Take the registry, import and state locks, in that fixed order, before a fork.

    The worker never takes the registry lock and takes the state lock only while not
    holding the import lock, so this order cannot deadlock with it.
    """
    global _fork_owner, _fork_depth, _fork_held
    me = threading.get_ident()
    if _fork_owner == me:
        _fork_depth += 1
        return
    # A fork running in another thread holds this lock until its own fork is done.
    _face._registry_lock.acquire()
    imported = _wait_for_import_phase()
    state = _state_lock.acquire(timeout=FORK_WAIT)
    _fork_owner, _fork_depth, _fork_held = me, 1, (imported, state)


def _wait_for_import_phase() -> bool:
    """Take the import lock, waiting for the worker's import phase to end.

    If ``logging``'s own fork hook ran before ours (it registers itself in the middle of
    ``logging``'s import, which the worker may be running right now), this thread holds
    ``logging``'s lock while the worker needs it to finish importing: let go of it while
    waiting, then take it back, so ``logging``'s after-fork hooks find it as they left it.
    """
    if _import_lock.acquire(timeout=0.05):
        return True
    held = _logging_lock_held_here()
    if held is None:
        return _import_lock.acquire(timeout=FORK_WAIT)
    held.release()
    try:
        return _import_lock.acquire(timeout=FORK_WAIT)
    finally:
        held.acquire()


def _logging_lock_held_here() -> "threading.RLock | None":
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
    if _fork_owner != threading.get_ident():
        return False
    _fork_depth -= 1
    if _fork_depth:
        return False
    _fork_owner = None
    return True


def _after_fork_parent() -> None:
    if not _leave_fork():
        return
    imported, state = _fork_held
    if state:
        _state_lock.release()
    if imported:
        _import_lock.release()
    _face._registry_lock.release()


def _after_fork_child() -> None:
    """Fresh locks and an empty worker; what the parent had pending is the parent's to send."""
    global _import_lock, _state_lock, _settled, _thread, _fork_dirty
    if not _leave_fork():
        return
    if not _fork_held[0]:
        _fork_dirty = True
    inherited = [p for p in _face._registry.values() if p.status == "pending"]
    inherited += [p for p in _pending if p not in inherited]
    _face._registry_lock = _face.RLock()
    _import_lock = threading.RLock()
    _state_lock = threading.Lock()
    _settled = threading.Condition(_state_lock)
    _queue.clear()
    _pending.clear()
    _thread = None
    for ping in inherited:
        # Pings registered or in flight at the fork belong to the parent; settle the
        # child's copies so that wait() returns and nothing is sent twice.
        ping._done = threading.Event()
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
