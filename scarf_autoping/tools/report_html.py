"""``scarf-autoping report --html``: one self-contained page of adoption charts.

The page works offline and with JavaScript off: it has no script at all, the charts are
inline SVG drawn here, the only stylesheet is inline and allowed by its hash in a
Content-Security-Policy ``<meta>`` (``default-src 'none'``), so the page can load
nothing from anywhere. Light and dark colour schemes follow the reader's setting. Each
chart has a text alternative (its ``<title>``/``<desc>`` and caption) and the table of
its numbers under it.

Every value that came from a ping (package, version, path, ...) is shown escaped
(``html.escape`` after :func:`~scarf_autoping.tools.report.printable`), so a ping cannot
inject markup. The counting is done in SQLite by :class:`~scarf_autoping.tools.report.PingData`;
this module only lays out a few hundred aggregated numbers, and caps every chart at its
top categories (the rest summed as "other"), so the page stays small whatever the
database holds.
"""

from __future__ import annotations

import base64
import hashlib
import html
from datetime import datetime, timezone
from pathlib import Path

from .. import __version__
from .report import (
    MISSING,
    REPORT_FIELDS,
    PingData,
    check_fields,
    normalise_package,
    printable,
    rank,
    version_key,
)

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Sequence

#: The share charts, in page order: field and heading. Python is charted by minor version
#: (derived from ``python`` for pings that do not carry ``python_minor``); architectures
#: are merged under their normal names; the distribution chart counts Linux pings only.
SHARE_CHARTS = (
    ("version", "Share by version"),
    ("python_minor", "Share by Python version"),
    ("platform", "Share by platform"),
    ("arch", "Share by architecture"),
    ("distro", "Share by Linux distribution"),
)

#: The chart's id where it is not ``share-<field>`` (the Python chart kept its anchor).
_CHART_IDS = {"python_minor": "share-python"}

#: What a ping lacked when it is counted as ``-`` in a chart.
_CARRIED = {"python_minor": "python (nor python_minor)"}

#: Versions sort newest first in their chart, not by count.
_VERSION_FIELDS = ("version", "python_minor")

#: Bars per share chart; the rest are summed as "other".
TOP = 12

#: Versions stacked in the uptake chart; the rest are summed as "other".
TOP_SERIES = 8

#: Rows of the ``--by`` table; the rest are summed in one line.
TOP_ROWS = 100

#: Characters of a label drawn in a chart (the full value is in the tooltip and the table).
LABEL_CHARS = 28

OTHER = "other"

_PALETTE = (
    ("#2f6fdf", "#6ea1ff"), ("#e07a10", "#ffa64d"), ("#2b9a4a", "#5fd07f"), ("#c8324b", "#ff7088"),
    ("#7a4fd0", "#b292ff"), ("#138a8a", "#4fd1d1"), ("#a86d00", "#e8b23d"), ("#c04fa0", "#f08ad4"),
    ("#55708f", "#9db4cf"),
)

_CSS = """
:root{color-scheme:light dark;--bg:#ffffff;--fg:#1b1b1f;--muted:#5d5d66;--grid:#d9d9de;--panel:#f5f6f8;--other:#9a9aa3}
@media (prefers-color-scheme:dark){:root{--bg:#141519;--fg:#e9e9ee;--muted:#a3a3ad;--grid:#3a3b42;\
--panel:#1e2026;--other:#6b6b75}}
body{margin:0 auto;max-width:60rem;padding:1rem 1.5rem 3rem;background:var(--bg);color:var(--fg);\
font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
h1{font-size:1.5rem;margin:.5rem 0}h2{font-size:1.15rem;margin:2rem 0 .5rem}
.meta,.note,figcaption{color:var(--muted);font-size:.9rem}
.empty{font-size:1.2rem;padding:2rem;background:var(--panel);border-radius:.5rem}
figure{margin:0}svg{display:block;max-width:100%;height:auto}
svg text{fill:var(--fg);font-size:12px}svg .axis{fill:var(--muted)}svg line{stroke:var(--grid)}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.88rem;font-variant-numeric:tabular-nums}
th,td{padding:.15rem .6rem;border-bottom:1px solid var(--grid);text-align:left;vertical-align:top}
td.n,th.n{text-align:right}td.v{word-break:break-all}
details{margin:.25rem 0 1rem}summary{cursor:pointer;color:var(--muted)}
.legend{list-style:none;padding:0;margin:.5rem 0;display:flex;flex-wrap:wrap;gap:.25rem 1rem;font-size:.88rem}
.sw{display:inline-block;width:.8rem;height:.8rem;border-radius:.15rem;margin-right:.3rem;vertical-align:-.1rem}
""" + "".join(
    f".s{i}{{fill:{light}}}span.s{i}{{background:{light}}}" for i, (light, _) in enumerate(_PALETTE)
) + ".so{fill:var(--other)}span.so{background:var(--other)}@media (prefers-color-scheme:dark){" + "".join(
    f".s{i}{{fill:{dark}}}span.s{i}{{background:{dark}}}" for i, (_, dark) in enumerate(_PALETTE)
) + "}"


