"""Detached senders the engine waits on: start one, read its reports, see its end.

A sender started here reports through a pipe of ours (:mod:`scarf_autoping.protocol`)
and is not our child (:func:`scarf_autoping.spawn.spawn`): its end is the pipe's end.
The rules, because the descriptor numbers live in the host's process:

* A result pipe is known by its identity (device and inode), recorded when it is made.
  Before every read and every close the descriptor is checked to still be that pipe,
  non-blocking: a host may close every descriptor above 2 (daemonising, after a fork)
  and reuse the numbers for its own pipes and files. One that fails the check is the
  host's: never read, closed or waited on; its sender's jobs become unknown.
* Nothing here settles a ping: :func:`read` returns what was reported, and the engine
  decides what it means.
"""

import os
import sys
import time

if sys.platform == "win32":  # pragma: no cover - no detached sender, nothing to read or reap
    _posix = os
else:  # eventlet patches os.read and os.waitpid; the posix module itself is never patched
    import posix as _posix

from . import protocol, spawn

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Sequence

    from .engine import Job

#: The deadline of a sender that retries for as long as the host lives: none.
FOREVER = float("inf")
#: Seconds allowed beyond a sender's own bound (delay, timeout, grace) before it is given up on.
SLACK = 2.0
#: The sender's own grace beyond its delay and timeout (see :data:`scarf_autoping.sender.GRACE`), and more.
SENDER_GRACE = 3.0


class Sender:
    """A detached sender: its pid, its result pipe and identity, its jobs (None once reported).

    ``jobs`` holds the engine's job objects in the order the sender was given them; an
    entry becomes None once its report has been read.
    """

    __slots__ = ("buffer", "deadline", "eof", "fd", "jobs", "pid", "pipe", "reaped")

    def __init__(self, pid: int, fd: int, jobs: "list[Job | None]", deadline: float,
                 pipe: "tuple[int, int]", reaped: bool) -> None:
        self.pid = pid
        self.fd = fd
        self.jobs = jobs
        self.deadline = deadline
        self.pipe = pipe
        self.buffer = b""
        self.eof = False
        self.reaped = reaped

    def out(self) -> "list[Job]":
        """The jobs whose report has not been read yet."""
        return [job for job in self.jobs if job is not None]

    def loops(self) -> bool:
        """Whether it retries for as long as the host lives (and so has no deadline)."""
        return self.deadline == FOREVER


def start(jobs: "Sequence[Job]", specs: "list[dict[str, object]]", *, delay: float, loop: bool = False,
          longest: float = 3.0) -> "Sender | None":
    """Start a detached sender for ``specs`` reporting on a pipe of ours; None if none started.

    ``jobs`` are what its reports are matched with, in the same order as ``specs``.
    ``loop``: it retries for as long as the host lives, so it has no deadline either.
    ``longest``: the largest ``timeout`` among the specs.
    """
    pipe = spawn.result_pipe()
    if pipe is None:
        return None
    read_end, write_end = pipe
    identity = pipe_identity(read_end)
    if identity is None:  # cannot happen to a pipe just made; never trust what cannot be checked
        return None
    now = time.monotonic()
    pid = spawn.spawn(specs, delay=delay, result_fd=write_end, orphan=True, loop=loop)
    close_pipe_end(write_end, identity)
    if pid is None:
        close_pipe_end(read_end, identity)
        return None
    deadline = FOREVER if loop else now + delay + longest + SLACK + SENDER_GRACE
    # What started an orphan is reaped already; its end is the pipe's EOF.
    jobs_out: "list[Job | None]" = list(jobs)
    return Sender(pid, read_end, jobs_out, deadline, identity, reaped=spawn.orphans())


def read(sender: Sender) -> "tuple[list[tuple[Job, protocol.Report]], list[Job]]":
    """What ``sender`` has reported so far, as ``(job, report)`` pairs, and the jobs now lost.

    Lost: the host closed our descriptor (and the number may name its own pipe or file
    now). The sender was started; the outcome of its jobs cannot be known.
    """
    lost = False
    while not sender.eof:
        if not is_ours(sender):
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
    reports, sender.buffer = protocol.decode(sender.buffer)
    got: list[tuple[Job, protocol.Report]] = []
    for report in reports:
        if report.index < len(sender.jobs):
            job = sender.jobs[report.index]
            if job is not None:
                sender.jobs[report.index] = None
                got.append((job, report))
    gone: list[Job] = []
    if lost:
        gone = sender.out()
        sender.jobs = [None] * len(sender.jobs)
    return got, gone


def reap(sender: Sender) -> bool:
    """Reap ``sender`` if it is our child and has ended; True once it is gone."""
    if not sender.reaped:
        try:
            pid, _ = _posix.waitpid(sender.pid, os.WNOHANG)
            sender.reaped = pid != 0
        except OSError:  # ChildProcessError: reaped by the host (gunicorn's arbiter, a SIGCHLD handler)
            sender.reaped = True
    return sender.reaped


def kill(sender: Sender) -> None:
    """Kill our own child ``sender``, stuck past its deadline, and reap it."""
    try:
        os.kill(sender.pid, 9)
        _posix.waitpid(sender.pid, 0)
    except OSError:
        pass
    sender.reaped = True


def pipe_identity(fd: int) -> "tuple[int, int] | None":
    """``(device, inode)`` of the pipe ``fd`` names; None if it names no pipe (or nothing)."""
    try:
        st = _posix.fstat(fd)
    except (OSError, ValueError):
        return None
    if st.st_mode & 0o170000 != 0o010000:  # not S_IFIFO
        return None
    return st.st_dev, st.st_ino


def is_ours(sender: Sender) -> bool:
    """Whether ``sender.fd`` still is the read end of the pipe made for it, non-blocking."""
    fd = sender.fd
    if fd < 0:
        return False
    try:
        return pipe_identity(fd) == sender.pipe and not _posix.get_blocking(fd)
    except (OSError, ValueError):
        return False


def close(sender: Sender) -> None:
    """Close ``sender``'s read end if it still is ours; forget it either way."""
    if is_ours(sender):
        _close(sender.fd)
    sender.fd = -1


def close_pipe_end(fd: int, identity: "tuple[int, int]") -> None:
    """Close an end of the pipe ``identity`` names, if ``fd`` still is that pipe."""
    if pipe_identity(fd) == identity:
        _close(fd)


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass
