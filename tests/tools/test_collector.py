"""The local collector and the adoption report, through the installed console script:
a real ``scarf-autoping collect`` process on a free loopback port, real HTTP clients,
SIGTERM, then the SQLite database and ``scarf-autoping report``. The route matcher and
the grouping are also unit-tested in-process (pure functions)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from helpers import child_env

from scarf_autoping.tools.collector import CollectorError, Route
from scarf_autoping.tools.report import adoption, format_table, version_key

SCRIPT = str(Path(sys.executable).parent / "scarf-autoping")
ROUTE = "/t/{package}/{version}/{platform}{?python,arch}"


class Collect:
    """A running ``scarf-autoping collect`` subprocess."""

    def __init__(self, db: Path, *args: str) -> None:
        self.db = db
        self.proc = subprocess.Popen(
            [SCRIPT, "collect", "--port", "0", "--db", str(db), *args],
            env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
        )
        first = self.proc.stdout.readline()
        assert first.startswith("collecting on http://127.0.0.1:"), (first, self.proc.stderr.read())
        self.url = first.split()[2]
        self.port = int(self.url.rsplit(":", 1)[1])
        self.stdout = ""
        self.stderr = ""

    def get(self, target: str, method: str = "GET", body: bytes | None = None,
            headers: dict[str, str] | None = None) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request(method, target, body=body, headers=headers or {"User-Agent": "test-agent/1"})
            response = conn.getresponse()
            response.read()
            return response.status
        finally:
            conn.close()

    def stop(self, signum: int = signal.SIGTERM) -> int:
        self.proc.send_signal(signum)
        out, err = self.proc.communicate(timeout=10)
        self.stdout += out
        self.stderr += err
        return self.proc.returncode

    def rows(self) -> list[dict[str, object]]:
        with sqlite3.connect(str(self.db)) as conn:
            conn.row_factory = sqlite3.Row
            return [dict(r) for r in conn.execute("SELECT * FROM pings ORDER BY id")]


@pytest.fixture
def collect(tmp_path):
    started: list[Collect] = []

    def start(*args: str, db: Path | None = None) -> Collect:
        proc = Collect(db or tmp_path / "pings.sqlite", *args)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.proc.poll() is None:
            proc.proc.kill()
            proc.proc.communicate()


def _raw(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send raw bytes, return whatever the server answers before closing."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def test_pings_are_stored_printed_and_reported_newest_version_first(collect):
    server = collect("--route", ROUTE)
    for version in ("1.9.0", "1.10.0", "1.10.0", "1.0.0rc1"):
        assert server.get(f"/t/my-pkg/{version}/linux?python=3.12.1&arch=x86_64") == 200
    assert server.stop() == 0, server.stderr
    assert server.stderr == ""
    ping_lines = [line for line in server.stdout.splitlines() if " GET /t/my-pkg/" in line]
    assert len(ping_lines) == 4
    assert "version=1.9.0" in ping_lines[0] and "python=3.12.1" in ping_lines[0]
    assert "stopped; 4 ping(s) stored" in server.stdout

    rows = server.rows()
    assert [json.loads(r["variables"])["version"] for r in rows] == ["1.9.0", "1.10.0", "1.10.0", "1.0.0rc1"]
    assert rows[0]["method"] == "GET" and rows[0]["user_agent"] == "test-agent/1"
    assert rows[0]["query"] == "python=3.12.1&arch=x86_64" and rows[0]["path"] == "/t/my-pkg/1.9.0/linux"
    assert all(r["client_ip"] is None for r in rows)

    report = subprocess.run([SCRIPT, "report", "--db", str(server.db), "--by", "version,platform"],
                            env=child_env(), capture_output=True, text=True, timeout=30, check=False)
    assert report.returncode == 0, report
    body = [line.split() for line in report.stdout.splitlines()[2:5]]
    assert body == [["1.10.0", "linux", "2", "50.0%"], ["1.9.0", "linux", "1", "25.0%"],
                    ["1.0.0rc1", "linux", "1", "25.0%"]]
    assert report.stdout.splitlines()[-1].split() == ["total", "4", "100.0%"]


def test_fifty_parallel_pings_none_lost(collect):
    server = collect("--route", ROUTE)
    with ThreadPoolExecutor(max_workers=50) as pool:
        codes = list(pool.map(lambda i: server.get(f"/t/pkg/{i % 5}.0/linux"), range(50)))
    assert codes == [200] * 50
    assert server.stop() == 0
    rows = server.rows()
    assert len(rows) == 50
    assert sorted(r["path"] for r in rows) == sorted(f"/t/pkg/{i % 5}.0/linux" for i in range(50))


def test_sigterm_right_after_the_answers_loses_nothing(collect):
    server = collect()
    for i in range(20):
        assert server.get(f"/p/{i}") == 200
    assert server.stop() == 0  # no pause: the writer must drain its queue before exit
    assert len(server.rows()) == 20


def test_ctrl_c_stops_cleanly(collect):
    server = collect()
    assert server.get("/x") == 200
    assert server.stop(signal.SIGINT) == 0
    assert "Traceback" not in server.stderr
    assert len(server.rows()) == 1


def test_a_silent_client_does_not_stall_others(collect):
    server = collect()
    silent = socket.create_connection(("127.0.0.1", server.port))
    half = socket.create_connection(("127.0.0.1", server.port))
    half.sendall(b"GET /half HTTP/1.1\r\nHost: x\r\n")  # headers never finished
    try:
        started = time.monotonic()
        assert server.get("/after") == 200
        took = time.monotonic() - started
        # Milliseconds expected; a collector stalled by the silent clients would never answer.
        assert took < 5.0, f"the next request took {took:.2f} s behind two silent clients"
    finally:
        silent.close()
        half.close()
    assert server.stop() == 0
    assert [r["path"] for r in server.rows()] == ["/after"]


@pytest.mark.parametrize(("data", "status"), [
    (b"NOT AN HTTP REQUEST AT ALL\r\n\r\n", b"400"),
    (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", b"414"),
    (b"GET / HTTP/1.1\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(150)) + b"\r\n", b"431"),
    (b"POST /big HTTP/1.1\r\nContent-Length: 10000000\r\n\r\n", b"413"),
    (b"POST /bad HTTP/1.1\r\nContent-Length: -5\r\n\r\n", b"400"),
    (b"POST /chunked HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", b"411"),
])
def test_oversized_or_malformed_requests_are_refused_and_the_server_keeps_running(collect, data, status):
    server = collect()
    answer = _raw(server.port, data)
    # A request line that is not HTTP at all gets http.server's HTTP/0.9-style answer: no status line.
    assert answer.startswith(b"HTTP/1.1 " + status) or b"Error code: " + status in answer, answer[:300]
    assert server.get("/still-alive") == 200
    assert server.stop() == 0
    assert [r["path"] for r in server.rows()] == ["/still-alive"]


def test_post_body_and_any_method_are_stored(collect):
    server = collect()
    assert server.get("/event", "POST", b'{"k": "v"}', {"Content-Type": "application/json"}) == 200
    assert server.get("/head", "HEAD") == 200
    assert server.stop() == 0
    rows = server.rows()
    assert [(r["method"], r["path"], r["body"]) for r in rows] == [("POST", "/event", '{"k": "v"}'),
                                                                   ("HEAD", "/head", None)]


def test_client_ip_only_with_keep_ip(collect, tmp_path):
    server = collect("--keep-ip", db=tmp_path / "ip.sqlite")
    assert server.get("/x") == 200
    assert server.stop() == 0
    assert server.rows()[0]["client_ip"] == "127.0.0.1"


def test_a_path_outside_the_route_is_stored_without_variables(collect):
    server = collect("--route", ROUTE)
    assert server.get("/somewhere/else?version=3.0") == 200
    assert server.stop() == 0
    row = server.rows()[0]
    assert row["variables"] is None
    report = subprocess.run([SCRIPT, "report", "--db", str(server.db)], env=child_env(), capture_output=True,
                            text=True, timeout=30, check=False)
    assert report.stdout.splitlines()[2].split() == ["3.0", "1", "100.0%"]  # from the query parameters


def _start_error(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([SCRIPT, "collect", "--port", "0", *args], env=child_env(), capture_output=True,
                          text=True, timeout=10, check=False)


def test_a_read_only_database_location_is_a_clear_error_at_start(tmp_path):
    result = _start_error("--db", "/proc/scarf-autoping-test.sqlite")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "cannot write the database '/proc/scarf-autoping-test.sqlite'" in result.stderr


def test_a_read_only_existing_database_file_is_a_clear_error_at_start(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root can write read-only files")
    db = tmp_path / "ro.sqlite"
    sqlite3.connect(str(db)).close()
    db.chmod(0o444)
    result = _start_error("--db", str(db))
    assert result.returncode == 1
    assert "cannot write the database" in result.stderr


def test_a_port_in_use_is_a_clear_error(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = subprocess.run(
            [SCRIPT, "collect", "--port", str(busy.getsockname()[1]), "--db", str(tmp_path / "p.sqlite")],
            env=child_env(), capture_output=True, text=True, timeout=10, check=False,
        )
    assert result.returncode == 1
    assert "cannot listen on 127.0.0.1:" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("args", [["--port", "70000"], ["--port", "x"], ["--route", "/t/{oops"]])
def test_bad_collect_arguments(tmp_path, args):
    result = _start_error("--db", str(tmp_path / "p.sqlite"), *args)
    assert result.returncode in (1, 2)
    assert result.stderr.count("\n") == 1 and "error:" in result.stderr


def test_report_errors_are_one_line(tmp_path):
    missing = subprocess.run([SCRIPT, "report", "--db", str(tmp_path / "none.sqlite")], env=child_env(),
                             capture_output=True, text=True, timeout=10, check=False)
    assert missing.returncode == 1 and "no database at" in missing.stderr and missing.stderr.count("\n") == 1
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database" * 100)
    bad = subprocess.run([SCRIPT, "report", "--db", str(junk)], env=child_env(), capture_output=True, text=True,
                         timeout=10, check=False)
    assert bad.returncode == 1 and "cannot read" in bad.stderr and "Traceback" not in bad.stderr


# --------------------------------------------------------------------------
# Pure functions, in-process
# --------------------------------------------------------------------------


@pytest.mark.parametrize(("template", "target", "expected"), [
    ("http://h:1/t/{package}/{version}", "/t/a-b/1.0", {"package": "a-b", "version": "1.0"}),
    ("https://x.gateway.scarf.sh/t{/package,version}{?python}", "/t/p/2?python=3.12",
     {"package": "p", "version": "2", "python": "3.12"}),
    ("/t/{package}/{version}", "/t/p%20q/1", {"package": "p q", "version": "1"}),
    ("/t/{package}/{version}", "/t/p/1/", {"package": "p", "version": "1"}),
    ("/t/{package}/{version}", "/other/p/1", None),
    ("/t/{package}{.ext}", "/t/p.json", {"package": "p", "ext": "json"}),
])
def test_route_recovers_the_variables(template, target, expected):
    from urllib.parse import parse_qsl, urlsplit

    split = urlsplit(target)
    assert Route(template).match(split.path, dict(parse_qsl(split.query))) == expected


def test_route_rejects_a_bad_template():
    with pytest.raises(CollectorError, match="bad --route template"):
        Route("/t/{package")


def test_version_order():
    versions = ["1.0", "1.10", "1.9", "1.0rc1", "1.0.post1", "unknown", "2.0.dev1", "-"]
    assert sorted(versions, key=version_key, reverse=True) == [
        "2.0.dev1", "1.10", "1.9", "1.0.post1", "1.0", "1.0rc1", "unknown", "-"]


def test_adoption_groups_and_falls_back_to_path():
    rows = [
        {"path": "/a", "query": "version=1.0&platform=linux", "variables": None},
        {"path": "/b", "query": "", "variables": json.dumps({"version": "2.0", "platform": "macos"})},
        {"path": "/c", "query": "version=1.0", "variables": None},
    ]
    report = adoption(rows, ["version", "platform"])
    assert report.groups == [(("2.0", "macos"), 1, 1 / 3), (("1.0", "linux"), 1, 1 / 3), (("1.0", "-"), 1, 1 / 3)]
    fallback = adoption(rows, ["distro"])
    assert fallback.by_path and fallback.fields == ("path",)
    assert "grouped by path" in format_table(fallback)
    assert format_table(adoption([], ["version"])) == "no pings yet"


# --------------------------------------------------------------------------
# Review regressions: stdout, escaping, shutdown race, foreign databases, limits
# --------------------------------------------------------------------------


def _wait_listening(port: int, proc: subprocess.Popen, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else proc.returncode
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("the collector never listened")


def test_a_stdout_nobody_reads_does_not_stop_storing_or_stopping(tmp_path):
    """stdout is a pipe that is never read: every ping is still answered and stored, and
    SIGTERM still stops the collector promptly (the printer drops lines instead of blocking)."""
    from loopback import free_port

    db = tmp_path / "pipe.sqlite"
    port = free_port()
    read_end, write_end = os.pipe()
    try:
        proc = subprocess.Popen([SCRIPT, "collect", "--port", str(port), "--db", str(db)], env=child_env(),
                                stdout=write_end, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        os.close(write_end)
        try:
            _wait_listening(port, proc)
            long_path = "/p/" + "x" * 400
            answers = [_raw(port, f"GET {long_path}/{i} HTTP/1.1\r\n\r\n".encode())[:12] for i in range(400)]
            assert answers == [b"HTTP/1.1 200"] * 400  # ~170 KB of lines: far over a pipe's 64 KiB
            proc.send_signal(signal.SIGTERM)
            started = time.monotonic()
            proc.wait(timeout=8)
            took = time.monotonic() - started
            assert took < 5, f"stopping took {took:.2f} s, expected well under 1 s"
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stderr.close()
    finally:
        os.close(read_end)
    assert proc.returncode == 0
    with sqlite3.connect(str(db)) as conn:
        assert conn.execute("SELECT count(*) FROM pings").fetchone()[0] == 400


def test_control_characters_are_escaped_in_the_ping_line_and_the_report(collect):
    server = collect("--route", "/t/{package}/{version}")
    forged = "/t/%1b%5b31mRED%1b%5b0m/1.0%0a2099-01-01T00:00:00.000Z%20%20GET%20%2Fforged"
    assert server.get(forged) == 200
    assert server.stop() == 0
    assert "\x1b" not in server.stdout
    ping_lines = [line for line in server.stdout.splitlines() if " GET /t/" in line]
    assert len(ping_lines) == 1
    assert "package=\\x1b[31mRED\\x1b[0m version=1.0\\n2099-01-01T00:00:00.000Z  GET /forged" in ping_lines[0]
    assert not any(line.startswith("2099") for line in server.stdout.splitlines())
    report = subprocess.run([SCRIPT, "report", "--db", str(server.db), "--by", "package"], env=child_env(),
                            capture_output=True, text=True, timeout=10, check=False)
    assert report.returncode == 0, report
    assert "\x1b" not in report.stdout and "\\x1b[31mRED\\x1b[0m" in report.stdout


def test_a_request_once_stopping_has_begun_gets_503_not_a_lost_200(tmp_path):
    from scarf_autoping.tools.collector import Collector

    collector = Collector("127.0.0.1", 0, tmp_path / "race.sqlite").start()
    try:
        assert _raw(collector.port, b"GET /before HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 200")
        collector.store.close()  # what stop() does after the server stops accepting
        assert _raw(collector.port, b"GET /late HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 503")
    finally:
        collector.stop()
    with sqlite3.connect(str(tmp_path / "race.sqlite")) as conn:
        assert [r[0] for r in conn.execute("SELECT path FROM pings")] == ["/before"]


def test_a_full_queue_answers_503_instead_of_growing(tmp_path):
    import threading

    from scarf_autoping.tools.collector import Collector

    entered, release = threading.Event(), threading.Event()

    def slow(record: dict[str, object]) -> None:
        entered.set()
        release.wait(10)

    collector = Collector("127.0.0.1", 0, tmp_path / "q.sqlite", on_ping=slow, max_queue=2).start()
    try:
        assert _raw(collector.port, b"GET /0 HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 200")
        assert entered.wait(5)  # the writer is now stuck in the callback
        assert _raw(collector.port, b"GET /1 HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 200")
        assert _raw(collector.port, b"GET /2 HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 200")
        assert _raw(collector.port, b"GET /3 HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 503")
    finally:
        release.set()
        collector.stop()
    assert collector.store.stored == 3


def test_a_foreign_sqlite_file_is_refused_and_left_alone(tmp_path):
    db = tmp_path / "other.sqlite"
    with sqlite3.connect(str(db)) as conn:
        conn.execute("CREATE TABLE pings (id INTEGER PRIMARY KEY, host TEXT)")
        conn.execute("PRAGMA user_version = 42")
    before = db.read_bytes()
    result = _start_error("--db", str(db))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "is not a scarf-autoping collector database" in result.stderr
    assert db.read_bytes() == before
    other = tmp_path / "app.sqlite"
    with sqlite3.connect(str(other)) as conn:
        conn.execute("CREATE TABLE users (name TEXT)")
    assert "other tables (users)" in _start_error("--db", str(other)).stderr


def test_the_database_is_created_only_once_the_port_is_bound(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = _start_error("--db", str(tmp_path / "never.sqlite"), "--port", str(busy.getsockname()[1]))
    assert result.returncode == 1 and "cannot listen" in result.stderr
    assert not (tmp_path / "never.sqlite").exists()


def test_collect_on_ipv6_loopback(tmp_path):
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    proc = subprocess.Popen([SCRIPT, "collect", "--host", "::1", "--port", "0", "--db", str(tmp_path / "v6.sqlite")],
                            env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    try:
        first = proc.stdout.readline()
        assert first.startswith("collecting on http://[::1]:"), (first, proc.stderr.read())
        port = int(first.split()[2].rsplit(":", 1)[1])
        with socket.create_connection(("::1", port), timeout=5) as sock:
            sock.sendall(b"GET /six HTTP/1.1\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.1 200")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0 and "stopped; 1 ping(s) stored" in out


@pytest.mark.parametrize("data", [
    "POST /sup HTTP/1.1\r\nContent-Length: \u00b2\r\n\r\n".encode("utf-8"),
    b"POST /long HTTP/1.1\r\nContent-Length: " + b"9" * 4400 + b"\r\n\r\n",
    b"POST /twice HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab",
])
def test_a_malformed_content_length_gets_400(collect, data):
    server = collect()
    assert _raw(server.port, data).startswith(b"HTTP/1.1 400"), data[:60]
    assert server.get("/still-alive") == 200
    assert server.stop() == 0
    assert [r["path"] for r in server.rows()] == ["/still-alive"]


def test_a_slow_client_is_cut_off_at_the_request_deadline(tmp_path):
    from scarf_autoping.tools.collector import Collector

    collector = Collector("127.0.0.1", 0, tmp_path / "slow.sqlite", request_deadline=1.0).start()
    try:
        with socket.create_connection(("127.0.0.1", collector.port), timeout=5) as sock:
            started = time.monotonic()
            sock.sendall(b"GET /slow HTTP/1.1\r\n")
            closed = False
            while time.monotonic() - started < 4 and not closed:
                try:
                    sock.sendall(b"X")  # one byte every 0.2 s: each read is well within the per-read timeout
                    sock.settimeout(0.2)
                    closed = sock.recv(100) == b""
                except socket.timeout:
                    continue
                except OSError:
                    closed = True
            elapsed = time.monotonic() - started
        assert closed and elapsed < 3, f"cut off after {elapsed:.2f} s, expected the 1 s request deadline"
    finally:
        collector.stop()
    assert collector.store.stored == 0


def test_connections_over_the_cap_get_503_and_the_server_recovers(tmp_path):
    from scarf_autoping.tools.collector import Collector

    collector = Collector("127.0.0.1", 0, tmp_path / "cap.sqlite", max_connections=3).start()
    silent = []
    try:
        silent = [socket.create_connection(("127.0.0.1", collector.port)) for _ in range(3)]
        deadline = time.monotonic() + 5
        while collector.server.active_connections < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert collector.server.active_connections == 3
        assert _raw(collector.port, b"GET /over HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 503")
        for sock in silent:
            sock.close()
        while collector.server.active_connections and time.monotonic() < deadline + 5:
            time.sleep(0.02)
        assert _raw(collector.port, b"GET /after HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 200")
    finally:
        for sock in silent:
            sock.close()
        collector.stop()


def test_report_survives_a_row_with_invalid_variables_json(tmp_path):
    db = tmp_path / "bad.sqlite"
    with sqlite3.connect(str(db)) as conn:
        conn.execute("CREATE TABLE pings (id INTEGER PRIMARY KEY, received_at TEXT, method TEXT, path TEXT, "
                     "query TEXT, variables TEXT, user_agent TEXT, client_ip TEXT, body TEXT)")
        conn.execute("INSERT INTO pings (received_at, method, path, query, variables) VALUES "
                     "('t', 'GET', '/x', 'version=2.0', '{not json')")
    report = subprocess.run([SCRIPT, "report", "--db", str(db)], env=child_env(), capture_output=True, text=True,
                            timeout=10, check=False)
    assert report.returncode == 0 and report.stderr == "", report
    assert report.stdout.splitlines()[2].split() == ["2.0", "1", "100.0%"]


@pytest.mark.parametrize(("lower", "higher"), [
    ("2.0.0.dev0", "2.0b1"), ("2.0b1", "2.0"), ("2.0.0.dev0", "2.0"), ("1.0.0", "1.0.post1"),
    ("1.0.dev1", "1.0c1"), ("1.0c1", "1.0"), ("1.0rc1", "1.0+local"), ("1.0", "1.0+local"), ("9.9", "1!0.1"),
    ("1.0a1", "1.0b1"), ("1.0alpha2", "1.0beta1"), ("1.0.post1.dev1", "1.0.post1"), ("1.0a1.dev1", "1.0a1"),
    ("1.9", "1.10"), ("unknown", "0.0.1"), ("1.0-foo", "0.1"),
])
def test_version_order_follows_pep_440(lower, higher):
    assert version_key(lower) < version_key(higher)


def test_equal_versions_in_pep_440_have_equal_keys():
    assert version_key("1.0") == version_key("1.0.0") == version_key("v1.0.0")
    assert version_key("1.0.post1") == version_key("1.0-1") == version_key("1.0.r1")
    assert version_key("1.0rc1") == version_key("1.0c1") == version_key("1.0.pre1")


def test_route_rejects_what_autoping_rejects():
    with pytest.raises(CollectorError, match="user name or password"):
        Route("http://user@example.invalid/t/{package}")
    with pytest.raises(CollectorError, match="host and port must be written out"):
        Route("http://{package}/t")
