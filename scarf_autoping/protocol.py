"""The result pipe between a detached sender and its host: one line per job, both ends.

The sender writes, the host's engine reads (:mod:`scarf_autoping.supervise`)::

    <index> TAB <status> TAB <reason> TAB <url> TAB <retry> NEWLINE

* ``index``: the job's position in the list the sender was given;
* ``status``: ``sent``, ``failed`` or ``disabled`` (the distribution's own opt-out
  variable); anything else reads as ``failed``;
* ``reason``: a short text, or empty;
* ``url``: the URL the sender built, empty for an event (its URL may hold a password)
  and whenever it is not known;
* ``retry``: empty when a failure is final (or the job was sent), else the least
  seconds to wait before trying again (see :mod:`scarf_autoping.retry`).

One ``write`` of at most ``PIPE_BUF`` (4096) bytes is atomic, so the lines of jobs that
finish at once never interleave: :func:`encode` cuts long fields to keep a line under
that, and the five fields always there. Pure logic, no I/O.
"""

#: The statuses a sender may report; anything else is read as ``failed``.
STATUSES = ("sent", "failed", "disabled")

#: Field limits in bytes: index, status, reason, url, retry (4 tabs and a newline more: < 4096).
_LIMITS = (20, 20, 400, 3000, 40)


class Report:
    """One job's outcome as a sender reported it."""

    __slots__ = ("index", "reason", "retry", "status", "url")

    def __init__(self, index: int, status: str, reason: "str | None", url: "str | None",
                 retry: "float | None") -> None:
        self.index = index
        self.status = status
        self.reason = reason
        self.url = url
        self.retry = retry

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Report) and self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def _fields(self) -> "tuple[int, str, str | None, str | None, float | None]":
        return (self.index, self.status, self.reason, self.url, self.retry)

    def __repr__(self) -> str:
        return f"Report{self._fields()!r}"


def encode(index: int, status: str, reason: "str | None", url: "str | None", retry: "float | None") -> bytes:
    """One report line, fields cut to their limits, tabs and newlines inside them made spaces.

    >>> encode(0, "sent", "HTTP 200", "http://x/t/a", None)
    b'0\\tsent\\tHTTP 200\\thttp://x/t/a\\t\\n'
    >>> encode(1, "failed", "refused\\there", None, 0.0)
    b'1\\tfailed\\trefused here\\t\\t0.0\\n'
    """
    texts = (str(index), status, reason or "", url or "", "" if retry is None else repr(float(retry)))
    fields = [
        text.replace("\t", " ").replace("\n", " ").encode("utf-8", "backslashreplace")[:limit]
        for text, limit in zip(texts, _LIMITS)
    ]
    return b"\t".join(fields) + b"\n"


def decode(buffer: bytes) -> "tuple[list[Report], bytes]":
    """The complete lines in ``buffer`` as reports, and the incomplete rest to keep.

    A line that is not a report (wrong field count, no index) is skipped.

    >>> reports, rest = decode(b"0\\tsent\\tHTTP 200\\thttp://x\\t\\n1\\tfai")
    >>> reports, rest
    ([Report(0, 'sent', 'HTTP 200', 'http://x', None)], b'1\\tfai')
    >>> decode(b"0\\tweird\\t\\t\\tsoon\\n")[0]
    [Report(0, 'failed', None, None, None)]
    """
    *lines, rest = buffer.split(b"\n")
    reports = []
    for line in lines:
        fields = line.decode("utf-8", "replace").split("\t")
        if len(fields) != 5 or not fields[0].isdigit():
            continue
        status = fields[1] if fields[1] in STATUSES else "failed"
        try:
            retry: "float | None" = float(fields[4]) if fields[4] else None
        except ValueError:
            retry = None
        reports.append(Report(int(fields[0]), status, fields[2] or None, fields[3] or None, retry))
    return reports, rest
