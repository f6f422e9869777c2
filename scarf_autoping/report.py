"""The adoption table: counts and shares of pings grouped by version, platform, and so on.

:func:`adoption` is a pure function over rows (so it is easy to test and to reuse);
:func:`load_rows` reads the rows the collector stored; :func:`format_table` renders the
result as plain text. A row's values come from the variables parsed with the
collector's ``--route`` template, then from its query parameters; when no row has any
of the requested fields, pings are grouped by their raw path instead.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from urllib.parse import parse_qsl

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Iterable, Sequence

#: The default grouping.
DEFAULT_FIELDS = ("version",)

#: Shown for a field a ping did not carry.
MISSING = "-"


class ReportError(Exception):
    """The database cannot be read (missing, not a collector database, corrupt)."""


class Report:
    """The grouped counts: ``fields``, ``groups`` as ``(values, count, share)``, ``total``.

    ``by_path`` is true when no ping carried any of the requested fields and the
    pings were grouped by their raw path instead.
    """

    def __init__(self, fields: tuple[str, ...], groups: list[tuple[tuple[str, ...], int, float]], total: int,
                 by_path: bool) -> None:
        self.fields = fields
        self.groups = groups
        self.total = total
        self.by_path = by_path


def row_values(row: dict[str, object]) -> dict[str, str]:
    """What one stored ping says: its query parameters, overridden by its route variables."""
    values = dict(parse_qsl(str(row.get("query") or ""), keep_blank_values=True))
    variables = row.get("variables")
    if isinstance(variables, str):
        try:
            variables = json.loads(variables)
        except ValueError:  # not written by the collector: the row simply has no route variables
            variables = None
    if isinstance(variables, dict):
        values.update({str(k): str(v) for k, v in variables.items()})
    return values


_PEP440 = re.compile(
    r"""
    v?(?:(?P<epoch>[0-9]+)!)?(?P<release>[0-9]+(?:\.[0-9]+)*)
    (?:[-_.]?(?P<pre>alpha|a|beta|b|preview|pre|c|rc)[-_.]?(?P<pre_n>[0-9]*))?
    (?:-(?P<post_implicit>[0-9]+)|[-_.]?(?P<post>post|rev|r)[-_.]?(?P<post_n>[0-9]*))?
    (?:[-_.]?(?P<dev>dev)[-_.]?(?P<dev_n>[0-9]*))?
    (?:\+(?P<local>[a-z0-9]+(?:[-_.][a-z0-9]+)*))?
    """,
    re.VERBOSE,
)

_PRE_RANK = {"a": 0, "alpha": 0, "b": 1, "beta": 1, "c": 2, "rc": 2, "pre": 2, "preview": 2}


def version_key(version: str) -> tuple[object, ...]:
    """A sort key following PEP 440's order, without the ``packaging`` dependency.

    ``1.10`` after ``1.9``; ``1.0`` equals ``1.0.0``; ``dev`` < ``a``/``alpha`` <
    ``b``/``beta`` < ``c``/``rc``/``pre`` < the release < ``post``; ``1.0.dev1`` before
    ``1.0a1``; a ``+local`` label ranks just after its public version; an ``N!`` epoch
    outranks everything. Values that are not PEP 440 but start with a digit sort below
    every PEP 440 version (numbers still compared as numbers); values that do not start
    with a digit (``-``, ``unknown``) sort below everything.
    """
    text = version.strip().lower()
    found = _PEP440.fullmatch(text)
    if found is None:
        text = text.lstrip("v")
        if not text[:1].isdigit():
            return (0, text)
        return (1, tuple((1, int(t)) if t.isdigit() else (0, t) for t in re.findall(r"\d+|[a-z]+", text)))
    release = [int(n) for n in found["release"].split(".")]
    while len(release) > 1 and release[-1] == 0:
        release.pop()
    has_post = found["post"] is not None or found["post_implicit"] is not None
    if found["pre"] is not None:
        pre: tuple[int, int] = (_PRE_RANK[found["pre"]], int(found["pre_n"] or 0))
    elif found["dev"] is not None and not has_post:
        pre = (-1, 0)  # 1.0.dev1 comes before 1.0a1
    else:
        pre = (3, 0)
    post = (1, int(found["post_implicit"] or found["post_n"] or 0)) if has_post else (0, 0)
    dev = (0, int(found["dev_n"] or 0)) if found["dev"] is not None else (1, 0)
    local = tuple((1, int(t), "") if t.isdigit() else (0, 0, t) for t in re.split(r"[-_.]", found["local"] or "") if t)
    return (2, int(found["epoch"] or 0), tuple(release), pre, post, dev, local)


def printable(text: str) -> str:
    """``text`` with control and other non-printable characters escaped (``\\x1b``, ``\\n``).

    Collected values come from whoever sent the request: printed raw, an ESC could
    recolour or rewrite the terminal and a newline could forge a line of output.
    """
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def adoption(rows: Iterable[dict[str, object]], fields: Sequence[str] = DEFAULT_FIELDS) -> Report:
    """Group ``rows`` by ``fields``: counts, shares, newest version first (else most pings first)."""
    fields = tuple(fields)
    rows = list(rows)
    values = [row_values(row) for row in rows]
    by_path = not any(f in v for v in values for f in fields)
    if by_path:
        fields = ("path",)
        keys = [(str(row.get("path") or "/"),) for row in rows]
    else:
        keys = [tuple(v.get(f, MISSING) for f in fields) for v in values]
    counts: dict[tuple[str, ...], int] = {}
    for key in keys:
        counts[key] = counts.get(key, 0) + 1
    total = len(keys)

    def order(item: tuple[tuple[str, ...], int]) -> tuple[object, ...]:
        key, count = item
        newest = version_key(key[fields.index("version")]) if "version" in fields else (0,)
        return (newest, count, tuple(reversed(key)))

    ranked = sorted(counts.items(), key=order, reverse=True)
    groups = [(key, count, count / total) for key, count in ranked]
    return Report(fields, groups, total, by_path)


def load_rows(db: str | Path) -> list[dict[str, object]]:
    """Every ping the collector stored in ``db``, oldest first, as dicts (read-only access)."""
    path = Path(db)
    if not path.is_file():
        raise ReportError(f"no database at {str(path)!r} (run 'scarf-autoping collect' first, or pass --db)")
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            connection.row_factory = sqlite3.Row
            rows = connection.execute("SELECT * FROM pings ORDER BY id").fetchall()
        finally:
            connection.close()
    except sqlite3.Error as exc:
        raise ReportError(f"cannot read {str(path)!r} as a collector database: {exc}") from None
    return [dict(row) for row in rows]


def format_table(report: Report) -> str:
    """The report as an aligned plain-text table with a total line."""
    if report.total == 0:
        return "no pings yet"
    header = [printable(f) for f in (*report.fields, "pings", "share")]
    body = [[*(printable(k) for k in key), str(count), f"{share:.1%}"] for key, count, share in report.groups]
    footer = ["total", *([""] * (len(report.fields) - 1)), str(report.total), "100.0%"]
    table = [header, *body, footer]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    numeric = len(report.fields)

    def line(cells: list[str]) -> str:
        out = [c.ljust(w) if i < numeric else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))]
        return "  ".join(out).rstrip()

    rule = "  ".join("-" * w for w in widths)
    lines = [line(header), rule, *(line(r) for r in body), rule, line(footer)]
    if report.by_path:
        lines.insert(0, "(no ping carried the requested fields: grouped by path)")
    return "\n".join(lines)
