"""The detached sender: a short-lived process that delivers pings handed over by a host.

Started by :func:`scarf_autoping.spawn.spawn` as ``python -I -S -c BOOTSTRAP`` (a command
line that is the same for every host, see :data:`scarf_autoping.spawn.BOOTSTRAP`), with
the null device on stdout/stderr, in a session of its own. The bootstrap reads the
settings from a pipe on its stdin, imports this module from ``home`` and calls
:func:`main` with them::

    {"jobs": [JOB, ...], "home": the path entry holding scarf_autoping,
     "path": [the host's whole sys.path, absolute], "skip": [indices in "path" of the
     host's working and script directories], "delay": seconds, "report": bool,
     "loop": bool, "host": pid}

    JOB (a ping):   {"method": "GET", "template": ..., "package": ..., "version": null | "1.2",
                     "variables": {...}, "ci": false, "timeout": 3.0, "retry_interval": null | s,
                     "wait": extra seconds before the first attempt,
                     "headers": {...} and "body": "JSON text" (optional, for a POST)}
    JOB (an event): {"method": "POST", "url": ..., "body": "...", "timeout": 3.0, "event": true}

It sleeps ``delay`` seconds (a host that is starting up keeps the machine to itself),
appends ``path`` but ``skip`` to its own ``sys.path`` (the standard library stays first:
nothing of the host's shadows it), finds distribution metadata through the whole
``path`` (the host may have found the package in its working directory), builds each URL
from the same template and facts code the host would use, sends it with the same
transport (one pipeline for both: :mod:`scarf_autoping.pipeline`), and, with ``report``,
writes one line per job to descriptor 3 (:mod:`scarf_autoping.protocol`): the host
schedules the retries.

With ``loop`` (set where no thread of the host's will schedule retries: uWSGI, a fork),
a job with a ``retry_interval`` is tried again here, for as long as the host process
``host`` lives; once it is gone, one last attempt is made, as a hand-over would.

It never prints, always exits 0 (a process manager that reaps it, such as gunicorn's
arbiter, must see nothing unusual) and is gone within ``delay`` plus the largest
``timeout`` plus :data:`GRACE` seconds, whatever DNS does: each job runs on a thread of
its own and the main thread only waits, with that deadline.
"""

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

    from .pipeline import Outcome

#: Seconds allowed beyond ``delay`` and the ping's ``timeout`` for start-up and imports.
GRACE = 2.0
#: The reason given for a job still out at the deadline (the ``timeout`` does not bound
#: name resolution): a failure to try again, as the network may not be up yet.
TIMED_OUT = "timed out: no outcome before the sender's deadline (a name lookup that never answered?)"

#: The jobs already reported (index: who reported it): each once, by its own thread or,
#: at the deadline, by the main thread (``dict.setdefault`` is one atomic step).
_reported: "dict[int, object]" = {}


def _report(fd: "int | None", index: int, outcome: "Outcome") -> None:
    """Write ``outcome`` of job ``index`` on the result pipe: once per job, never blocking."""
    if fd is None:
        return
    me = object()
    if _reported.setdefault(index, me) is not me:
        return
    from scarf_autoping import protocol

    try:
        os.write(fd, protocol.encode(index, outcome.status, outcome.reason, outcome.url, outcome.retry))
    except OSError:  # the host has gone, or a full pipe nobody reads: never block on it
        pass


#: The host's start time (``/proc/<pid>/stat``), read once at start: a pid can be reused.
_host_started: "list[bytes | None]" = []


def _start_time(pid: int) -> "bytes | None":
    """The kernel's start time of process ``pid`` (Linux), None where it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _host_alive(pid: "int | None") -> bool:
    if not pid:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, under another user
        pass
    if not _host_started:
        _host_started.append(_start_time(pid))
    # The same pid with another start time is another process: our host is gone.
    return _host_started[0] is None or _start_time(pid) == _host_started[0]


def _sleep(seconds: float, host: "int | None") -> bool:
    """Sleep ``seconds``, looking at the host every few seconds; False once it is gone."""
    import time

    end = time.monotonic() + seconds
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return True
        time.sleep(min(left, 2.0))
        if not _host_alive(host):
            return False


def _deliver(index: int, job: "dict[str, Any]", fd: "int | None", loop: bool, host: "int | None") -> None:
    from scarf_autoping import pipeline, retry

    interval = job.get("retry_interval") if loop else None
    if job.get("wait") and not _sleep(float(job["wait"]), host if interval else None):
        interval = None  # the host has gone while we waited: one attempt, as a hand-over
    while True:
        outcome = pipeline.attempt(job)
        if outcome.status == "sent" or outcome.retry is None or not interval:
            _report(fd, index, outcome)
            return
        if not _sleep(retry.next_delay(float(interval), outcome.retry, retry.jitter_fraction()), host):
            interval = None


def main(settings: "dict[str, Any]") -> None:
    """Run the jobs in ``settings``, all at once; exit 0 whatever happens."""
    try:
        import _thread
        import time

        started = time.monotonic()
        jobs = settings.get("jobs") or []
        delay = float(settings.get("delay") or 0.0)
        longest = max((float(job.get("timeout", 3.0)) + float(job.get("wait") or 0.0) for job in jobs), default=0.0)
        deadline = started + delay + longest + GRACE
        loop = bool(settings.get("loop"))
        host = settings.get("host") if isinstance(settings.get("host"), int) else None
        if loop and host:
            _host_alive(host)  # records its start time while it surely lives
        try:
            os.chdir("/")  # never keep the host's working directory busy
        except OSError:
            pass
        fd = 3 if settings.get("report") else None
        if fd is not None:
            os.set_blocking(fd, False)  # a host that reads no more must never hold us
        if delay:
            time.sleep(delay)
        entries = settings.get("path") or []
        path = [p for p in entries if isinstance(p, str)]
        skip = settings.get("skip") or []
        # Appended: the standard library comes first, as in a fresh interpreter, and the
        # host's own directories are left out (a random.py there is the host's business).
        sys.path.extend(p for i, p in enumerate(entries) if isinstance(p, str) and i not in skip and p not in sys.path)
        from scarf_autoping import naming

        naming.search_path = path or None  # metadata: where the host would find it
        import warnings

        warnings.simplefilter("ignore")  # nobody would read them: stderr is the null device
        from scarf_autoping import pipeline, transport

        transport.warm_up(light=True)  # h-light: pings without requests (scarf_autoping/light.py)
        done = _thread.allocate_lock()
        count = _thread.allocate_lock()
        left = [len(jobs)]

        def run(index: int, job: "dict[str, Any]") -> None:
            try:
                _deliver(index, job, fd, loop, host)
            finally:
                with count:
                    left[0] -= 1
                    if not left[0]:
                        done.release()

        if jobs:
            done.acquire()
            for index, job in enumerate(jobs):
                _thread.start_new_thread(run, (index, job))
            # The main thread only waits: a job stuck in DNS cannot hold the process past the
            # deadline. A sender that retries for a living host has no deadline but its host.
            retrying = loop and any(job.get("retry_interval") for job in jobs)
            if not done.acquire(timeout=-1 if retrying else max(0.0, deadline - time.monotonic())):
                for index in range(len(jobs)):  # those still out; the others were reported
                    _report(fd, index, pipeline.Outcome("failed", TIMED_OUT, None, 0.0))
    except BaseException:  # noqa: BLE001 - the sender is silent and always exits 0
        pass
    os._exit(0)
