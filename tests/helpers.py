"""Test helpers: throwaway packages with real metadata, child interpreters with a
controlled environment, and a loopback HTTP collector with configurable misbehaviour.

Child processes never inherit the test runner's environment (CI sets ``CI=true``, a
developer may have ``DO_NOT_TRACK`` set): :func:`child_env` builds one from scratch.
"""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

#: Seconds to wait before concluding that *nothing* arrived from a short-lived child: longer
#: than a hand-over at exit takes (a detached sender starting and importing requests).
NOTHING_QUIET = 1.5

#: What a case needs of the platform, for the behaviour files that gather cases from
#: several suites (a file whose every case needs it says so in its ``pytestmark``).
needs_posix_spawn = pytest.mark.skipif(not hasattr(os, "posix_spawn"), reason="the detached sender needs posix_spawn")
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="Linux process semantics (/proc, fork, signals, PID namespaces, cgroups)")

#: Seconds a host run by :func:`run_host` may take before it counts as hung (each case
#: expects a few seconds).
HOST_HANG = 60.0

#: Variables every child keeps from the parent so the interpreter can start at all.
_KEEP = ("PATH", "SYSTEMROOT", "LANG", "LC_ALL", "TMPDIR", "TEMP", "TMP")


def child_env(site: Path | str | None = None, **extra: str) -> dict[str, str]:
    """A minimal environment: no CI, no opt-outs, no proxies, our site dir on PYTHONPATH."""
    env = {k: os.environ[k] for k in _KEEP if k in os.environ}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    if site is not None:
        env["PYTHONPATH"] = str(site)
    env.update(extra)
    return env


def make_package(
    site: Path,
    name: str,
    body: str = "",
    *,
    version: str | None = "1.2.3",
    dist_name: str | None = None,
) -> Path:
    """Write ``site/<name>/__init__.py`` (``body`` dedented) and, unless ``version`` is
    None, a real ``<dist>-<version>.dist-info`` with METADATA, RECORD and top_level.txt."""
    site.mkdir(parents=True, exist_ok=True)
    pkg = site / name
    pkg.mkdir(exist_ok=True)
    (pkg / "__init__.py").write_text(textwrap.dedent(body), encoding="utf-8")
    if version is not None:
        dist = dist_name or name
        info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir(exist_ok=True)
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n", encoding="utf-8"
        )
        (info / "top_level.txt").write_text(f"{name}\n", encoding="utf-8")
        (info / "RECORD").write_text(f"{name}/__init__.py,,\n", encoding="utf-8")
    return pkg


def autoping_package(site: Path, name: str, template: str, *, args: str = "", version: str | None = "1.2.3",
                     dist_name: str | None = None) -> Path:
    """A throwaway package whose ``__init__`` is the one ``autoping`` line."""
    call = f"autoping({(dist_name or name)!r}, {template!r}{', ' + args if args else ''})"
    return make_package(site, name, f"from scarf_autoping import autoping; PING = {call}\n",
                        version=version, dist_name=dist_name)


#: Makes the child look like an embedding program with no Python interpreter to be found
#: (as on Windows, in a frozen app, or inside an embedding binary with no python next to it).
NO_INTERPRETER = (
    "import sys\n"
    "sys.executable = '/nonexistent/bin/embedder'\n"
    "sys.exec_prefix = sys.base_exec_prefix = '/nonexistent'\n"
)

#: Templates of a ping in the path and in the query, for :func:`collector_template`.
PATH_T = "{base}/t/{package}/{version}/{os}/{python}/{arch}/{distro}"
QUERY_T = "{base}/q{?package,version,platform,python,arch,distro,ci}"


def collector_template(collector: object, shape: str) -> str:
    """``shape`` (:data:`PATH_T` or :data:`QUERY_T`) with the collector's URL as its base."""
    return shape.replace("{base}", collector.url)  # type: ignore[attr-defined]


class ChildResult:
    """What a child interpreter did: exit code, output and wall time in seconds."""

    def __init__(self, returncode: int, stdout: str, stderr: str, seconds: float) -> None:
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.seconds = seconds

    def __repr__(self) -> str:
        return f"<ChildResult rc={self.returncode} {self.seconds:.2f}s out={self.stdout!r} err={self.stderr!r}>"


def run_child(code: str, env: dict[str, str], *, args: tuple[str, ...] = (), timeout: float = 30.0,
              cwd: Path | str | None = None) -> ChildResult:
    """Run ``python [args] -c code`` with exactly ``env``; kill it after ``timeout`` seconds."""
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, *args, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )
    return ChildResult(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)


def run_host(code: str, env: dict[str, str], *, timeout: float = HOST_HANG,
             expected: str = "a few seconds") -> ChildResult:
    """``run_child``, with a hang reported as a test failure that says what was expected."""
    started = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True,
                              text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the host hung: still running after {timeout:.0f} s (expected {expected}); "
                    f"stdout={exc.stdout!r} stderr={exc.stderr!r}", pytrace=False)
    return ChildResult(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)


