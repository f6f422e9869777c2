"""Header fields as ``email``'s default (compat32) parser reads them, without importing ``email``.

Two readers of ours need a header or two from a text in that format, in a process where
``import email`` (with ``email.parser`` and its policies, 15-30 ms of CPU on a small
machine) would be most of the work: the detached sender's HTTP client
(:mod:`scarf_autoping.light`: an answer's ``Retry-After`` or ``Location``, as
``http.client`` parses them through ``email``), and the distribution look-up
(:mod:`scarf_autoping.naming`: ``Name`` and ``Version`` from a ``METADATA`` file, as
``importlib.metadata`` parses it with ``email.message_from_string``).

:func:`fields` returns the same fields, in the same order, with the same values as
``email.message_from_string(text).items()``: the text is split into lines as ``email``
splits it (after ``\r\n``, ``\r`` or ``\n``, each line keeping its end), the header
block ends at the first line that is neither a field (a name of printable ASCII but
``:``, then ``:``), a continuation (leading space or tab) nor a ``From`` envelope line,
and a value is what follows the colon without its leading blanks, with its continuation
lines and their line ends, less the final line end.
"""

__all__ = ["fields", "first"]


def _is_header_line(line: str) -> bool:
    """``email.feedparser.headerRE``: a ``From `` line, a continuation, or a name and a colon."""
    if line.startswith("From ") or line[:1] in (" ", "\t"):
        return True
    colon = line.find(":")
    return colon != -1 and all("\041" <= ch <= "\176" for ch in line[:colon])


def _lines(text: str) -> "list[str]":
    """``StringIO(text, newline="").readlines()``, as ``email``'s feed parser reads: ends ``\r\n``, ``\r``, ``\n``."""
    out = []
    start = 0
    size = len(text)
    while start < size:
        cr = text.find("\r", start)
        lf = text.find("\n", start)
        if cr == -1 and lf == -1:
            out.append(text[start:])
            break
        if cr != -1 and (lf == -1 or cr < lf):
            end = cr + 2 if text[cr + 1:cr + 2] == "\n" else cr + 1
        else:
            end = lf + 1
        out.append(text[start:end])
        start = end
    return out


def fields(text: str) -> "list[tuple[str, str]]":
    """The header fields of ``text`` as ``email.message_from_string(text).items()`` gives them."""
    lines = []
    for line in _lines(text):
        if not _is_header_line(line):
            break  # email takes it, and everything after it, as the body
        lines.append(line)
    out: list[tuple[str, str]] = []
    source: list[str] = []

    def flush() -> None:
        name, value = source[0].split(":", 1)
        out.append((name, (value.lstrip(" \t") + "".join(source[1:])).rstrip("\r\n")))

    for number, line in enumerate(lines):
        if line[0] in " \t":
            if source:
                source.append(line)  # a first line that is a continuation is dropped (a defect)
            continue
        if source:
            flush()
            source = []
        if line.startswith("From "):
            if number == len(lines) - 1:
                break  # email pushes it back as the first line of the body
            continue  # the envelope line, or a misplaced one (a defect): no field
        if line.find(":") == 0:
            continue  # no name (a defect)
        source = [line]
    if source:
        flush()
    return out


def first(items: "list[tuple[str, str]]", name: str) -> "str | None":
    """The first value of the field ``name`` (any case), as ``Message.get(name)`` returns it."""
    wanted = name.lower()
    return next((value for key, value in items if key.lower() == wanted), None)
