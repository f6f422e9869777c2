"""The one loopback HTTP server of the tests and the benchmarks: real sockets on 127.0.0.1.

:class:`Collector` accepts connections in a thread, handles each connection in a thread of
its own, speaks TLS when given a context, keeps connections alive (HTTP/1.1), records every
request (method, target, path, query, headers in order, body, the client's port, the head
as it arrived, when it arrived) and answers as its ``mode`` says: politely, late, with an
error, never, or misbehaving at the byte level. ``respond`` hands the raw connection to a
function instead, for answers no mode gives.

The benchmarks (``python benchmarks/x.py``) import this file too (``benchmarks/_common.py``
puts ``tests/`` on ``sys.path``), so it needs nothing but the standard library (``trustme``
is imported by :func:`tls_context` only) and never imports the library under test.
"""

from __future__ import annotations

import http
import socket
import struct
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable, Iterable

#: Seconds between two bytes when a server trickles.
TRICKLE = 0.5
#: Seconds a hanging or stalling server holds a request (unless closed first): longer than
#: any client under test waits.
HOLD = 120.0


class BadRequest(ValueError):
    """A request line that is not HTTP (a TLS hello sent to a plain port): answered with a 400."""


class Headers(dict):
    """Request headers, looked up by any case: stored under their lower-case names."""

    def __init__(self, pairs: Iterable[tuple[str, str]] | dict[str, str] = ()) -> None:
        items = pairs.items() if isinstance(pairs, dict) else pairs
        super().__init__((k.lower(), v) for k, v in items)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return super().__contains__(key.lower() if isinstance(key, str) else key)

    def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
        return super().get(key.lower(), default)

    def pop(self, key: str, *default: object) -> object:  # type: ignore[override]
        return super().pop(key.lower(), *default)


class Request:
    """One request as it arrived.

    ``target`` is the request target as sent (absolute for a proxy request), ``path`` and
    ``query`` (first value of each parameter) come from it; ``headers`` are looked up by
    any case (:class:`Headers`), ``header_list`` keeps their order and spelling; ``peer``
    is the client's port (which connection it came on); ``head`` the raw request head;
    ``at`` is ``time.monotonic()`` and ``perf`` ``time.perf_counter()`` at its arrival
    (before any answer).
    """

    def __init__(self, method: str, target: str, headers: dict[str, str] | list[tuple[str, str]], body: bytes,
                 peer: int = 0, head: bytes = b"") -> None:
        self.method = method
        self.target = target
        split = urlsplit(target)
        self.path = split.path
        self.query = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        self.raw_query = split.query
        self.header_list = list(headers.items()) if isinstance(headers, dict) else list(headers)
        self.headers = Headers(self.header_list)
        self.body = body
        self.peer = peer
        self.head = head
        self.at = time.monotonic()
        self.perf = time.perf_counter()

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.target} from :{self.peer}>"


