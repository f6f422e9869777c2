"""The adoption table: counts and shares of pings grouped by version, platform, and so on.

:class:`PingData` aggregates the collector's database in SQLite (``GROUP BY``, one scan
into a small temporary table of distinct combinations), so a million pings report in
about a second; the text report and the HTML page (:mod:`.report_html`) both use it.
:func:`adoption` is the same grouping as a pure function over rows (the demo and tests
use it); :func:`load_rows` reads every stored row; :func:`format_table` renders a
:class:`Report` as plain text. A row's values come from the variables parsed with the
collector's ``--route`` template, then from its query parameters; when no row has any
of the requested fields, pings are grouped by their raw path instead.

Two fields are read the way the library writes them today, whatever version sent the
ping: ``arch`` goes through :func:`~scarf_autoping.machine.normalize_arch` (``AMD64`` and
``x86_64`` are one row), and ``python_minor`` is derived from ``python`` (``3.12.7`` ->
``3.12``) for pings that do not carry it. See :func:`field_values`.
"""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qsl, unquote_plus

from ..facts import BUILTIN_NAMES
from ..machine import normalize_arch, python_minor
from ..policy import normalize

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Iterable, Sequence
    from typing import Union

    #: A value SQLite stores, and so what a function registered with it takes and returns.
    _SQLValue = Union[str, bytes, int, float, None]

#: The default grouping of :func:`adoption`.
DEFAULT_FIELDS = ("version",)

#: The default grouping of the ``report`` command: package, then version (the package
#: column is left out when no ping carries a package at all).
REPORT_FIELDS = ("package", "version")

#: Fields ``--by`` always accepts: the built-in template variables and the stored path.
KNOWN_FIELDS = (*BUILTIN_NAMES, "path")

#: Shown for a field a ping did not carry.
MISSING = "-"


class ReportError(Exception):
    """The database cannot be read (missing, not a collector database, corrupt)."""


class ReportArgumentError(ValueError):
    """A report option is wrong: an unknown ``--by`` field, a bad ``--since``, an empty ``--package``."""


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


def field_values(values: dict[str, str]) -> dict[str, str]:
    """A ping's values as the report groups them: ``arch`` normalised, ``python_minor`` derived.

    The same rules as the SQL in :func:`_field_sql`, row by row, for :func:`adoption`.
    """
    out = dict(values)
    if "arch" in out:
        out["arch"] = normalize_arch(out["arch"])
    if "python_minor" not in out and "python" in out:
        out["python_minor"] = python_minor(out["python"])
    return out


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
    values = [field_values(row_values(row)) for row in rows]
    by_path = not any(f in v for v in values for f in fields)
    if by_path:
        fields = ("path",)
        keys: list[tuple[str, ...]] = [(str(row.get("path") or "/"),) for row in rows]
    else:
        keys = [tuple(v.get(f, MISSING) for f in fields) for v in values]
    counts: dict[tuple[str, ...], int] = {}
    for key in keys:
        counts[key] = counts.get(key, 0) + 1
    total = len(keys)

    return Report(fields, rank(counts, fields), total, by_path)


def rank(counts: dict[tuple[str, ...], int], fields: Sequence[str]) -> list[tuple[tuple[str, ...], int, float]]:
    """``(key, count, share)`` ordered newest version first (when grouped by version), else most pings first."""
    fields = tuple(fields)
    total = sum(counts.values())
    at = fields.index("version") if "version" in fields else None

    def order(item: tuple[tuple[str, ...], int]) -> tuple[object, ...]:
        key, count = item
        newest = version_key(key[at]) if at is not None else (0,)
        return (newest, count, tuple(reversed(key)))

    ranked = sorted(counts.items(), key=order, reverse=True)
    if "package" in fields and at is not None and fields.index("package") < at:
        # Grouped by package, then version: each package's rows together, by name.
        where = fields.index("package")
        ranked.sort(key=lambda item: normalise_package(item[0][where]))
    return [(key, count, count / total) for key, count in ranked]


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


# --------------------------------------------------------------------------
# Filters
# --------------------------------------------------------------------------


#: PEP 503's normal form, exactly as the library computes it for every ping.
normalise_package = normalize


_AGO = re.compile(r"([0-9]+)\s*([hdw])")


