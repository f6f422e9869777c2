"""Debug lines on stderr, written so that they can never harm the host.

Only ever called when the user asked for output (``SCARF_AUTOPING_DEBUG=1`` or a verbose
event logger). Kept apart from the worker so that a disabled ping can say why without
loading the delivery engine.
"""

import os
import sys


def debug(message: str, *, block: bool = True) -> None:
    """One ``scarf-autoping: ...`` line on stderr (see :func:`write_stderr` for ``block``)."""
    write_stderr(f"scarf-autoping: {message}\n", block=block)


def write_stderr(text: str, *, block: bool = True) -> None:
    """Write ``text`` to stderr from any thread without ever aborting interpreter exit.

    ``block=False`` on the host's own threads (at exit, in a fork hook): when stderr is a
    pipe nobody reads and it is full, the line is dropped rather than holding the host.

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
        if not block and not _writable(fd):
            return
        while data:
            data = data[os.write(fd, data):]
    except BaseException:  # noqa: BLE001 - a closed stderr is not our caller's problem
        pass


def _writable(fd: int) -> bool:
    """True when a short write to ``fd`` cannot block (a pipe with room, a file, a terminal)."""
    try:
        import select

        return bool(select.select([], [fd], [], 0)[1])
    except Exception:  # noqa: BLE001 - no select for this descriptor: assume it is a file
        return True