class Collector:
    """A threaded HTTP/1.1 server on 127.0.0.1 that records every request.

    ``mode`` decides each answer (connections are kept alive unless said otherwise):

    * ``ok``: ``204``; ``status:<code>``: that status; ``redirect:<url>``: a ``302`` there;
      ``set-cookie``: a ``200`` with a cookie; ``close``: a ``204``, then the connection closes;
    * ``delay:<seconds>``: a ``204`` after that long; ``hang`` or ``stall``: never an answer,
      the connection held (until :meth:`close`);
    * ``sequence:503,429/2,204``: one status per request in turn, the last one repeated
      (``429/2`` adds ``Retry-After: 2``);
    * ``body:<bytes>``: a ``200`` announcing that many bytes and streaming them;
    * ``trickle``: the head one byte every :data:`TRICKLE` seconds, for ever;
      ``trickle-ok:<seconds>``: a complete ``204`` head, one byte every that many seconds;
    * ``reset``: read the request, then reset the connection; ``hold-idle``: answer, then
      drop the connection 0.1 s later while the client keeps it;
    * ``tls-trickle``: before any HTTP, answer the ClientHello with a TLS record trickled a
      byte at a time.

    ``respond(conn, stop)``, when given, writes every answer instead (``stop``: an event set
    at :meth:`close`). ``ssl_context``: TLS (handshakes the client refused are counted in
    ``handshake_failures``). ``port``: listen there (a port that refused until now).
    ``timeout``: seconds a connection may stay silent. ``pages``: path -> HTML served with a
    ``200`` to a ``GET`` of that path (before the mode is asked); it may be filled in later.
    """

    def __init__(self, mode: str = "ok", ssl_context: object = None, *, port: int = 0,
                 respond: Callable[[socket.socket, threading.Event], object] | None = None,
                 timeout: float = 30.0, pages: dict[str, bytes] | None = None) -> None:
        self.mode = mode
        self.pages = {} if pages is None else pages
        self.ssl_context = ssl_context
        self.respond = respond
        self.timeout = timeout
        self._records: list[Request] = []
        self.peers: list[int] = []  # the client port of every accepted connection
        self.handshake_failures = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", port))
        self._sock.listen(128)
        self._sock.settimeout(0.05)
        self.port = self._sock.getsockname()[1]
        self.url = f"{'https' if ssl_context is not None else 'http'}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def behaviour(self) -> str:
        """The mode, under the name the fault tests gave it."""
        return self.mode

    @property
    def requests(self) -> list[Request]:
        """Every request so far, in the order they arrived (the live list)."""
        return self._records

    @property
    def arrivals(self) -> list[Request]:
        """The requests so far (the name the event tests use)."""
        return self._records

    @property
    def connections(self) -> int:
        """How many connections were accepted so far."""
        with self._lock:
            return len(self.peers)

    # --- serving ---------------------------------------------------------------------------

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, addr = self._sock.accept()
            except (socket.timeout, OSError):
                continue
            with self._lock:
                self.peers.append(addr[1])
                self._conns.append(conn)
            threading.Thread(target=self._handle, args=(conn, addr[1]), daemon=True).start()

    def _handle(self, conn: socket.socket, peer: int) -> None:
        try:
            conn.settimeout(self.timeout)
            if self.mode == "tls-trickle":
                conn.recv(65536)  # the ClientHello
                conn.sendall(b"\x16\x03\x03\x40\x00")  # a handshake record of 16 KiB, never complete
                while not self._stop.wait(TRICKLE):
                    conn.sendall(b"\x00")
                return
            if self.ssl_context is not None:
                try:
                    conn = self.ssl_context.wrap_socket(conn, server_side=True)  # type: ignore[attr-defined]
                except OSError:
                    with self._lock:
                        self.handshake_failures += 1
                    return
            reader = conn.makefile("rb")
            while not self._stop.is_set():
                try:
                    request = self._read_request(reader, peer)
                except BadRequest:
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    return
                if request is None:
                    return
                if self.respond is not None:
                    self.respond(conn, self._stop)
                    return
                if not self._answer(conn, request):
                    return
        except (OSError, ValueError):
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def _read_request(self, reader: object, peer: int) -> Request | None:
        """Read one request (head and ``Content-Length`` body) and record it; None at EOF."""
        line = reader.readline(65537)  # type: ignore[attr-defined]
        if not line:
            return None
        head = line
        words = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
        if len(words) != 3 or not words[2].startswith("HTTP/"):
            raise BadRequest(line[:40])
        method, target, _ = words
        headers: list[tuple[str, str]] = []
        while True:
            raw = reader.readline(65537)  # type: ignore[attr-defined]
            head += raw
            text = raw.decode("latin-1").rstrip("\r\n")
            if not text:
                break
            name, _, value = text.partition(":")
            headers.append((name.strip(), value.strip()))
        length = int(next((v for k, v in headers if k.lower() == "content-length"), "0") or 0)
        body = reader.read(length) if length and method != "CONNECT" else b""  # type: ignore[attr-defined]
        request = Request(method, target, headers, body, peer, head)
        with self._lock:
            self._records.append(request)
        return request

    def _answer(self, conn: socket.socket, request: Request) -> bool:
        """Answer one request as the mode says; False when the connection must end."""
        page = self.pages.get(request.path) if request.method == "GET" else None
        if page is not None:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: %d\r\n\r\n%s"
                         % (len(page), page))
            return True
        kind, _, arg = self.mode.partition(":")
        if kind == "trickle-ok":  # a complete, valid 204 head, one byte every <arg> seconds
            for byte in b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n":
                if self._stop.wait(float(arg)):
                    return False
                conn.sendall(bytes([byte]))
            return True
        if kind == "trickle":
            for byte in b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"y" * 10000:
                if self._stop.wait(TRICKLE):
                    return False
                conn.sendall(bytes([byte]))
            return False
        if kind in ("hang", "stall"):
            self._stop.wait(HOLD)
            return False
        if kind == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        if kind == "delay":
            if self._stop.wait(float(arg)):
                return False
            kind = "ok"
        extra = b""
        if kind == "sequence":
            steps = arg.split(",")
            with self._lock:
                step = steps[min(len(self._records), len(steps)) - 1]
            code_text, _, after = step.partition("/")
            code = int(code_text)
            if after:
                extra = b"Retry-After: %s\r\n" % after.encode("ascii")
        elif kind == "status":
            code = int(arg)
        elif kind == "redirect":
            code = 302
            extra = b"Location: %s\r\n" % arg.encode("latin-1")
        elif kind == "set-cookie":
            code = 200
            extra = b"Set-Cookie: session=abc; Path=/\r\n"
        elif kind == "body":
            return self._stream_body(conn, int(arg))
        else:
            code = 204
        if kind == "close":
            extra += b"Connection: close\r\n"
        try:
            reason = http.HTTPStatus(code).phrase.encode("latin-1")
        except ValueError:
            reason = b"Other"
        conn.sendall(b"HTTP/1.1 %d %s\r\nContent-Length: 0\r\n%s\r\n" % (code, reason, extra))
        if kind == "hold-idle":
            self._stop.wait(0.1)
            return False
        return kind != "close"

    def _stream_body(self, conn: socket.socket, size: int) -> bool:
        """A ``200`` announcing ``size`` bytes, streamed in 64 KiB writes until sent or stopped."""
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        chunk = b"x" * 65536
        sent = 0
        while sent < size and not self._stop.is_set():
            conn.sendall(chunk[: min(len(chunk), size - sent)])
            sent += len(chunk)
        return sent >= size

    # --- waiting for requests -------------------------------------------------------------

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Request]:
        """Wait until at least ``count`` requests arrived (or ``timeout``); return all of them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self._records) >= count:
                    break
            time.sleep(0.01)
        with self._lock:
            return list(self.requests)

    def expect(self, count: int, timeout: float = 10.0, quiet: float = 0.3) -> list[Request]:
        """Wait for ``count`` requests, then ``quiet`` seconds for stragglers; return them all.

        A short-lived host hands its ping to a detached sender as it exits, so the request
        arrives a moment after the host has gone (longer on a loaded machine).
        """
        self.wait_for(count, timeout)
        return self.settle(quiet)

    def settle(self, quiet: float = 0.3) -> list[Request]:
        """Wait ``quiet`` seconds for stragglers, then return every request so far."""
        time.sleep(quiet)
        with self._lock:
            return list(self.requests)

    def close(self) -> None:
        """Stop accepting, end every held answer and close every connection."""
        self._stop.set()
        self._thread.join(2)
        self._sock.close()
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            try:
                conn.close()
            except OSError:
                pass


class RawServer(Collector):
    """The same server seen as bare TCP: ``requests``, :meth:`wait_for` and :meth:`settle`
    give the request heads as bytes (what "reached the server" means when the answer is not HTTP's)."""

    def __init__(self, respond: Callable[[socket.socket, threading.Event], object] | None = None,
                 ssl_context: object = None) -> None:
        super().__init__("ok" if respond is None else "respond", ssl_context,
                         respond=respond or _no_content_and_close, timeout=5.0)

    @property
    def requests(self) -> list[bytes]:  # type: ignore[override]
        """The head of every request so far, as it arrived."""
        return [request.head for request in self._records]


def _no_content_and_close(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


def endless_chunked_body(conn: socket.socket, stop: threading.Event) -> None:
    """A ``respond`` for :class:`RawServer`: a 200 whose chunked body never ends (until stopped)."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n")
    chunk = b"%x\r\n%s\r\n" % (65536, b"x" * 65536)
    while not stop.is_set():
        conn.sendall(chunk)


def free_port() -> int:
    """A loopback port that nothing listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tls_context(directory: Path | str, host: str = "127.0.0.1") -> tuple[object, Path]:
    """A server-side TLS context for ``host`` signed by a fresh throwaway CA (``trustme``),
    and the path of that CA's PEM certificate (trusted by nobody unless you pass it on)."""
    import ssl

    import trustme

    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(host).configure_cert(context)
    ca_pem = Path(directory) / "throwaway-ca.pem"
    ca.cert_pem.write_to_path(str(ca_pem))
    return context, ca_pem