def parse_since(text: str, now: datetime | None = None) -> str:
    """``--since`` as the UTC timestamp the stored ``received_at`` is compared with.

    Accepts an ISO date (``2026-11-01``: midnight UTC), an ISO date and time (without an
    offset it is UTC) or an age: ``12h``, ``7d``, ``2w`` before ``now``.
    """
    value = text.strip()
    found = _AGO.fullmatch(value.lower())
    if found:
        hours = {"h": 1, "d": 24, "w": 24 * 7}[found[2]] * int(found[1])
        when = (now or datetime.now(timezone.utc)) - timedelta(hours=hours)
    else:
        try:
            when = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value)
        except ValueError:
            raise ReportArgumentError(f"--since expects a date (2026-11-01), a date and time "
                                      f"(2026-11-01T12:00) or an age (12h, 7d, 2w), got {text!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# --------------------------------------------------------------------------
# Aggregation in SQLite
# --------------------------------------------------------------------------

_FIELD_NAME = re.compile(r"[A-Za-z0-9_.%]+")

#: A stored ``received_at`` that starts with a date (the collector writes ISO 8601 UTC).
_DATED = "received_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*'"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _field_sql(name: str) -> str:
    """SQL for one field of a stored ping: its route variable, else its query parameter, else ``-``.

    The same precedence as :func:`row_values`, and the same derivations as
    :func:`field_values` (the ``normalize_arch`` and ``python_minor`` functions registered
    on the connection, called once per distinct stored combination, not per ping).
    """
    value = _carried_sql(name)
    if name == "python_minor":
        value = f"COALESCE({value}, python_minor({_carried_sql('python')}))"
    elif name == "arch":
        value = f"normalize_arch({value})"
    fallback = "path" if name == "path" else _literal(MISSING)
    return f"COALESCE({value}, {fallback})"


def _carried_sql(name: str) -> str:
    """SQL for the value a stored ping carries for ``name`` (NULL when none): variable, else parameter.

    A query value is percent-decoded (by the ``unquote_plus`` function registered on the
    connection) only when it holds ``%`` or ``+``, so the Python call is rare. Where a
    parameter repeats, the first one counts; parameter names are matched as sent (not
    percent-decoded).
    """
    path = _literal(f'$."{name}"')
    var = f"CASE WHEN json_valid(variables) THEN CAST(json_extract(variables, {path}) AS TEXT) END"
    needle = _literal(f"&{name}=")
    amp = "('&' || query || '&')"
    rest = f"substr({amp}, instr({amp}, {needle}) + {len(name) + 2})"
    raw = f"substr({rest}, 1, instr({rest}, '&') - 1)"
    param = (f"CASE WHEN instr({amp}, {needle}) > 0 THEN "
             f"(CASE WHEN {raw} GLOB '*[%+]*' THEN unquote_plus({raw}) ELSE {raw} END) "
             f"WHEN instr({amp}, {_literal(f'&{name}&')}) > 0 THEN '' END")
    return f"COALESCE({var}, {param})"


def _unquote(value: _SQLValue) -> _SQLValue:
    return unquote_plus(value) if isinstance(value, str) else value


def _sql_arch(value: _SQLValue) -> str | None:
    return None if value is None else normalize_arch(str(value))


def _sql_minor(value: _SQLValue) -> str | None:
    return None if value is None else python_minor(str(value))


class PingData:
    """The collector's database, read-only, aggregated in SQLite.

    Opening it runs one scan of ``pings`` (filtered by ``since``) into a temporary table
    ``agg`` holding each distinct combination of ``fields`` (plus the package and, with
    ``by_day``, the UTC day) and its count; the ``package`` filter then deletes the
    combinations of other packages. Every query after that (:meth:`counts`,
    :meth:`per_bucket`) groups that small table, never the pings.
    """

    def __init__(self, db: str | Path, fields: Sequence[str], *, package: str | None = None,
                 since: str | None = None, by_day: bool = False) -> None:
        self._days: sqlite3.Connection | None = None  # first: close() reads it
        path = Path(db)
        if not path.is_file():
            raise ReportError(f"no database at {str(path)!r} (run 'scarf-autoping collect' first, or pass --db)")
        self.path = path
        self.package = package
        self.since = since
        self.fields = tuple(dict.fromkeys(("package", *fields)))
        self._column = {f: f"c{i}" for i, f in enumerate(self.fields)}
        try:
            self._db = self._connect()
            if by_day:
                self._days = self._connect()
        except sqlite3.Error as exc:
            self.close()
            raise ReportError(f"cannot read {str(path)!r} as a collector database: {exc}") from None
        try:
            self._build()
        except sqlite3.Error as exc:
            self.close()
            raise ReportError(f"cannot read {str(path)!r} as a collector database: {exc}") from None
        except BaseException:
            self.close()
            raise

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
        connection.create_function("unquote_plus", 1, _unquote, deterministic=True)
        connection.create_function("normalize_arch", 1, _sql_arch, deterministic=True)
        connection.create_function("python_minor", 1, _sql_minor, deterministic=True)
        return connection

    def close(self) -> None:
        """Close the connections (the temporary tables go with them)."""
        for connection in (getattr(self, "_db", None), self._days):
            if connection is not None:
                connection.close()

    def __enter__(self) -> PingData:  # noqa: PYI034 - Self needs typing_extensions on 3.9
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _where(self) -> tuple[str, list[str]]:
        if self.since is None:
            return "", []
        return "WHERE received_at >= ?", [self.since]

    def _build(self) -> None:
        where, params = self._where()
        # The per-day table needs the time of every ping: its own scan, on its own connection
        # and thread (sqlite3 releases the GIL), while the main scan runs.
        failed: list[BaseException] = []
        worker = None
        if self._days is not None:
            import threading

            worker = threading.Thread(target=self._build_days, args=(where, params, failed), daemon=True)
            worker.start()
        # Stage 1: the distinct raw (variables, query) pairs and their counts. Grouping the
        # raw text first is several times faster than parsing JSON in every row.
        raw = ["variables", "query", *(["path"] if "path" in self.fields else [])]
        try:
            self._db.execute(f"CREATE TEMP TABLE raw AS SELECT {', '.join(raw)}, count(*) AS n FROM pings {where} "
                             f"GROUP BY {', '.join(raw)}", params)
            # Stage 2: the fields, from those few distinct pairs.
            columns = ", ".join(f"{_field_sql(f)} AS {self._column[f]}" for f in self.fields)
            group = ", ".join(self._column.values())
            self._db.execute(f"CREATE TEMP TABLE agg AS SELECT {columns}, sum(n) AS n FROM raw GROUP BY {group}")
        finally:
            if worker is not None:
                worker.join()
        if failed:
            raise failed[0]
        if self.package is not None:
            wanted = normalise_package(self.package)
            spelled = [row[0] for row in self._db.execute("SELECT DISTINCT c0 FROM agg")]
            keep = [(name,) for name in spelled if normalise_package(name) == wanted]
            for connection, table in ((self._db, "agg"), (self._days, "days")):
                if connection is not None:
                    connection.execute("CREATE TEMP TABLE keep (name TEXT PRIMARY KEY)")
                    connection.executemany("INSERT INTO keep VALUES (?)", keep)
                    connection.execute(f"DELETE FROM {table} WHERE c0 NOT IN (SELECT name FROM keep)")
        self.total = int(self._db.execute("SELECT coalesce(sum(n), 0) FROM agg").fetchone()[0])

    def _build_days(self, where: str, params: list[str], failed: list[BaseException]) -> None:
        """Package and version per UTC day, on the second connection."""
        assert self._days is not None
        dated = f"{where} AND {_DATED}" if where else f"WHERE {_DATED}"
        try:
            self._days.execute(f"CREATE TEMP TABLE days AS SELECT substr(received_at, 1, 10) AS day, "
                               f"{_field_sql('package')} AS c0, {_field_sql('version')} AS version, count(*) AS n "
                               f"FROM pings {dated} GROUP BY day, c0, version", params)
        except BaseException as exc:  # noqa: BLE001 - re-raised on the calling thread
            failed.append(exc)

    def carries(self, field: str) -> bool:
        """True when at least one (filtered) ping has a value for ``field``."""
        column = self._column[field]
        return self._db.execute(f"SELECT 1 FROM agg WHERE {column} != ? LIMIT 1", (MISSING,)).fetchone() is not None

    def counts(self, fields: Sequence[str]) -> dict[tuple[str, ...], int]:
        """Pings per distinct combination of ``fields`` (a subset of the fields given at opening)."""
        columns = ", ".join(self._column[f] for f in fields)
        rows = self._db.execute(f"SELECT {columns}, sum(n) FROM agg GROUP BY {columns}")
        return {tuple(row[:-1]): int(row[-1]) for row in rows}

    def per_bucket(self, bucket: str = "day") -> list[tuple[str, str, str, int]]:
        """``(bucket, package, version, pings)`` for every dated ping (needs ``by_day``).

        ``bucket`` is ``day``, ``week`` (its Monday) or ``month`` (``YYYY-MM``), in UTC.
        """
        expression = {
            "day": "day",
            "week": "date(day, '-' || ((CAST(strftime('%w', day) AS INTEGER) + 6) % 7) || ' days')",
            "month": "substr(day, 1, 7)",
        }[bucket]
        assert self._days is not None, "PingData(by_day=True) is needed"
        rows = self._days.execute(f"SELECT {expression} AS b, c0, version, sum(n) FROM days "
                                f"GROUP BY b, c0, version ORDER BY b")
        return [(str(b), str(p), str(v), int(n)) for b, p, v, n in rows if b is not None]

    def day_range(self) -> tuple[str | None, str | None, int]:
        """The first and last UTC day with pings, and how many pings had no readable time (needs ``by_day``)."""
        assert self._days is not None, "PingData(by_day=True) is needed"
        first, last, dated = self._days.execute("SELECT min(day), max(day), coalesce(sum(n), 0) FROM days").fetchone()
        return first, last, self.total - int(dated)

    def by_path(self) -> dict[tuple[str, ...], int]:
        """Pings per stored path (the fallback when no ping carries the requested fields)."""
        where, params = self._where()
        sql = f"SELECT path, count(*) FROM pings {where} GROUP BY path"
        if self.package is not None:
            clause = "AND" if where else "WHERE"
            sql = (f"SELECT path, count(*) FROM pings {where} {clause} {_field_sql('package')} IN "
                   f"(SELECT name FROM keep) GROUP BY path")
        return {(str(p or "/"),): int(n) for p, n in self._db.execute(sql, params)}

    def data_fields(self) -> list[str]:
        """Every route-variable and query-parameter name the pings carry (a full scan: error path only)."""
        names = {row[0] for row in self._db.execute(
            "SELECT DISTINCT j.key FROM (SELECT DISTINCT variables AS v FROM pings) AS d, "
            "json_each(CASE WHEN json_valid(d.v) AND json_type(d.v) = 'object' THEN d.v END) AS j")}
        split = self._db.execute(
            "WITH RECURSIVE q(rest, part) AS ("
            " SELECT query || '&', NULL FROM (SELECT DISTINCT query FROM pings WHERE query != '')"
            " UNION ALL SELECT substr(rest, instr(rest, '&') + 1), substr(rest, 1, instr(rest, '&') - 1)"
            " FROM q WHERE rest != '')"
            " SELECT DISTINCT CASE WHEN instr(part, '=') THEN substr(part, 1, instr(part, '=') - 1) ELSE part END"
            " FROM q WHERE part IS NOT NULL AND part != ''")
        names.update(row[0] for row in split)  # as spelled: the fields are looked up undecoded too
        return sorted(str(n) for n in names)


def check_fields(db: str | Path, fields: Sequence[str]) -> None:
    """Raise :class:`ReportArgumentError` naming every field of ``fields`` that is unknown.

    Known: the built-in template variables, ``path``, and any route variable or query
    parameter some stored ping carries (looked up only when a field is not built in).
    """
    odd = [f for f in fields if f not in KNOWN_FIELDS]
    if not odd:
        return
    extra: list[str] = []
    if all(_FIELD_NAME.fullmatch(f) for f in odd) and Path(db).is_file():
        try:
            connection = sqlite3.connect(f"{Path(db).resolve().as_uri()}?mode=ro", uri=True)
            try:
                extra = PingData.data_fields(_Bare(connection))  # type: ignore[arg-type]  # a stand-in self: it reads only _db
            finally:
                connection.close()
        except sqlite3.Error as exc:
            raise ReportError(f"cannot read {str(db)!r} as a collector database: {exc}") from None
    unknown = [f for f in odd if f not in extra]
    if unknown:
        more = [f for f in extra if f not in KNOWN_FIELDS]
        known = ", ".join(KNOWN_FIELDS) + (f"; in the stored pings also: {', '.join(more)}" if more else "")
        names = ", ".join(printable(f) for f in unknown)
        raise ReportArgumentError(f"unknown field{'s' if len(unknown) > 1 else ''} in --by: {names} "
                                  f"(known fields: {known})")


class _Bare:
    """Just a connection, for :meth:`PingData.data_fields` before any aggregation."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection


def report(db: str | Path, fields: Sequence[str] | None = None, *, package: str | None = None,
           since: str | None = None) -> Report:
    """The text report's :class:`Report`: grouped in SQLite, filtered by package and time.

    ``fields`` defaults to :data:`REPORT_FIELDS`, whose package column is dropped when no
    ping carries a package. When no ping carries any requested field, pings are grouped
    by their stored path instead (as :func:`adoption` does).
    """
    default = fields is None
    wanted = tuple(REPORT_FIELDS if fields is None else fields)
    check_fields(db, wanted)
    with PingData(db, wanted, package=package, since=since) as data:
        if default and not data.carries("package"):
            wanted = tuple(f for f in wanted if f != "package")
        if data.total and not any(data.carries(f) for f in wanted):
            counts = data.by_path()
            return Report(("path",), rank(counts, ("path",)), data.total, True)
        counts = data.counts(wanted)
        return Report(wanted, rank(counts, wanted), data.total, False)