class Request:
    """One request the collector received."""

    def __init__(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        self.method = method
        self.target = path
        split = urlsplit(path)
        self.path = split.path
        self.query = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        self.raw_query = split.query
        self.headers = headers
        self.body = body
        self.at = time.monotonic()

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.target}>"


class Collector:
    """A real HTTP server on 127.0.0.1 in a thread, recording every request.

    ``behaviour`` decides the answer: ``"ok"`` (204), ``"status:500"``,
    ``"redirect:<url>"``, ``"body:<bytes>"`` (a 200 with that many bytes announced and
    streamed slowly), ``"hang"`` (accept, never answer), ``"delay:<seconds>"``,
    ``"sequence:503,429/2,204"`` (one status per request in turn, the last one repeated;
    ``429/2`` adds ``Retry-After: 2``). ``port``: listen there (a port that refused until now).
    """

    def __init__(self, behaviour: str = "ok", port: int = 0) -> None:
        self.behaviour = behaviour
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        collector = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with collector._lock:
                    collector.requests.append(Request(self.command, self.path, dict(self.headers), body))
                collector._answer(self)

            do_GET = do_POST = do_HEAD = _handle

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def _answer(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        kind, _, arg = self.behaviour.partition(":")
        if kind == "sequence":
            steps = arg.split(",")
            with self._lock:
                step = steps[min(len(self.requests), len(steps)) - 1]
            code, _, after = step.partition("/")
            try:
                handler.send_response(int(code))
                if after:
                    handler.send_header("Retry-After", after)
                handler.send_header("Content-Length", "0")
                handler.end_headers()
            except OSError:
                pass
            return
        try:
            if kind == "hang":
                self._stop.wait(60)
                return
            if kind == "delay":
                self._stop.wait(float(arg))
                kind = "ok"
            if kind == "status":
                handler.send_response(int(arg))
                handler.send_header("Content-Length", "0")
                handler.end_headers()
            elif kind == "redirect":
                handler.send_response(302)
                handler.send_header("Location", arg)
                handler.send_header("Content-Length", "0")
                handler.end_headers()
            elif kind == "body":
                size = int(arg)
                handler.send_response(200)
                handler.send_header("Content-Length", str(size))
                handler.end_headers()
                chunk = b"x" * 65536
                sent = 0
                while sent < size and not self._stop.is_set():
                    handler.wfile.write(chunk[: min(len(chunk), size - sent)])
                    sent += len(chunk)
            else:
                handler.send_response(204)
                handler.send_header("Content-Length", "0")
                handler.end_headers()
        except OSError:
            pass

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Request]:
        """Wait until at least ``count`` requests arrived (or ``timeout``); return all of them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.requests) >= count:
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
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    """A loopback port that nothing listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RawServer:
    """A bare TCP server on 127.0.0.1 for answers ``http.server`` cannot give: an endless
    chunked body, or TLS with a chosen certificate (see :func:`tls_context`).

    Each connection is handled in its own daemon thread: the TLS handshake (when
    ``ssl_context`` is given), then the request head is read and recorded, then
    ``respond(conn, stop)`` writes the answer (default: ``204 No Content``). Handshakes
    the client refused are counted in ``handshake_failures``; ``requests`` holds the
    request heads (bytes) that arrived, which is what "reached the collector" means.
    """

    def __init__(self, respond: object = None, ssl_context: object = None) -> None:
        self.respond = respond
        self.ssl_context = ssl_context
        self.connections = 0
        self.handshake_failures = 0
        self.requests: list[bytes] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._sock.settimeout(0.05)
        self.port = self._sock.getsockname()[1]
        scheme = "https" if ssl_context is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (socket.timeout, OSError):
                continue
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(5)
            if self.ssl_context is not None:
                try:
                    conn = self.ssl_context.wrap_socket(conn, server_side=True)  # type: ignore[attr-defined]
                except OSError:
                    with self._lock:
                        self.handshake_failures += 1
                    return
            head = b""
            while b"\r\n\r\n" not in head:
                data = conn.recv(4096)
                if not data:
                    return
                head += data
            with self._lock:
                self.requests.append(head)
            if self.respond is None:
                conn.sendall(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            else:
                self.respond(conn, self._stop)  # type: ignore[operator]
        except OSError:
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def settle(self, quiet: float = 0.3) -> list[bytes]:
        """Wait ``quiet`` seconds for stragglers, then return every request head so far."""
        time.sleep(quiet)
        with self._lock:
            return list(self.requests)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()


def endless_chunked_body(conn: socket.socket, stop: threading.Event) -> None:
    """A ``respond`` for :class:`RawServer`: a 200 whose chunked body never ends (until stopped)."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n")
    chunk = b"%x\r\n%s\r\n" % (65536, b"x" * 65536)
    while not stop.is_set():
        conn.sendall(chunk)


def tls_context(directory: Path, host: str = "127.0.0.1") -> tuple[object, Path]:
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
