"""A local ping collector: an HTTP server that stores every request in SQLite.

``scarf-autoping collect`` runs it so that authors can see what their package sends
(and ``scarf-autoping demo`` runs it in-process) without a Scarf account. Stdlib only.

* Any GET, POST or HEAD is answered ``200`` straight away; the request is handed to one
  writer thread that owns the SQLite connection, so concurrent clients never contend
  for the database and a ping that was answered is never lost: stopping the server
  drains the writer's queue before the database is closed, and a request that arrives
  once stopping has begun (or while the bounded queue is full) is answered ``503``.
* The writer never waits on anything but the disk: ``on_ping`` callbacks must not block
  (the CLI hands its lines to a printer thread that drops them when stdout is stuck).
* Each connection has a per-read socket timeout and an overall deadline to deliver its
  request, and at most ``max_connections`` are served at once (more are answered 503),
  so slow or silent clients cost a bounded number of threads for a bounded time.
* Oversized or malformed requests are refused (400, 411, 413, 414, 431) and the server
  keeps running.
* The address is bound first, then the database is opened, checked (a file that is not a
  collector database is refused) and written once, so a read-only location is a clear
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
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from ..template import Expression, TemplateError, check_url, parse
from .report import printable

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    import io
    from collections.abc import Callable
    from typing import Any

#: Bump when the table changes; written to ``PRAGMA user_version`` at every start.
SCHEMA_VERSION = 1

#: Request bodies larger than this are refused with 413 (pings have none; events are small).
MAX_BODY = 64 * 1024

#: Seconds a connection may stay silent before it is closed.
SOCKET_TIMEOUT = 5.0

#: Seconds a connection has, in all, to deliver its request line, headers and body.
REQUEST_DEADLINE = 10.0

#: Connections served at once; more are answered 503 and closed straight away.
MAX_CONNECTIONS = 256

#: Requests waiting for the writer; more are answered 503 (caps memory when the disk is slow).
MAX_QUEUE = 10000

_BUSY = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\nRetry-After: 1\r\n\r\n"

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
            parts = parse(path_template)
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

    def _expression_pattern(self, expr: Expression) -> str:
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
    """``http://host:port/t/{a}`` -> ``/t/{a}``; a template that is already a path is kept.

    A full URL is checked by ``autoping``'s own URL rule (literal host, no user info), so
    any template the library accepts is accepted here and nothing else.
    """
    head = template.split("{", 1)[0].lower()
    for scheme in ("https://", "http://"):
        if head.startswith(scheme):
            try:
                check_url(template)
            except TemplateError as exc:
                raise CollectorError(f"bad --route template: {str(exc).replace('autoping: ', '', 1)}") from None
            rest = template[len(scheme):]
            cut = min((i for i in (rest.find(c) for c in "/?#{") if i >= 0), default=len(rest))
            path = rest[cut:]
            return path if path.startswith("/") else "/" + path
    return template if template.startswith(("/", "{")) else "/" + template


# --------------------------------------------------------------------------
# Storage: one writer thread owns the connection
# --------------------------------------------------------------------------


class Store:
    """The SQLite database of received pings, written by one background thread.

    The database is created and written (its schema version) in the constructor, so an
    unwritable location raises :class:`CollectorError` at once; so does an existing
    SQLite file that is not a collector database (other tables, another ``pings`` table,
    another schema version), which is never modified. ``add`` only queues (and refuses
    when the queue is full or closing has begun); ``close`` waits until everything queued
    is committed.
    """

    def __init__(self, path: str | Path, on_stored: Callable[[dict[str, object]], None] | None = None,
                 max_queue: int = MAX_QUEUE) -> None:
        self.path = Path(path)
        self._on_stored = on_stored
        self._queue: queue.Queue[dict[str, object] | None] = queue.Queue(max_queue + 1)  # +1: the stop marker
        self._max_queue = max_queue
        self._lock = threading.Lock()
        self._closing = False
        self.stored = 0
        try:
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        except (sqlite3.Error, OSError) as exc:
            raise CollectorError(f"cannot write the database {str(self.path)!r}: {exc}") from None
        try:
            self._check_foreign()
            self._db.execute(_SCHEMA)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except (sqlite3.Error, OSError) as exc:
            self._db.close()
            raise CollectorError(f"cannot write the database {str(self.path)!r}: {exc}") from None
        except CollectorError:
            self._db.close()
            raise
        self._thread = threading.Thread(target=self._run, name="collector-writer", daemon=True)
        self._thread.start()

    def _check_foreign(self) -> None:
        """Refuse a database that belongs to something else rather than write into it."""
        tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        problem = None
        if tables - {"pings", "sqlite_sequence"}:
            problem = f"it has other tables ({', '.join(sorted(tables - {'pings', 'sqlite_sequence'}))})"
        elif version not in (0, SCHEMA_VERSION):
            problem = f"its schema version is {version}, not {SCHEMA_VERSION}"
        elif "pings" in tables:
            columns = tuple(row[1] for row in self._db.execute("PRAGMA table_info(pings)"))
            if columns != ("id", *_COLUMNS):
                problem = "its pings table has other columns"
        if problem:
            raise CollectorError(f"{str(self.path)!r} is not a scarf-autoping collector database: {problem}; "
                                 "pass another --db")

    def add(self, record: dict[str, object]) -> bool:
        """Queue one request for writing (never blocks). False when it was not queued:
        the queue is full or the store is closing (the request must then be refused)."""
        with self._lock:
            if self._closing or self._queue.qsize() >= self._max_queue:
                return False
            self._queue.put_nowait(record)
            return True

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
        """Refuse further records, write everything still queued, then close the database."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
            self._queue.put_nowait(None)  # room is kept for it: max_queue + 1
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

    def __init__(self, raw: io.BufferedIOBase) -> None:
        self._raw = raw
        self.last_line = b""

    def readline(self, limit: int = -1) -> bytes:
        self.last_line = self._raw.readline(limit)
        return self.last_line

    def __getattr__(self, name: str) -> object:
        return getattr(self._raw, name)


