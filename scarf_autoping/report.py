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
        variables = json.loads(variables)
    if isinstance(variables, dict):
        values.update({str(k): str(v) for k, v in variables.items()})
    return values


def version_key(version: str) -> tuple[object, ...]:
    """A sort key that orders ``1.10`` after ``1.9`` and ``1.0rc1`` before ``1.0``.

    Numbers compare as numbers; letters (``a``, ``b``, ``rc``, ``dev``) sort before the
    release they precede, ``post`` after it. Values that do not start with a digit (``-``,
    ``unknown``) sort below every version.
    """
    text = version.strip().lower().lstrip("v")
    if not text[:1].isdigit():
        return (0, text)
    key: list[tuple[int, object]] = []
    for token in re.findall(r"\d+|[a-z]+", text):
        if token.isdigit():
            key.append((3, int(token)))
        elif token in ("post", "rev", "r"):
            key.append((2, token))
        else:
            key.append((0, token))
    key.append((1, ""))
    return (1, tuple(key))


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
    header = [*report.fields, "pings", "share"]
    body = [[*key, str(count), f"{share:.1%}"] for key, count, share in report.groups]
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
