"""Error paths of starting a sender (scarf_autoping.spawn), without starting one."""

from __future__ import annotations

import os
import types

from scarf_autoping import spawn


def test_a_failed_dup_closes_each_of_our_descriptors_once(monkeypatch):
    """Out of descriptors (EMFILE) while moving the settings pipe above fd 4: what we made is
    closed once each. A second close of the same number would close whatever another of the
    host's threads had opened under it in between."""
    closed: list[int] = []
    made: list[int] = []
    real = spawn._posix

    def pipe() -> tuple[int, int]:
        ends = real.pipe()
        made.extend(ends)
        return ends

    def dup(fd: int) -> int:
        raise OSError(24, "Too many open files")

    recording = []

    def close(fd: int) -> None:
        if recording:
            closed.append(fd)
        real.close(fd)

    fake = types.SimpleNamespace(pipe=pipe, dup=dup, close=close, write=real.write, set_blocking=real.set_blocking)
    monkeypatch.setattr(spawn, "_posix", fake)
    # The lowest free number must be at or below SHELL_SETTINGS_FD (4), as in a host that
    # has closed its standard descriptors: fd 4 is moved away for the moment, and every
    # lower free number is filled.
    low = spawn.SHELL_SETTINGS_FD
    saved = None
    try:
        os.fstat(low)
        saved = os.dup(low)
        os.close(low)
    except OSError:
        pass
    fillers = []
    while True:
        fd = os.open(os.devnull, os.O_RDONLY)
        if fd >= low:
            os.close(fd)
            break
        fillers.append(fd)
    try:
        recording.append(True)
        got = spawn._settings_pipe(b"{}\n")
        recording.clear()
        assert got is None
    finally:
        recording.clear()
        for fd in fillers:
            os.close(fd)
        if saved is not None:
            os.dup2(saved, low)
            os.close(saved)
    assert sorted(closed) == sorted(made), (closed, made)  # each end once, nothing else
