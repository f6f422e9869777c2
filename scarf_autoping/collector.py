"""A local ping collector: an HTTP server that stores every request in SQLite.

``scarf-autoping collect`` runs it so that authors can see what their package sends
(and ``scarf-autoping demo`` runs it in-process) without a Scarf account. Stdlib only.

* Any GET, POST or HEAD is answered ``200`` straight away; the request is handed to one
  writer thread that owns the SQLite connection, so concurrent clients never contend
  for the database and a ping that was answered is never lost: stopping the server
  drains the writer's queue before the database is closed.
* Each connection has a socket timeout, so a client that connects and sends nothing
  ties up only its own thread, and only for a few seconds.
* Oversized or malformed requests are refused (400, 411, 413, 414, 431) and the server
  keeps running.
* The database is opened and written once at start, so a read-only location is a clear
  error before the first ping, never a surprise after it.
* The client's IP address is not stored unless asked for (``keep_ip``).
"""

from __future__ import annotations

import http.server
import json
import queue
import re
import socket
import sqlite3
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from .template import TemplateError, _Expression, _parse

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable

#: Bump when the table changes; written to ``PRAGMA user_version`` at every start.
SCHEMA_VERSION = 1

#: Request bodies larger than this are refused with 413 (pings have none; events are small).
MAX_BODY = 64 * 1024

#: Seconds a connection may stay silent before it is closed.
SOCKET_TIMEOUT = 5.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pings (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at TEXT NOT NULL,
    method      TEXT NOT NULL,
    path        TEXT NOT NULL,
    query       TEXT NOT NULL,
    variables   TEXT,
    user_agent  TEXT,
    client_ip   TEXT,
    body        TEXT
)
"""

_COLUMNS = ("received_at", "method", "path", "query", "variables", "user_agent", "client_ip", "body")


class CollectorError(Exception):
    """The collector cannot start (database not writable, address in use, bad route)."""


# --------------------------------------------------------------------------
# Route templates: turn a request path back into the variables that built it
# --------------------------------------------------------------------------


class Route:
    """Match request targets against an RFC 6570 route template and recover its variables.

    The template is parsed by :mod:`scarf_autoping.template` (so the same templates that
    ``autoping`` accepts are accepted here); its scheme and host, if any, are ignored.
    Path expressions (``{var}``, ``{+var}``, ``{/var}``, ``{.var}``, ``{;var}``) are
    matched against the path; ``{?var}`` and ``{&var}`` are read from the query string.
    """

    def __init__(self, template: str) -> None:
        self.template = template
        path_template = _strip_origin(template)
        try:
            parts = _parse(path_template)
        except TemplateError as exc:
            raise CollectorError(f"bad --route template: {exc}") from None
        pattern: list[str] = []
        self._groups: dict[str, str] = {}
        self._query_names: list[str] = []
        in_query = False
        for part in parts:
            if isinstance(part, str):
                if in_query:
                    continue
                head, mark, _ = part.partition("?")
                pattern.append(re.escape(head))
                in_query = bool(mark)
                continue
            if part.operator.first in ("?", "&"):
                in_query = True
                self._query_names.extend(spec.name for spec in part.varspecs)
                continue
            if in_query or part.operator.first == "#":
                continue
            pattern.append(self._expression_pattern(part))
        # A trailing slash the template does not have is tolerated (``/t/pkg/1.0/``).
        self._regex = re.compile("^" + "".join(pattern) + "/?$")

    def _group(self, name: str) -> str:
        group = f"g{len(self._groups)}"
        self._groups[group] = name
        return group

    def _expression_pattern(self, expr: _Expression) -> str:
        op = expr.operator
        if op.first == "/":
            return "".join(f"(?:/(?P<{self._group(s.name)}>[^/?#]*))?" for s in expr.varspecs)
        if op.first == ".":
            return "".join(rf"(?:\.(?P<{self._group(s.name)}>[^/?#.]*))?" for s in expr.varspecs)
        if op.first == ";":
            return "".join(
                f"(?:;{re.escape(s.name)}(?:=(?P<{self._group(s.name)}>[^/?#;]*))?)?" for s in expr.varspecs
            )
        value = "[^?#]*?" if op.allow_reserved else "[^/?#,]*?"
        groups = [f"(?P<{self._group(s.name)}>{value})" for s in expr.varspecs]
        return groups[0] + "".join(f"(?:,{g})?" for g in groups[1:])

    def match(self, path: str, query: dict[str, str]) -> dict[str, str] | None:
        """The route's variables for this request, or None when the path does not fit the route."""
        found = self._regex.match(path)
        if found is None:
            return None
        values: dict[str, str] = {}
        for group, raw in found.groupdict().items():
            name = self._groups[group]
            if raw is not None and name not in values:
                values[name] = unquote(raw)
        for name in self._query_names:
            if name in query and name not in values:
                values[name] = query[name]
        return values


