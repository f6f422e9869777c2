"""``scarf-autoping report --html``: the page's content, safety and size, and the page as a
real headless browser (Debian's ``chromium``) renders it.

The browser tests serve the page from a loopback HTTP server that records every request:
only the page itself may be fetched. The database holds pings whose values try to inject
markup that would fetch from that server or mark the DOM; the rendered DOM must show them
as text and hold no element they tried to create. When no chromium is installed those
tests are skipped with a loud warning (``.ci/run`` installs it where it can).
"""

from __future__ import annotations

import base64
import hashlib
import html.parser
import os
import re
import shutil
import struct
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

import pytest
from helpers import child_env
from loopback import Collector
from reports import make_db, ping

from scarf_autoping.tools.report_html import CONTENT_SECURITY_POLICY, render

SCRIPT = str(Path(sys.executable).parent / "scarf-autoping")


#: Where the injected markup tries to reach; replaced by the recording server's port.
PORT_MARK = "PORTMARK"


INJECTIONS = (
    "<script>fetch('http://127.0.0.1:PORTMARK/script-ran');document.title='pwned'</script>",
    '"><img src="http://127.0.0.1:PORTMARK/img-loaded" onerror="document.body.dataset.pwned=1">',
    "<style>body{background:url(http://127.0.0.1:PORTMARK/css-loaded)}</style>",
    "</title></svg><iframe src=http://127.0.0.1:PORTMARK/frame-loaded></iframe>",
)