def _policy() -> str:
    digest = base64.b64encode(hashlib.sha256(_CSS.encode("utf-8")).digest()).decode("ascii")
    return (f"default-src 'none'; style-src 'sha256-{digest}'; img-src 'none'; font-src 'none'; "
            "connect-src 'none'; script-src 'none'; object-src 'none'; frame-src 'none'; base-uri 'none'; "
            "form-action 'none'")


#: The page's Content-Security-Policy: nothing may load or run but the inline stylesheet.
CONTENT_SECURITY_POLICY = _policy()


def _e(value: object) -> str:
    """A value from a ping, safe in HTML text and in a quoted attribute."""
    return html.escape(printable(str(value)), quote=True)


def _short(value: str) -> str:
    text = printable(value)
    return text if len(text) <= LABEL_CHARS else text[:LABEL_CHARS - 1] + "…"


def _count(n: int) -> str:
    return f"{n:,}"


def _share(n: int, total: int) -> str:
    return f"{n / total:.1%}" if total else "0.0%"


# --------------------------------------------------------------------------
# Charts
# --------------------------------------------------------------------------


def _top(counts: dict[str, int], field: str, limit: int) -> tuple[list[tuple[str, int]], int, int]:
    """The ``limit`` biggest categories (versions newest first, others biggest first), the
    pings in the rest and how many categories the rest holds."""
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    shown, rest = ranked[:limit], ranked[limit:]
    if field in _VERSION_FIELDS:
        shown.sort(key=lambda item: version_key(item[0]), reverse=True)
    return shown, sum(n for _, n in rest), len(rest)


class _negated:
    """Reverses the order of a key inside an otherwise ascending sort."""

    def __init__(self, key: tuple[object, ...]) -> None:
        self.key = key

    def __lt__(self, other: _negated) -> bool:
        return self.key > other.key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _negated) and self.key == other.key

    __hash__ = None  # type: ignore[assignment]  # unhashable, as an object with __eq__ should be