def _strip_origin(template: str) -> str:
    """``http://host:port/t/{a}`` -> ``/t/{a}``; a template that is already a path is kept."""
    head = template.split("{", 1)[0].lower()
    for scheme in ("https://", "http://"):
        if head.startswith(scheme):
            rest = template[len(scheme):]
            cut = min((i for i in (rest.find(c) for c in "/?{") if i >= 0), default=len(rest))
            if rest[cut:cut + 1] == "{":
                raise CollectorError(f"bad --route template: the host must be literal in {template!r}")
            path = rest[cut:]
            return path if path.startswith("/") else "/" + path
    return template if template.startswith(("/", "{")) else "/" + template


# --------------------------------------------------------------------------
# Storage: one writer thread owns the connection
# --------------------------------------------------------------------------


class Store:
    """The SQLite database of received pings, written by one background thread.

    The database is created and written (its schema version) in the constructor, so an
    unwritable location raises :class:`CollectorError` at once. ``add`` only queues;
    ``close`` waits until everything queued is committed.
    """

    def __init__(self, path: str | Path, on_stored: Callable[[dict[str, object]], None] | None = None) -> None:
        self.path = Path(path)
        self._on_stored = on_stored
        self._queue: queue.Queue[dict[str, object] | None] = queue.Queue()
        self.stored = 0
        try:
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
            self._db.execute(_SCHEMA)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except (sqlite3.Error, OSError) as exc:
            raise CollectorError(f"cannot write the database {str(self.path)!r}: {exc}") from None
        self._thread = threading.Thread(target=self._run, name="collector-writer", daemon=True)
        self._thread.start()

    def add(self, record: dict[str, object]) -> None:
        """Queue one request for writing (never blocks on the disk)."""
        self._queue.put(record)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            batch = [first]
            while True:  # drain whatever else is waiting: one commit per burst
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            records = [r for r in batch if r is not None]
            if records:
                self._write(records)
            if len(records) != len(batch):
                return

    def _write(self, records: list[dict[str, object]]) -> None:
        rows = [tuple(r.get(c) for c in _COLUMNS) for r in records]
        try:
            with self._db:
                self._db.execute("BEGIN")
                self._db.executemany(
                    f"INSERT INTO pings ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})", rows
                )
        except sqlite3.Error as exc:
            print(f"scarf-autoping collect: could not store {len(rows)} ping(s): {exc}", file=sys.stderr, flush=True)
            return
        self.stored += len(rows)
        if self._on_stored is not None:
            for record in records:
                try:
                    self._on_stored(record)
                except Exception:  # noqa: BLE001 - a closed stdout must not stop the storing
                    pass

    def close(self) -> None:
        """Write everything still queued, then close the database."""
        self._queue.put(None)
        self._thread.join()
        self._db.close()


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _LineTracker:
    """Wraps the request stream to remember the last line read, so that headers cut off by
    the client closing the connection (``http.server`` takes EOF as their end) are noticed."""

    def __init__(self, raw: object) -> None:
        self._raw = raw
        self.last_line = b""

    def readline(self, limit: int = -1) -> bytes:
        self.last_line = self._raw.readline(limit)  # type: ignore[attr-defined]
        return self.last_line

    def __getattr__(self, name: str) -> object:
        return getattr(self._raw, name)


