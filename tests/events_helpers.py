"""A recording HTTP/1.1 server on 127.0.0.1 for the event, send and conformance tests.

Unlike ``helpers.Collector`` (``http.server``), it keeps connections alive, records which
TCP connection (the client's port) every request came in on, speaks TLS when given a
context, and misbehaves on purpose at the byte level: it trickles its answer's head,
stalls, resets, trickles a TLS handshake. Everything is real sockets on loopback.
"""

from __future__ import annotations

import socket
import struct
import threading
import time

#: Seconds between two bytes when a server trickles.
TRICKLE = 0.5


class Arrival:
    """One request as it arrived: method, target, headers in order, body, and the client's port."""

    def __init__(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes, peer: int) -> None:
        self.method = method
        self.target = target
        self.header_list = headers
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body
        self.peer = peer
        self.at = time.monotonic()

    def __repr__(self) -> str:
        return f"<Arrival {self.method} {self.target} from :{self.peer}>"


class RecordingServer:
    """A threaded server; ``mode`` says how it answers each request.

    ``ok`` (``204``, keep-alive), ``status:<code>``, ``set-cookie`` (``200`` with a cookie),
    ``close`` (answer, then close the connection), ``trickle`` (the head one byte every
    :data:`TRICKLE` seconds, for ever), ``stall`` (never answer, hold the connection),
    ``reset`` (read the request, then reset the connection), ``tls-trickle`` (before any
    HTTP: answer the ClientHello with a TLS record trickled a byte at a time),
    ``hold-idle`` (answer, then drop the connection 0.1 s later while the client keeps it),
    ``trickle-ok:<seconds>`` (a complete ``204`` head, one byte every that many seconds).
    """

    def __init__(self, mode: str = "ok", ssl_context: object = None) -> None:
        self.mode = mode
        self.ssl_context = ssl_context
        self.arrivals: list[Arrival] = []
        self.peers: list[int] = []  # the client port of every accepted connection
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(128)
        self._sock.settimeout(0.05)
        self.port = self._sock.getsockname()[1]
        self.url = f"{'https' if ssl_context is not None else 'http'}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self.peers)

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
            conn.settimeout(30)
            if self.mode == "tls-trickle":
                conn.recv(65536)  # the ClientHello
                conn.sendall(b"\x16\x03\x03\x40\x00")  # a handshake record of 16 KiB, never complete
                while not self._stop.wait(TRICKLE):
                    conn.sendall(b"\x00")
                return
            if self.ssl_context is not None:
                conn = self.ssl_context.wrap_socket(conn, server_side=True)  # type: ignore[attr-defined]
            reader = conn.makefile("rb")
            while not self._stop.is_set():
                request = self._read_request(reader, peer)
                if request is None:
                    return
                if not self._answer(conn, request):
                    return
        except OSError:
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def _read_request(self, reader: object, peer: int) -> Arrival | None:
        line = reader.readline(65537)  # type: ignore[attr-defined]
        if not line:
            return None
        method, target, _ = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
        headers: list[tuple[str, str]] = []
        while True:
            raw = reader.readline(65537).decode("latin-1").rstrip("\r\n")  # type: ignore[attr-defined]
            if not raw:
                break
            name, _, value = raw.partition(":")
            headers.append((name.strip(), value.strip()))
        length = int(next((v for k, v in headers if k.lower() == "content-length"), "0") or 0)
        body = reader.read(length) if length and method != "CONNECT" else b""  # type: ignore[attr-defined]
        arrival = Arrival(method, target, headers, body, peer)
        with self._lock:
            self.arrivals.append(arrival)
        return arrival

    def _answer(self, conn: socket.socket, request: Arrival) -> bool:
        """Answer one request; False when the connection must end."""
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
        if kind == "stall":
            self._stop.wait(60)
            return False
        if kind == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        code = int(arg) if kind == "status" else 200 if kind == "set-cookie" else 204
        extra = b"Set-Cookie: session=abc; Path=/\r\n" if kind == "set-cookie" else b""
        closing = b"Connection: close\r\n" if kind == "close" else b""
        reason = b"OK" if code < 300 else b"Other"
        conn.sendall(b"HTTP/1.1 %d %s\r\nContent-Length: 0\r\n%s%s\r\n" % (code, reason, extra, closing))
        if kind == "hold-idle":
            self._stop.wait(0.1)
            return False
        return kind != "close"

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Arrival]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.arrivals) >= count:
                    break
            time.sleep(0.01)
        with self._lock:
            return list(self.arrivals)

    def settle(self, quiet: float = 0.3) -> list[Arrival]:
        time.sleep(quiet)
        with self._lock:
            return list(self.arrivals)

    def close(self) -> None:
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