def _bars(chart_id: str, title: str, rows: list[tuple[str, int, str]], total: int) -> str:
    """A horizontal bar chart: one ``<g class="bar">`` per row (label, count, colour class)."""
    width, left, right, row_h = 720, 190, 130, 24
    span = width - left - right
    height = row_h * len(rows) + 8
    peak = max((n for _, n, _ in rows), default=1) or 1
    summary = "; ".join(f"{printable(label)}: {_count(n)} ({_share(n, total)})" for label, n, _ in rows)
    out = [(f'<svg id="{chart_id}" class="chart bars" role="img" aria-labelledby="{chart_id}-t {chart_id}-d" '
           f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">'),
           f'<title id="{chart_id}-t">{_e(title)}</title><desc id="{chart_id}-d">{_e(summary)}</desc>']
    for i, (label, n, colour) in enumerate(rows):
        y = 4 + i * row_h
        bar = max(1.0, span * n / peak)
        out.append(
            f'<g class="bar" data-label="{_e(label)}" data-count="{n}"><title>{_e(label)}: {_count(n)} '
            f'({_share(n, total)})</title><text x="{left - 8}" y="{y + 16}" text-anchor="end">{_e(_short(label))}'
            f'</text><rect class="{colour}" x="{left}" y="{y + 3}" width="{bar:.1f}" height="{row_h - 6}" rx="2">'
            f'</rect><text class="axis" x="{left + bar + 6:.1f}" y="{y + 16}">{_count(n)} · {_share(n, total)}'
            "</text></g>")
    out.append("</svg>")
    return "".join(out)


def _is_linux(platform: str, system: str) -> bool | None:
    """Whether a ping came from Linux, by its ``platform`` (else its ``os``); None when it carried neither."""
    if platform != MISSING:
        return platform.strip().lower() == "linux"
    if system != MISSING:
        return system.strip().lower() == "linux"
    return None


def _linux_distros(data: PingData, total: int) -> tuple[dict[str, int], int, str, bool]:
    """The distribution counts of the Linux pings, their total, a note saying what was left out, and
    whether only Linux pings are counted.

    A distribution only means something on Linux: macOS and Windows pings say ``unknown``
    and would drown the chart. When no ping says its platform (nor its ``os``), none can
    be told apart, and every ping is counted (the note says so).
    """
    counts: dict[str, int] = {}
    other = unsaid = 0
    for (platform, system, distro), n in data.counts(("platform", "os", "distro")).items():
        linux = _is_linux(platform, system)
        if linux:
            counts[distro] = counts.get(distro, 0) + n
        elif linux is None:
            unsaid += n
        else:
            other += n
    if unsaid == total:
        return ({key[0]: n for key, n in data.counts(("distro",)).items()}, total,
                "No ping carried its platform (nor os), so Linux pings cannot be told apart: every ping is counted.",
                False)
    linux_total = total - other - unsaid
    note = f"Linux pings only: {_count(linux_total)} of {_count(total)} ping(s) came from Linux"
    left = [f"{_count(other)} from other platforms"] if other else []
    if unsaid:
        left.append(f"{_count(unsaid)} that carried neither platform nor os")
    note += ("; left out: " + " and ".join(left) + ".") if left else "."
    return counts, linux_total, note, True


def _share_section(data: PingData, field: str, heading: str, total: int) -> str:
    scope = ""
    if field == "distro":
        counts, total, scope, linux_only = _linux_distros(data, total)
        if linux_only:
            heading += " (Linux pings only)"
        shown, rest, rest_groups = _top(counts, field, TOP)
    elif field == "version" and len(data.counts(("package",))) > 1:
        # Several packages: a version means nothing without its package.
        pairs = data.counts(("package", "version"))
        counts = {f"{p} {v}": n for (p, v), n in pairs.items()}
        order = {f"{p} {v}": (normalise_package(p), version_key(v)) for p, v in pairs}
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        shown = sorted(ranked[:TOP], key=lambda item: (order[item[0]][0], _negated(order[item[0]][1])))
        rest, rest_groups = sum(n for _, n in ranked[TOP:]), len(ranked[TOP:])
        field, heading = "package version", heading + " (per package)"
    else:
        counts = {key[0]: n for key, n in data.counts((field,)).items()}
        shown, rest, rest_groups = _top(counts, field, TOP)
    rows = [(label, n, f"s{i % len(_PALETTE)}") for i, (label, n) in enumerate(shown)]
    if rest:
        rows.append((OTHER, rest, "so"))
    note = f'<p class="note">{_e(scope)}</p>' if scope else ""
    if rest:
        note += (f'<p class="note">The {len(shown)} largest of {len(counts)} values are shown; the other '
                 f"{rest_groups} are summed as “{OTHER}”.</p>")
    missing = counts.get(MISSING, 0)
    if missing:
        note += (f'<p class="note">“{MISSING}”: {_count(missing)} ping(s) did not carry {_CARRIED.get(field, field)} '
                 "(the route or the query has no such variable).</p>")
    table = _table(
        [field, "pings", "share"],
        [[label, _count(n), _share(n, total)] for label, n, _ in rows],
    )
    chart_id = _CHART_IDS.get(field, f"share-{field.split()[-1]}")
    return (f'<section id="{chart_id}-section"><h2>{_e(heading)}</h2><figure>'
            f"{_bars(chart_id, heading, rows, total)}<figcaption>{_e(heading)}: {len(rows)} bar(s), "
            f"{_count(total)} ping(s) in all; the numbers are in the table below.</figcaption></figure>"
            f"{note}{table}</section>")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], numeric_from: int | None = None) -> str:
    first_number = len(header) - 2 if numeric_from is None else numeric_from
    head = "".join(f'<th{" class=n" if i >= first_number else ""} scope="col">{_e(h)}</th>'
                   for i, h in enumerate(header))
    body = "".join(
        "<tr>" + "".join(f'<td class="{"n" if i >= first_number else "v"}">{_e(c)}</td>' for i, c in enumerate(row))
        + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _bucket_size(first: str, last: str) -> str:
    try:
        span = (datetime.fromisoformat(last) - datetime.fromisoformat(first)).days + 1
    except ValueError:  # a stored time that looks like a date but is none (2026-13-45): not ours
        return "day"
    return "day" if span <= 92 else "week" if span <= 7 * 104 else "month"


def _uptake_section(data: PingData) -> str:
    """Pings per day (or week, or month), stacked by version: how fast a release is taken up."""
    first, last, undated = data.day_range()
    if first is None or last is None:
        return ('<section id="uptake-section"><h2>Pings over time</h2><p class="note">No ping has a readable '
                "time.</p></section>")
    bucket = _bucket_size(first, last)
    rows = data.per_bucket(bucket)
    packages = {p for _, p, _, _ in rows}
    several = len(packages) > 1

    def series_of(package: str, version: str) -> str:
        return f"{package} {version}" if several else version

    totals: dict[tuple[str, str], int] = {}
    recent: dict[tuple[str, str], int] = {}
    all_buckets = sorted({b for b, _, _, _ in rows})
    recent_from = all_buckets[len(all_buckets) * 2 // 3]
    for b, package, version, n in rows:
        totals[(package, version)] = totals.get((package, version), 0) + n
        if b >= recent_from:
            recent[(package, version)] = recent.get((package, version), 0) + n
    # Uptake is about new releases: stack the newest versions that hold at least 1% of the
    # pings in the last third of the period; fill any free places with the biggest others.
    recent_total = sum(recent.values()) or 1
    newest_first = sorted(totals, key=lambda k: version_key(k[1]), reverse=True)
    chosen = [k for k in newest_first if recent.get(k, 0) >= recent_total / 100][:TOP_SERIES]
    chosen += [k for k, _ in sorted(totals.items(), key=lambda item: (-item[1], item[0]))
               if k not in chosen][:TOP_SERIES - len(chosen)]
    shown = sorted(chosen, key=lambda k: (normalise_package(k[0]), version_key(k[1])))
    labels = [series_of(*key) for key in shown]
    has_other = len(totals) > len(shown)
    if has_other:
        labels.append(OTHER)
    index = {key: i for i, key in enumerate(shown)}
    buckets: dict[str, list[int]] = {}
    for b, package, version, n in rows:
        column = index.get((package, version), len(shown))
        buckets.setdefault(b, [0] * len(labels))[column] += n
    order = sorted(buckets)
    peak = max(sum(v) for v in buckets.values()) or 1
    width, height, left, bottom, top = 720, 280, 56, 28, 12
    plot_w, plot_h = width - left - 8, height - top - bottom
    step = plot_w / len(order)
    bar_w = max(1.0, step * 0.8)
    unit = {"day": "day", "week": "week (weeks start on Monday)", "month": "month"}[bucket]
    title = f"Pings per {unit}, stacked by version"
    latest = buckets[order[-1]]
    leaders = sorted(((n, labels[i]) for i, n in enumerate(latest) if n), reverse=True)[:3]
    summary = (f"{_count(sum(sum(v) for v in buckets.values()))} pings from {first} to {last} (UTC) in "
               f"{len(order)} {bucket}(s); in the last {bucket} ({order[-1]}): " +
               ", ".join(f"{printable(label)} {_share(n, sum(latest))}" for n, label in leaders))
    out = [(f'<svg id="uptake" class="chart stacked" role="img" aria-labelledby="uptake-t uptake-d" '
           f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">'),
           f'<title id="uptake-t">{_e(title)}</title><desc id="uptake-d">{_e(summary)}</desc>']
    for fraction in (0, 0.5, 1):
        y = top + plot_h * (1 - fraction)
        out.append(f'<line x1="{left}" x2="{width - 8}" y1="{y:.1f}" y2="{y:.1f}"></line>'
                   f'<text class="axis" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
                   f"{_count(round(peak * fraction))}</text>")
    for i, b in enumerate(order):
        values = buckets[b]
        x = left + i * step + (step - bar_w) / 2
        y = top + plot_h
        parts = [(f'<g class="bucket" data-bucket="{_e(b)}" data-count="{sum(values)}"><title>{_e(b)}: '
                 f"{_count(sum(values))} ping(s)</title>")]
        for s, n in enumerate(values):
            if not n:
                continue
            h = plot_h * n / peak
            y -= h
            colour = "so" if labels[s] == OTHER and has_other and s == len(labels) - 1 else f"s{s % len(_PALETTE)}"
            parts.append(f'<rect class="{colour}" data-series="{_e(labels[s])}" data-count="{n}" x="{x:.1f}" '
                         f'y="{y:.2f}" width="{bar_w:.1f}" height="{h:.2f}"><title>{_e(b)} · {_e(labels[s])}: '
                         f"{_count(n)}</title></rect>")
        parts.append("</g>")
        out.append("".join(parts))
    out.append(f'<text class="axis" x="{left}" y="{height - 8}">{_e(order[0])}</text>'
               f'<text class="axis" x="{width - 8}" y="{height - 8}" text-anchor="end">{_e(order[-1])}</text></svg>')
    legend = "".join(
        f'<li><span class="sw {"so" if label == OTHER and has_other and i == len(labels) - 1 else f"s{i % len(_PALETTE)}"}">'
        f"</span>{_e(label)}</li>" for i, label in enumerate(labels))
    notes = []
    if has_other:
        notes.append(f"The {len(shown)} newest versions with at least 1% of the pings in the last third of the "
                     f"period are stacked; the other "
                     f"{len(totals) - len(shown)} are summed as “{OTHER}”.")
    if undated:
        notes.append(f"{_count(undated)} ping(s) have no readable time and are not in this chart.")
    note = "".join(f'<p class="note">{_e(n)}</p>' for n in notes)
    table = _table([bucket, *labels, "total"], [[b, *(_count(n) for n in buckets[b]), _count(sum(buckets[b]))]
                                                for b in reversed(order)], numeric_from=1)
    return (f'<section id="uptake-section"><h2>{_e(title)}</h2><figure>{"".join(out)}'
            f'<figcaption>{_e(summary)}</figcaption></figure><ul class="legend">{legend}</ul>{note}'
            f"<details><summary>The numbers per {bucket} (newest first)</summary>{table}</details></section>")


def _by_section(data: PingData, fields: Sequence[str], total: int, path_counts: dict[tuple[str, ...], int] | None
                ) -> str:
    """The text report's grouping (``--by``) as a bar chart of its largest groups and a table."""
    if path_counts is not None:
        fields = ("path",)
        counts = path_counts
    else:
        counts = data.counts(fields)
    groups = rank(counts, fields)
    heading = "Pings by " + ", ".join(fields)
    top = sorted(groups, key=lambda g: -g[1])[:TOP]
    rows = [(" / ".join(key), n, f"s{i % len(_PALETTE)}") for i, (key, n, _) in enumerate(top)]
    rest = total - sum(n for _, n, _ in rows)
    if rest:
        rows.append((OTHER, rest, "so"))
    body = [[*key, _count(n), f"{share:.1%}"] for key, n, share in groups[:TOP_ROWS]]
    if len(groups) > TOP_ROWS:
        left = groups[TOP_ROWS:]
        body.append([f"(the other {len(left)} groups)", *([""] * (len(fields) - 1)), _count(sum(g[1] for g in left)),
                     _share(sum(g[1] for g in left), total)])
    note = ('<p class="note">No ping carried the requested fields: grouped by path.</p>'
            if path_counts is not None else "")
    if len(groups) > TOP:
        note += (f'<p class="note">The chart shows the {TOP} largest of {len(groups)} groups; the table lists '
                 f"{min(len(groups), TOP_ROWS)}.</p>")
    return (f'<section id="by-section"><h2>{_e(heading)}</h2><figure>{_bars("by", heading, rows, total)}'
            f"<figcaption>{_e(heading)} (--by), the largest groups; the table below has the numbers, newest "
            f"version first.</figcaption></figure>{note}{_table([*fields, 'pings', 'share'], body)}</section>")


# --------------------------------------------------------------------------
# The page
# --------------------------------------------------------------------------


class Written:
    """What :func:`write_html` wrote: ``path``, ``pings`` counted and ``size`` in bytes."""

    def __init__(self, path: Path, pings: int, size: int) -> None:
        self.path = path
        self.pings = pings
        self.size = size


def render(db: str | Path, fields: Sequence[str] | None = None, *, package: str | None = None,
           since: str | None = None, now: datetime | None = None) -> tuple[str, int]:
    """The page for ``db`` with the same filters as the text report; returns (html, pings)."""
    wanted = tuple(REPORT_FIELDS if fields is None else fields)
    check_fields(db, wanted)
    chart_fields = (*(f for f, _ in SHARE_CHARTS), "os")  # os: which pings are Linux, when platform is missing
    with PingData(db, (*chart_fields, *wanted), package=package, since=since, by_day=True) as data:
        total = data.total
        filters = [f"--package {package}" if package else "all packages",
                   f"--since {since}" if since else "all time",
                   "--by " + ",".join(wanted)]
        title = f"Adoption of {package}" if package else "Adoption"
        generated = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")
        head = (f'<header><h1>{_e(title)}</h1><p class="meta">{_e(" · ".join(filters))} · '
                f"<strong id=\"total\" data-count=\"{total}\">{_count(total)} ping(s)</strong> · from "
                f"{_e(Path(db).name)}, generated {generated} by scarf-autoping {_e(__version__)}</p></header>")
        if total == 0:
            filtered = package is not None or since is not None
            text = ("No pings match these filters." if filtered else
                    "No pings yet: the database is empty. Point a package's template at 'scarf-autoping collect' "
                    "and import it.")
            sections = f'<p class="empty" id="empty">{_e(text)}</p>'
        else:
            default = fields is None
            if default and not data.carries("package"):
                wanted = tuple(f for f in wanted if f != "package")
            path_counts = data.by_path() if not any(data.carries(f) for f in wanted) else None
            sections = "".join([
                _uptake_section(data),
                *(_share_section(data, f, heading, total) for f, heading in SHARE_CHARTS),
                _by_section(data, wanted, total, path_counts),
            ])
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<meta name="color-scheme" content="light dark"><meta name="referrer" content="no-referrer">'
            f"<title>{_e(title)} · scarf-autoping</title><style>{_CSS}</style></head>\n<body>{head}<main>"
            f"{sections}</main><footer><p class=\"note\">Times are UTC. Each chart shows its largest "
            f"categories ({TOP} bars, {TOP_SERIES} stacked versions) and sums the rest as “{OTHER}”. "
            "This page loads nothing and runs no script.</p></footer></body></html>\n")
    return page, total


def write_html(db: str | Path, out: str | Path, fields: Sequence[str] | None = None, *, package: str | None = None,
               since: str | None = None) -> Written:
    """Render the page and write it to ``out`` (UTF-8); raises ReportError when ``out`` cannot be written."""
    from .report import ReportError

    page, total = render(db, fields, package=package, since=since)
    path = Path(out)
    data = page.encode("utf-8")
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise ReportError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None
    return Written(path, total, len(data))