def _html(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([SCRIPT, "report", *args], env=child_env(), capture_output=True, text=True, timeout=120,
                          check=False)


class _Dom(html.parser.HTMLParser):
    """Every element (tag, attributes) and all the text of a document."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        return [a for t, a in self.elements if t == tag and all(a.get(k.replace("_", "-")) == v
                                                               for k, v in attrs.items())]

    def with_class(self, tag: str, name: str) -> list[dict[str, str]]:
        return [a for t, a in self.elements if t == tag and name in a.get("class", "").split()]


# --------------------------------------------------------------------------
# The page itself (no browser)
# --------------------------------------------------------------------------


@pytest.fixture
def sample_db(tmp_path: Path) -> Path:
    pings = []
    for day, versions in (("2026-11-01", ["1.0"] * 3), ("2026-11-02", ["1.0", "2.0"]), ("2026-11-04", ["2.0"] * 4)):
        for i, version in enumerate(versions):
            pings.append(ping("my-pkg", version, f"{day}T0{i}:00:00.000Z", python="3.12.1",
                              platform="linux" if i % 2 else "macos", arch="x86_64", distro="debian"))
    pings.append(ping("other", "9.9", "2026-11-03T00:00:00.000Z", python="3.9.18", platform="windows",
                      arch="AMD64", distro="unknown"))
    return make_db(tmp_path / "s.sqlite", pings)


def test_the_page_has_every_chart_with_the_right_counts(sample_db, tmp_path):
    out = tmp_path / "r.html"
    result = _html(["--db", str(sample_db), "--html", str(out)])
    assert result.returncode == 0 and result.stderr == "", result
    assert f"wrote {out} (10 ping(s)" in result.stdout
    dom = _Dom(out.read_text(encoding="utf-8"))
    assert dom.find("strong", id="total")[0]["data-count"] == "10"
    buckets = {g["data-bucket"]: int(g["data-count"]) for g in dom.with_class("g", "bucket")}
    assert buckets == {"2026-11-01": 3, "2026-11-02": 2, "2026-11-03": 1, "2026-11-04": 4}
    for chart in ("share-version", "share-python", "share-platform", "share-arch", "share-distro", "by"):
        svg = dom.find("svg", id=chart)
        assert svg and svg[0]["role"] == "img" and svg[0]["aria-labelledby"], chart
    bars = {a["data-label"]: int(a["data-count"]) for a in dom.with_class("g", "bar")}
    assert bars["my-pkg 2.0"] == 5 and bars["my-pkg 1.0"] == 4 and bars["other 9.9"] == 1
    # Python by minor; AMD64 (Windows' name) merged with x86_64; distributions of Linux pings only.
    assert bars["3.12"] == 9 and bars["3.9"] == 1 and bars["windows"] == 1 and bars["x86_64"] == 10
    assert "3.12.1" not in bars and "AMD64" not in bars
    assert bars["debian"] == 4 and "unknown" not in bars


def test_filters_apply_to_the_page(sample_db, tmp_path):
    out = tmp_path / "f.html"
    assert _html(["--db", str(sample_db), "--html", str(out), "--package", "My_Pkg", "--since", "2026-11-02",
                  "--by", "platform"]).returncode == 0
    dom = _Dom(out.read_text(encoding="utf-8"))
    assert dom.find("strong", id="total")[0]["data-count"] == "6"
    assert {g["data-bucket"]: int(g["data-count"]) for g in dom.with_class("g", "bucket")} == {
        "2026-11-02": 2, "2026-11-04": 4}
    assert dom.find("svg", id="by") and "Pings by platform" in "".join(dom.text)
    result = _html(["--db", str(sample_db), "--html", str(out), "--by", "platfrom"])
    assert result.returncode == 2 and "unknown field in --by: platfrom" in result.stderr


def test_an_empty_database_gives_a_page_that_says_so(tmp_path):
    db = make_db(tmp_path / "e.sqlite", [])
    page, total = render(db)
    assert total == 0 and 'id="empty"' in page and "No pings yet" in page and "<svg" not in page
    page, _ = render(make_db(tmp_path / "one.sqlite", [ping("a", "1")]), package="b")
    assert "No pings match these filters" in page


def test_the_policy_forbids_everything_but_the_hashed_inline_style(tmp_path):
    page, _ = render(make_db(tmp_path / "p.sqlite", [ping("a", "1")]))
    head = page.split("</head>")[0]
    assert head.index("Content-Security-Policy") < head.index("<title>")
    assert "default-src 'none'" in CONTENT_SECURITY_POLICY and "script-src 'none'" in CONTENT_SECURITY_POLICY
    assert "unsafe" not in CONTENT_SECURITY_POLICY
    style = re.search(r"<style>(.*?)</style>", page, re.DOTALL).group(1)
    digest = base64.b64encode(hashlib.sha256(style.encode("utf-8")).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in CONTENT_SECURITY_POLICY
    assert "<script" not in page and " style=" not in page and "http://" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")


def test_injected_values_are_escaped_in_the_markup(tmp_path):
    pings = [ping(f"pkg{i}", value, python=value, distro=value) for i, value in enumerate(INJECTIONS)]
    pings += [{"path": value} for value in INJECTIONS]
    page, _ = render(make_db(tmp_path / "i.sqlite", pings))
    for value in INJECTIONS:
        assert value not in page
    assert "<script" not in page and "<img" not in page and "<iframe" not in page and "<style>body" not in page
    assert "&lt;script&gt;fetch(" in page
    page, _ = render(make_db(tmp_path / "j.sqlite", [{"path": value} for value in INJECTIONS]))
    assert "grouped by path" in page and "&lt;iframe src=http://127.0.0.1:PORTMARK/frame-loaded&gt;" in page


def test_a_database_with_many_values_gives_a_small_page(tmp_path):
    pings = [ping(f"p{i % 40}", f"{i}.0", f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}T00:00:00.000Z",
                  python=f"3.{i}", distro="d" * 500 + str(i)) for i in range(3000)]
    page, total = render(make_db(tmp_path / "m.sqlite", pings), ["version", "python", "distro"])
    assert total == 3000
    assert len(page.encode("utf-8")) < 1_000_000
    dom = _Dom(page)
    assert len(dom.with_class("g", "bucket")) <= 104  # weekly buckets over a year, not one per day
    assert "(the other 2900 groups)" in page and "summed as “other”" in page


# --------------------------------------------------------------------------
# In a real browser
# --------------------------------------------------------------------------


def _chromium() -> str:
    for name in (os.environ.get("SCARF_AUTOPING_CHROMIUM", ""), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return str(shutil.which(name))
    reason = ("WARNING: no chromium found (apt-get install chromium, or set SCARF_AUTOPING_CHROMIUM): the HTML "
              "report is NOT checked in a real browser")
    print(reason, file=sys.stderr)
    warnings.warn(reason, stacklevel=2)
    pytest.skip(reason)


def _browse(chromium: str, profile: Path, url: str, *extra: str) -> subprocess.CompletedProcess:
    args = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-default-apps", "--disable-extensions", "--hide-scrollbars", "--mute-audio",
            f"--user-data-dir={profile}", "--virtual-time-budget=3000", *extra, url]
    # Niced: the browser is CPU-hungry, and the suite's timing-sensitive tests run beside it under
    # xdist. With nice(1), not a preexec_fn: that would fork this multi-threaded test process.
    nice = shutil.which("nice")
    if nice:
        args = [nice, "-n", "15", *args]
    result = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False,
                            stdin=subprocess.DEVNULL, env={**os.environ, "HOME": str(profile)})
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def _pixels(png: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and the rows of pixels (bytes per pixel: 3 or 4) of an 8-bit RGB(A) PNG."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        chunk = png[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = chunk
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up = previous[i]
            corner = previous[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        rows.append(bytes(line))
        previous = line
    return width, bpp, rows


@pytest.fixture(scope="module")
def browsed(tmp_path_factory):
    """The injected page rendered by chromium: DOM, light and dark screenshots, requests seen."""
    chromium = _chromium()
    root = tmp_path_factory.mktemp("browser")
    pings = []
    for day, count in (("2026-11-01", 2), ("2026-11-02", 3), ("2026-11-03", 1)):
        pings += [ping("my-pkg", "1.0" if i else "2.0", f"{day}T01:00:00.000Z", python="3.12.1", platform="linux",
                       arch="aarch64", distro="debian") for i in range(count)]
    # Serves the page at /report.html (404 elsewhere) and records every request it gets.
    server = Collector("status:404")
    port = str(server.port)
    evil = [value.replace(PORT_MARK, port) for value in INJECTIONS]
    pings += [ping("evil", value, "2026-11-03T02:00:00.000Z", python=value, platform=value, distro=value)
              for value in evil]
    db = make_db(root / "b.sqlite", pings)
    page, _ = render(db)
    server.pages["/report.html"] = page.encode("utf-8")
    url = server.url + "/report.html"
    try:
        dom = _browse(chromium, root / "profile-dom", url, "--dump-dom").stdout
        light, dark = root / "light.png", root / "dark.png"
        _browse(chromium, root / "profile-light", url, f"--screenshot={light}", "--window-size=800,1000")
        _browse(chromium, root / "profile-dark", url, f"--screenshot={dark}", "--window-size=800,1000",
                "--force-dark-mode", "--blink-settings=preferredColorScheme=0")
    finally:
        server.close()
    return {"dom": dom, "light": light.read_bytes(), "dark": dark.read_bytes(),
            "requests": [request.path for request in server.requests],
            "evil": evil, "port": port}


def test_browser_renders_the_charts_with_the_right_counts(browsed):
    dom = _Dom(browsed["dom"])
    assert dom.find("strong", id="total")[0]["data-count"] == "10"
    buckets = {g["data-bucket"]: int(g["data-count"]) for g in dom.with_class("g", "bucket")}
    assert buckets == {"2026-11-01": 2, "2026-11-02": 3, "2026-11-03": 5}
    stacked = [(r["data-series"], int(r["data-count"])) for t, r in dom.elements if t == "rect" and "data-series" in r]
    assert sum(n for _, n in stacked) == 10
    bars = {a["data-label"]: int(a["data-count"]) for a in dom.with_class("g", "bar")}
    assert bars["linux"] == 6 and bars["arm64"] == 6 and bars["my-pkg 1.0"] == 3 and bars["my-pkg 2.0"] == 3


def test_browser_shows_injected_values_as_text_and_runs_nothing(browsed):
    dom = _Dom(browsed["dom"])
    text = "".join(dom.text)
    for value in browsed["evil"]:
        assert value in text  # shown, verbatim, as text
    tags = {t for t, _ in dom.elements}
    assert not tags & {"script", "img", "iframe", "link", "object", "embed"}, tags
    assert sum(1 for t, _ in dom.elements if t == "style") == 1
    assert not [a for _, a in dom.elements if any(k.startswith("on") for k in a)]
    assert not dom.find("body", data_pwned="1") and "<title>pwned" not in browsed["dom"]


def test_browser_sends_no_request_but_the_page(browsed):
    assert browsed["requests"].count("/report.html") == 3  # one per browser run
    assert set(browsed["requests"]) == {"/report.html"}, browsed["requests"]


def test_browser_screenshot_is_not_blank_and_follows_the_colour_scheme(browsed):
    for scheme in ("light", "dark"):
        width, bpp, rows = _pixels(browsed[scheme])
        colours = {row[i:i + 3] for row in rows[::4] for i in range(0, width * bpp, bpp * 4)}
        assert len(colours) > 20, (scheme, len(colours))  # text, bars in several colours, not one flat colour
    _, _, light_rows = _pixels(browsed["light"])
    _, _, dark_rows = _pixels(browsed["dark"])
    assert sum(light_rows[2][:3]) > 600  # the background at the top-left corner: white
    assert sum(dark_rows[2][:3]) < 150  # and near-black in the dark scheme


def test_pings_without_a_readable_time_are_counted_but_not_charted(tmp_path):
    db = make_db(tmp_path / "t.sqlite", [ping("a", "1", "t"), ping("a", "1", "2026-13-45T00:00:00Z"),
                                         ping("a", "2", "2026-11-01T00:00:00.000Z")])
    page, total = render(db)
    dom = _Dom(page)
    assert total == 3 and {g["data-bucket"] for g in dom.with_class("g", "bucket")} <= {"2026-11-01", "2026-13-45"}
    assert "1 ping(s) have no readable time" in page
    page, _ = render(make_db(tmp_path / "u.sqlite", [ping("a", "1", "t")]))
    assert "No ping has a readable time" in page and "Share by version" in page


def _section(page: str, chart: str) -> str:
    return page.split(f'<section id="{chart}-section">', 1)[1].split("</section>", 1)[0]


def _bars(section: str) -> dict[str, int]:
    return {m[0]: int(m[1]) for m in re.findall(r'<g class="bar" data-label="([^"]*)" data-count="([0-9]+)"', section)}


def test_the_page_charts_python_by_minor_merged_arches_and_linux_distributions(old_and_new):
    page, total = render(old_and_new)
    assert total == 8
    assert _bars(_section(page, "share-python")) == {"3.12": 4, "3.11": 2, "3.13": 2}
    assert _bars(_section(page, "share-arch")) == {"x86_64": 4, "arm64": 3, "x86": 1}
    distros = _section(page, "share-distro")
    # Linux: 3 by platform, 1 by os; 3 from Windows/macOS and the query ping (no platform) left out.
    assert _bars(distros) == {"debian": 2, "ubuntu": 1, "alpine": 1}
    assert "Share by Linux distribution (Linux pings only)" in distros
    assert "Linux pings only: 4 of 8 ping(s) came from Linux" in distros
    assert "3 from other platforms and 1 that carried neither platform nor os" in distros


def test_the_distribution_chart_counts_every_ping_when_none_says_its_platform(tmp_path):
    db = make_db(tmp_path / "d.sqlite", [ping("p", "1", distro="debian"), ping("p", "1", distro="fedora")])
    distros = _section(render(db)[0], "share-distro")
    assert _bars(distros) == {"debian": 1, "fedora": 1}
    assert "every ping is counted" in distros and "(Linux pings only)" not in distros