def _make_handler(collector: Collector) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = collector.socket_timeout  # per read: a silent client is dropped
        server_version = "scarf-autoping-collector"
        sys_version = ""

        tracker: _LineTracker

        def setup(self) -> None:
            super().setup()
            self.tracker = _LineTracker(self.rfile)
            self.rfile = self.tracker  # type: ignore[assignment]  # duck-typed: it has what http.server reads

        def log_message(self, *args: object) -> None:
            pass  # one line per stored ping is printed by the collector instead

        def _refuse(self, code: int, message: str) -> None:
            self.close_connection = True
            self.send_error(code, message)

        def _handle(self) -> None:
            self.close_connection = True
            if self.tracker.last_line not in (b"\r\n", b"\n"):
                return  # the headers never ended: the client went away, nothing to acknowledge
            if self.headers.get("Transfer-Encoding"):
                self._refuse(411, "chunked request bodies are not accepted; send Content-Length")
                return
            lengths = self.headers.get_all("Content-Length") or ["0"]
            raw_length = lengths[0].strip()
            if len(lengths) != 1 or not _LENGTH.fullmatch(raw_length):
                self._refuse(400, "bad Content-Length")
                return
            length = int(raw_length)
            if length > collector.max_body:
                self._refuse(413, f"request body over {collector.max_body} bytes")
                return
            body = self.rfile.read(length) if length else b""
            if len(body) != length:
                return  # the client went away (or timed out) mid-body: nothing was acknowledged
            if not collector._receive(self, body):
                self._refuse(503, "the collector is busy or stopping; try again")
                return
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.send_header("Connection", "close")
            self.end_headers()

        do_GET = do_POST = do_HEAD = _handle

    return Handler


_LENGTH = re.compile(r"[0-9]{1,10}")


