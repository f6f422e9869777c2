"""Interpreter exit: what has not gone out is dropped, handed over or waited for.

Imported only at exit, by the engine's atexit handler. The decision is
:func:`scarf_autoping.plans.exit_plan`; this module carries it out:

* ``on_exit="drop"``: dropped. ``"handoff"``: given to a detached sender, and the host
  exits at once. ``"wait"``: sent from the host by our thread; exit waits at most the
  largest ``exit_timeout`` of what it waits for.
* A ping already with a sender is never waited for and never sent twice: it is
  ``handed-over`` (unless a process started now dies with the host: then exit waits for
  that sender too, within ``exit_timeout``).
* Ctrl-C during the wait ends it quietly; the other exit handlers run, then the process
  dies of SIGINT as CPython's own unhandled KeyboardInterrupt would make it.
"""

import sys
import time

from . import host, plans
from .engine import host_reaps, import_threading

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from . import Ping
    from .engine import Engine, Job

#: The most exit waits for the thread to place a batch it has taken with a sender.
PLACING_WAIT = 0.25


def at_exit(engine: "Engine") -> None:
    """Hand over what has not gone out, wait only where the author asked for it (or must)."""
    try:
        settle_unsent(engine)
    except KeyboardInterrupt:
        interrupted()
    stop_thread(engine)


def interrupted() -> None:
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


def settle_unsent(engine: "Engine") -> None:
    """Exit proper: what is unsent is dropped, handed over or waited for, per on_exit."""
    with engine.lock:
        engine.exiting = True
        # A ping waiting to retry is unsent.
        unsent = engine.queue[:] + [job for _, job in engine.retries] + engine.parked
        del engine.queue[:], engine.retries[:], engine.parked[:]
    deadline = time.monotonic() + PLACING_WAIT
    while any(not job.taken_here for job in engine.placing) and time.monotonic() < deadline:
        engine.nap.acquire(True, 0.001)  # a batch the thread is placing with a sender right now
    with engine.lock:
        # Taken by the thread to send from the host (one at a time), not started: as unsent.
        taken = [job for job in engine.placing if job.taken_here]
        engine.unplace(taken)
        senders = list(engine.senders)
    unsent += taken
    stays = False
    if plans.exit_asks_host(unsent, out=bool(senders or engine.placing)):
        stays = host.dies_with_host()
    drop, waiting, handoff = plans.exit_plan(unsent, dies_with_host=stays, reaps=host_reaps())
    for job in drop:
        job.ping._settle("dropped", "dropped at interpreter exit")
    waiting += engine.hand_over(handoff, delay=0.0)
    if waiting:
        import_threading()  # our thread sends these from the host: it must not be the first
        with engine.lock:
            engine.queue.extend(waiting)
            started = engine.ensure_thread()
        if not started:
            for job in waiting:
                job.ping._settle("failed", "could not start the worker thread at exit")
        engine.hurry()
    out: list[Job] = []  # with a sender that is out
    for sender in senders:  # what the senders already reported; the rest is theirs to finish
        engine.read(sender, 0.25)
        out += sender.out()
    if not stays:
        for job in out:
            job.ping._settle("handed-over", "sent by a detached process")
        out = []
    with engine.lock:
        pending = [job.ping for job in waiting + engine.sending_here + out + (engine.placing if stays else [])
                   if job.ping.status in ("pending", "retrying")]
    if pending:
        wait_for(pending, max(ping.exit_timeout for ping in pending))

def stop_thread(engine: "Engine") -> None:
    """Ask our thread to leave before finalization starts; wait for it only if it is idle.

    Nothing is left for it to do that exit has not handed over or waited for, and a thread
    of ours blocked on a lock while the interpreter tears itself down is a hazard
    (modules are cleared, locks freed) that costs nothing to avoid.
    """
    with engine.lock:
        if not engine.running:
            return
        engine.stop = True
        done, busy = engine.thread_done, bool(engine.sending_here or engine.placing)
    engine.wake_thread()
    if not busy and done is not None:
        done.acquire(True, 0.1)


def wait_for(pings: "list[Ping]", timeout: float) -> None:
    """Wait until each of ``pings`` has settled, all within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    for ping in pings:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        ping.wait(remaining)
