"""The engine's decisions, as pure functions: who sends a batch, what exit and a fork do.

Everything here is a function of values the engine passes in (its jobs and a few facts
about the host it has looked up); nothing here reads the clock, the process or the
engine's state, so each decision is unit-tested without a process (tests/unit).

A job, here, is anything with the attributes ``detach`` (it may go to a detached sender
while the host lives), ``on_exit`` (``"handoff"``, ``"wait"`` or ``"drop"``) and
``retry_interval`` (None: one attempt).
"""

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Sequence
    from typing import Protocol, TypeVar

    class PlannedJob(Protocol):
        detach: bool
        on_exit: str
        retry_interval: "float | None"

    J = TypeVar("J", bound=PlannedJob)


def dispatch(batch: "Sequence[J]", *, green: bool, reaps: bool,
             may_import_threading: bool) -> "tuple[list[J], list[J], list[J]]":
    """How the thread sends ``batch`` after the deferral: ``(park, detached, here)``.

    * A green host (eventlet, gevent) gets a detached sender for everything, events too:
      sending from the host is what broke them.
    * While the host handles SIGCHLD itself (``reaps``), no process of ours may start: its
      jobs are sent from the host (``here``), or, when our thread may not import
      ``threading`` (before CPython 3.13, where the first importer becomes its main
      thread), parked for a thread of the host's (``park``).
    * Otherwise, a job that may be detached goes to a detached sender (``detached``), the
      rest (events, ``on_exit="wait"``) are sent from the host.

    >>> class J:
    ...     def __init__(self, name, detach): self.name, self.detach = name, detach
    ...     def __repr__(self): return self.name
    >>> ping, event = J("ping", True), J("event", False)
    >>> dispatch([ping, event], green=False, reaps=False, may_import_threading=True)
    ([], [ping], [event])
    >>> dispatch([ping, event], green=True, reaps=False, may_import_threading=True)
    ([], [ping, event], [])
    >>> dispatch([ping, event], green=False, reaps=True, may_import_threading=False)
    ([ping], [], [event])
    """
    park: list[J] = []
    rest = list(batch)
    if reaps and not green and not may_import_threading:
        park = [job for job in rest if job.detach]
        rest = [job for job in rest if not job.detach]
    spawning = green or not reaps
    detached = [job for job in rest if green or (job.detach and spawning)]
    here = [job for job in rest if job not in detached]
    return park, detached, here


def exit_asks_host(unsent: "Sequence[PlannedJob]", *, out: bool) -> bool:
    """Whether exit needs to know if a process it starts would die with the host.

    Only when something would be handed over, or is out with a sender (``out``): the
    look-up reads ``/proc``, and most exits need none.
    """
    return out or any(job.on_exit == "handoff" for job in unsent)


def exit_plan(unsent: "Sequence[J]", *, dies_with_host: bool, reaps: bool) -> "tuple[list[J], list[J], list[J]]":
    """``(drop, wait, handoff)``: each unsent job by its ``on_exit``, at interpreter exit.

    ``"handoff"`` jobs are waited for within ``exit_timeout`` instead (queued for our
    thread, which gives them to a detached sender, or sends them itself where no process
    of ours may start) where a process started now dies with the host (PID 1, the one child of an init that exits
    with it, a systemd service's main process) or the host reaps its own children.

    >>> class J:
    ...     def __init__(self, on_exit): self.on_exit = on_exit
    ...     def __repr__(self): return self.on_exit
    >>> exit_plan([J("drop"), J("wait"), J("handoff")], dies_with_host=False, reaps=False)
    ([drop], [wait], [handoff])
    >>> exit_plan([J("wait"), J("handoff")], dies_with_host=True, reaps=False)
    ([], [wait, handoff], [])
    """
    drop = [job for job in unsent if job.on_exit == "drop"]
    wait = [job for job in unsent if job.on_exit == "wait"]
    handoff = [job for job in unsent if job.on_exit == "handoff"]
    if dies_with_host or (handoff and reaps):
        wait, handoff = wait + handoff, []
    return drop, wait, handoff


def fork_plan(
    queued: "Sequence[J]", retries: "Sequence[tuple[float, J]]", *, now: float, deferral_left: float, reaps: bool
) -> "tuple[list[J], list[tuple[J, float]], list[J], list[tuple[float, J]]]":
    """Where the parent's queued and retrying jobs go once a fork that stopped our thread is done.

    Returns ``(once, looping, queue, retries)``: ``once``, jobs for one detached sender
    started after what is left of the deferral; ``looping``, ``(job, seconds until due)``
    for a sender that retries for as long as the parent lives; ``queue`` and ``retries``,
    what stays with the engine, for its thread.

    No thread of ours may run at a fork, and one restarted in the after-fork hook would be
    counted by CPython 3.13's multi-threaded fork warning, so what can be detached goes to
    a detached sender now. While the host reaps its children no process of ours may start
    (and no thread either: a forking host would meet it at its next fork), so all of it
    stays, for the next ping, ``Ping.wait()`` or exit.

    >>> class J:
    ...     def __init__(self, name, interval, detach=True):
    ...         self.name, self.detach, self.retry_interval = name, detach, interval
    ...     def __repr__(self): return self.name
    >>> once, retrying, event = J("once", None), J("retrying", 5.0), J("event", None, detach=False)
    >>> fork_plan([once, retrying, event], [], now=10.0, deferral_left=0.5, reaps=False)
    ([once], [(retrying, 0.5)], [event], [])
    >>> fork_plan([once, retrying], [], now=10.0, deferral_left=0.5, reaps=True)
    ([], [], [once], [(10.5, retrying)])
    """
    due = list(retries) + [(now + deferral_left, job) for job in queued if job.detach and job.retry_interval]
    if reaps:
        return [], [], [job for job in queued if not (job.detach and job.retry_interval)], due
    once = [job for job in queued if job.detach and not job.retry_interval]
    looping = [(job, max(0.0, when - now)) for when, job in due if job.detach]
    queue = [job for job in queued if not job.detach]
    kept = [(when, job) for when, job in due if not job.detach]
    return once, looping, queue, kept