class _Server(http.server.ThreadingHTTPServer):
    """A threading server that caps concurrent connections and enforces a per-request deadline.

    ``serve_forever`` calls :meth:`service_actions` every poll interval; there, a connection
    past its deadline has its socket shut down, which ends the handler's blocked read.
    """

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    max_connections = MAX_CONNECTIONS
    request_deadline = REQUEST_DEADLINE

    def server_activate(self) -> None:
        self._active: dict[socket.socket, float] = {}
        self._active_lock = threading.Lock()
        super().server_activate()

    @property
    def active_connections(self) -> int:
        """How many connections are being served now."""
        with self._active_lock:
            return len(self._active)

    # A TCP server's request is always a socket (socketserver's type allows a UDP one's tuple).
    def process_request(self, request: socket.socket, client_address: Any) -> None:  # type: ignore[override]
        with self._active_lock:
            busy = len(self._active) >= self.max_connections
            if not busy:
                self._active[request] = time.monotonic() + self.request_deadline
        if busy:
            try:
                request.setblocking(False)
                request.send(_BUSY)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._forget(request)
            raise

    def process_request_thread(self, request: socket.socket, client_address: Any) -> None:  # type: ignore[override]
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._forget(request)

    def _forget(self, request: socket.socket) -> None:
        with self._active_lock:
            self._active.pop(request, None)

    def service_actions(self) -> None:
        now = time.monotonic()
        with self._active_lock:
            late = [sock for sock, deadline in self._active.items() if deadline < now]
            for sock in late:
                self._active[sock] = float("inf")  # shut down once
        for sock in late:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that resets or times out is not the server's problem


class _Server6(_Server):
    address_family = socket.AF_INET6


class Collector:
    """The collector server: ``start()`` serves from a thread, ``stop()`` drains and closes.

    Args:
        host, port: where to listen (port 0 picks a free one; see :attr:`url`). An IPv6
            address (``::1``) is served over IPv6.
        db: the SQLite file (created when missing; created only once the address is bound).
        route: an optional route template whose variables are parsed from each request.
        keep_ip: store the client's IP address (off by default).
        on_ping: called on the writer thread with each record once it is committed; it
            must not block (the CLI queues a line for a printer thread).
        socket_timeout: seconds one read may wait; request_deadline: seconds a connection
            has in all; max_connections: connections served at once; max_queue: requests
            waiting for the writer. Past these limits a client is cut off or answered 503.
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
        request_deadline: float = REQUEST_DEADLINE,
        max_connections: int = MAX_CONNECTIONS,
        max_queue: int = MAX_QUEUE,
    ) -> None:
        self.route = Route(route) if route else None
        self.keep_ip = keep_ip
        self.socket_timeout = socket_timeout
        self.max_body = max_body
        server_class = _Server6 if ":" in host else _Server
        try:
            self.server = server_class((host, port), _make_handler(self))
        except (OSError, OverflowError) as exc:
            raise CollectorError(f"cannot listen on {host}:{port}: {exc}") from None
        self.server.max_connections = max_connections
        self.server.request_deadline = request_deadline
        try:
            self.store = Store(db, on_ping, max_queue)
        except CollectorError:
            self.server.server_close()
            raise
        bound_host, bound_port = self.server.server_address[:2]
        self.host = str(bound_host)
        self.port = int(bound_port)
        shown = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{shown}:{self.port}"
        self._thread: threading.Thread | None = None

    def _receive(self, handler: http.server.BaseHTTPRequestHandler, body: bytes) -> bool:
        """Queue the request for storing; False when it was not (busy or stopping)."""
        split = urlsplit(handler.path)
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        variables = self.route.match(split.path, query) if self.route else None
        return self.store.add({
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
        """Stop accepting, then commit every ping that was answered 200, then close the database.

        A handler still running once the store is closing answers 503, so no request gets
        a 200 without being stored.
        """
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join()
            self._thread = None
        self.server.server_close()
        self.store.close()


def describe(record: dict[str, object]) -> str:
    """One line for a stored ping: time, method, target and the parsed variables.

    Every value comes from the client, so control characters (ESC, newlines) are shown
    escaped (``\\x1b``): a request cannot colour the terminal or forge another line.
    """
    target = str(record["path"]) + (f"?{record['query']}" if record.get("query") else "")
    line = f"{record['received_at']}  {record['method']} {target}"
    if record.get("variables"):
        try:
            values = json.loads(str(record["variables"]))
        except ValueError:
            values = {}
        if isinstance(values, dict):
            line += "  " + " ".join(f"{k}={v}" for k, v in values.items())
    return printable(line)


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host == "localhost":
        return True
    try:
        return socket.inet_pton(socket.AF_INET, host)[0] == 127
    except OSError:
        return host == "::1"