def _make_handler(collector: Collector) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = collector.socket_timeout  # per-connection: a silent client is dropped
        server_version = "scarf-autoping-collector"
        sys_version = ""

        def setup(self) -> None:
            super().setup()
            self.rfile = _LineTracker(self.rfile)  # type: ignore[assignment]

        def log_message(self, *args: object) -> None:
            pass  # one line per stored ping is printed by the collector instead

        def _refuse(self, code: int, message: str) -> None:
            self.close_connection = True
            self.send_error(code, message)

        def _handle(self) -> None:
            self.close_connection = True
            if self.rfile.last_line not in (b"\r\n", b"\n"):  # type: ignore[attr-defined]
                return  # the headers never ended: the client went away, nothing to acknowledge
            if self.headers.get("Transfer-Encoding"):
                self._refuse(411, "chunked request bodies are not accepted; send Content-Length")
                return
            raw_length = self.headers.get("Content-Length") or "0"
            if not raw_length.strip().isdigit():
                self._refuse(400, "bad Content-Length")
                return
            length = int(raw_length)
            if length > collector.max_body:
                self._refuse(413, f"request body over {collector.max_body} bytes")
                return
            body = self.rfile.read(length) if length else b""
            if len(body) != length:
                return  # the client went away (or timed out) mid-body: nothing was acknowledged
            collector._receive(self, body)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.send_header("Connection", "close")
            self.end_headers()

        do_GET = do_POST = do_HEAD = _handle

    return Handler


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that resets or times out is not the server's problem


class Collector:
    """The collector server: ``start()`` serves from a thread, ``stop()`` drains and closes.

    Args:
        host, port: where to listen (port 0 picks a free one; see :attr:`url`).
        db: the SQLite file (created when missing).
        route: an optional route template whose variables are parsed from each request.
        keep_ip: store the client's IP address (off by default).
        on_ping: called with each record once it is committed (the CLI prints a line).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        db: str | Path = "pings.sqlite",
        *,
        route: str | None = None,
        keep_ip: bool = False,
        on_ping: Callable[[dict[str, object]], None] | None = None,
        socket_timeout: float = SOCKET_TIMEOUT,
        max_body: int = MAX_BODY,
    ) -> None:
        self.route = Route(route) if route else None
        self.keep_ip = keep_ip
        self.socket_timeout = socket_timeout
        self.max_body = max_body
        self.store = Store(db, on_ping)
        try:
            self.server = _Server((host, port), _make_handler(self))
        except (OSError, OverflowError) as exc:
            self.store.close()
            raise CollectorError(f"cannot listen on {host}:{port}: {exc}") from None
        bound_host, bound_port = self.server.server_address[:2]
        self.host = str(bound_host)
        self.port = int(bound_port)
        shown = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{shown}:{self.port}"
        self._thread: threading.Thread | None = None

    def _receive(self, handler: http.server.BaseHTTPRequestHandler, body: bytes) -> None:
        split = urlsplit(handler.path)
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        variables = self.route.match(split.path, query) if self.route else None
        self.store.add({
            "received_at": _now(),
            "method": handler.command,
            "path": split.path,
            "query": split.query,
            "variables": json.dumps(variables) if variables is not None else None,
            "user_agent": handler.headers.get("User-Agent"),
            "client_ip": handler.client_address[0] if self.keep_ip else None,
            "body": body.decode("utf-8", "replace") if body else None,
        })

    def start(self) -> Collector:
        """Serve from a daemon thread; return self."""
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, name="collector", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, then commit every ping that was answered, then close the database."""
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join()
            self._thread = None
        self.server.server_close()
        self.store.close()


def describe(record: dict[str, object]) -> str:
    """One line for a stored ping: time, method, target and the parsed variables."""
    target = str(record["path"]) + (f"?{record['query']}" if record.get("query") else "")
    line = f"{record['received_at']}  {record['method']} {target}"
    if record.get("variables"):
        values = json.loads(str(record["variables"]))
        line += "  " + " ".join(f"{k}={v}" for k, v in values.items())
    return line


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host == "localhost":
        return True
    try:
        return socket.inet_pton(socket.AF_INET, host)[0] == 127
    except OSError:
        return host == "::1"
