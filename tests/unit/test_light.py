"""The detached sender's light client (``scarf_autoping/light.py``) against ``requests``, side by side.

Every case sends the same ping both ways, through ``transport.send`` as it is everywhere
but in the sender (``requests``) and through ``light.send``, to the same real loopback
servers, and compares what the server (or proxy) received, byte for byte, and the
:class:`~scarf_autoping.transport.Result` (status, error description, ``Retry-After``).
Then the sender itself, in a child process: a ping imports neither ``requests`` nor
``importlib.metadata``, and goes through a proxy from the environment.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import child_env, make_package
from loopback import Collector, RawServer, free_port, tls_context

from scarf_autoping import light, spawn, transport

_ENV = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy", "NO_PROXY", "no_proxy",
        "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSLKEYLOGFILE", "REQUEST_METHOD")
#: What a loaded machine may add to a deadline (the bound only tells a deadline from a hang).
SLACK = 3.0
HEADERS = {"User-Agent": transport.user_agent()}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def servers():
    made: list[object] = []

    def make(respond: object = None, ssl_context: object = None) -> RawServer:
        server = RawServer(respond, ssl_context)
        made.append(server)
        return server

    yield make
    for server in made:
        server.close()  # type: ignore[attr-defined]


def answer(head: bytes):
    """A ``respond`` that writes ``head`` (and closes)."""
    def respond(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(head)
    return respond


def stall(conn: socket.socket, stop: threading.Event) -> None:
    stop.wait(30)


def trickle(conn: socket.socket, stop: threading.Event) -> None:
    for byte in b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n":
        if stop.wait(0.2):
            return
        conn.sendall(bytes([byte]))


def reset(conn: socket.socket, stop: threading.Event) -> None:
    import struct

    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def both(url: str, timeout: float | tuple[float, float] = 2.0, headers: dict[str, str] | None = None):
    """The same GET through requests, then through the light client: ``(requests_result, light_result, seconds)``."""
    headers = HEADERS if headers is None else headers
    assert light.plan("GET", url, headers) is not None, "the light client must cover this case"
    started = time.monotonic()
    heavy = transport.send("GET", url, timeout=timeout, headers=headers)
    middle = time.monotonic()
    lite = light.send("GET", url, timeout=timeout, headers=headers)
    assert lite is not None
    return heavy, lite, (middle - started, time.monotonic() - middle)


def same(heavy: transport.Result, lite: transport.Result) -> None:
    assert (lite.status_code, lite.error, lite.delivered) == (heavy.status_code, heavy.error, heavy.delivered), (
        heavy, lite)
    if heavy.retry_after is None:
        assert lite.retry_after is None
    else:
        assert lite.retry_after is not None and abs(lite.retry_after - heavy.retry_after) < 2.0


# --- the answers ----------------------------------------------------------------------------

ANSWERS = {
    "200": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    "204": b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
    "301 with a body": b"HTTP/1.1 301 Moved\r\nLocation: http://127.0.0.1:9/else\r\nContent-Length: 5\r\n\r\nmoved",
    "302 chunked": b"HTTP/1.1 302 Found\r\nLocation: /x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    "302 without Location": b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n",
    "307 read to the end": b"HTTP/1.0 307 Temporary\r\nLocation: http://example.org/\r\n\r\nuntil the end",
    "304": b"HTTP/1.1 304 Not Modified\r\n\r\n",
    "100 then 204": b"HTTP/1.1 100 Continue\r\nX: y\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
    "404": b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found",
    "410": b"HTTP/1.1 410 Gone\r\nContent-Length: 0\r\n\r\n",
    "429 Retry-After seconds": b"HTTP/1.1 429 Too Many\r\nRetry-After: 7\r\nContent-Length: 0\r\n\r\n",
    "503 Retry-After date": b"HTTP/1.1 503 Busy\r\nRetry-After: Wed, 21 Oct 2099 07:28:00 GMT\r\n\r\n",
    "503 two Retry-After": b"HTTP/1.1 503 Busy\r\nRetry-After: 5\r\nretry-after: 9\r\n\r\n",
    "500 folded header": b"HTTP/1.1 500 Oops\r\nRetry-After: 3\r\n  4\r\nX: 1\r\n\r\n",
    "204, odd Content-Length": b"HTTP/1.1 204 No Content\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    "garbage status line": b"HTTX/1.1 200 OK\r\n\r\n",
    "status out of range": b"HTTP/1.1 1000 Big\r\n\r\n",
    "HTTP/2 status line": b"HTTP/2.0 200 OK\r\n\r\n",
    "closed without answer": b"",
    "101 headers": b"HTTP/1.1 200 OK\r\n" + b"X-A: b\r\n" * 101 + b"\r\n",
    "a header line too long": b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70000 + b"\r\n\r\n",
    "a header line without a colon": b"HTTP/1.1 429 Slow\r\nbroken\r\nRetry-After: 4\r\n\r\n",
    "non-UTF-8 Location": b"HTTP/1.1 302 Found\r\nLocation: /\xff\xfe\r\nContent-Length: 0\r\n\r\n",
    "broken IPv6 Location": b"HTTP/1.1 302 Found\r\nLocation: http://[::1/x\r\nContent-Length: 0\r\n\r\n",
}


@pytest.mark.parametrize("case", list(ANSWERS))
def test_the_same_request_and_the_same_result_for_every_answer(servers, case):
    server = servers(answer(ANSWERS[case]))
    heavy, lite, _ = both(server.url + "/p/pkg/1.0/linux?x=%7e%2fa")
    same(heavy, lite)
    first, second = server.settle(0.1)
    assert second == first, (first, second)
    assert first.startswith(b"GET /p/pkg/1.0/linux?x=~%2Fa HTTP/1.1\r\nHost: 127.0.0.1:"), first


def test_the_request_itself_header_by_header(servers):
    server = servers()
    heavy, lite, _ = both(server.url.replace("127.0.0.1", "LOCALHOST") + "/t/%41b", headers={
        "User-Agent": "scarf-autoping/test (cli)", "X-Extra": "1", "accept": "text/plain"})
    same(heavy, lite)
    first, second = server.settle(0.1)
    assert second == first
    lines = first.decode("ascii").split("\r\n")
    assert lines[:6] == ["GET /t/Ab HTTP/1.1", f"Host: localhost:{server.port}", "User-Agent: scarf-autoping/test (cli)",
                         "Accept-Encoding: gzip, deflate", "accept: text/plain", "Connection: keep-alive"], lines
    assert lines[6:] == ["X-Extra: 1", "", ""]


def test_a_redirect_is_not_followed(servers):
    elsewhere = servers()
    server = servers(answer(b"HTTP/1.1 302 Found\r\nLocation: " + elsewhere.url.encode() + b"/next\r\n"
                            b"Content-Length: 0\r\n\r\n"))
    heavy, lite, _ = both(server.url + "/p")
    same(heavy, lite)
    assert lite.status_code == 302 and lite.delivered
    assert elsewhere.settle(0.2) == []


# --- timeouts and failures --------------------------------------------------------------------


@pytest.mark.parametrize("respond,timeout", [(stall, 0.6), (trickle, 0.6), (stall, (0.5, 0.3))])
def test_a_server_that_stalls_or_trickles_ends_at_the_same_deadline(servers, respond, timeout):
    server = servers(respond)
    heavy, lite, (slow, fast) = both(server.url + "/p", timeout=timeout)
    same(heavy, lite)
    assert heavy.error == "ReadTimeout: timed out"
    bound = transport.total_seconds(timeout)
    limit = min(bound, timeout[1]) if isinstance(timeout, tuple) else bound
    for seconds in (slow, fast):
        assert limit * 0.8 <= seconds < bound + SLACK, (slow, fast)


def test_a_redirect_whose_body_never_ends_fails_as_with_requests(servers):
    def endless(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(b"HTTP/1.1 301 Moved\r\nLocation: /x\r\nContent-Length: 100000\r\n\r\nabc")
        stop.wait(30)

    heavy, lite, _ = both(servers(endless).url + "/p", timeout=0.6)
    same(heavy, lite)
    assert heavy.error == "ConnectionError: timed out"


def test_a_connect_timeout():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    filler = socket.create_connection(listener.getsockname())  # the queue is full: SYNs are dropped
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/p"
        heavy, lite, (slow, fast) = both(url, timeout=0.5)
        same(heavy, lite)
        assert heavy.error == "ConnectTimeout: timed out", heavy
        assert 0.4 <= slow < 0.5 + SLACK and 0.4 <= fast < 0.5 + SLACK
    finally:
        filler.close()
        listener.close()


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:{free}/p",  # refused
    "https://127.0.0.1:{free}/p",
    "http://scarf-autoping-test.invalid/p",  # no such name
])
def test_refused_and_unresolvable(url):
    heavy, lite, _ = both(url.format(free=free_port()))
    same(heavy, lite)
    assert heavy.status_code is None and heavy.error.startswith("ConnectionError")


def test_a_reset(servers):
    heavy, lite, _ = both(servers(reset).url + "/p")
    same(heavy, lite)
    assert heavy.error == "ConnectionError"


# --- proxies -----------------------------------------------------------------------------------


class Proxy:
    """A loopback HTTP proxy that records every request head: an absolute-URI request is passed
    on to its origin as it came, a ``CONNECT`` is answered 200 and tunnelled (or refused with
    ``refuse``, e.g. ``b"407 Proxy Authentication Required"``)."""

    def __init__(self, refuse: bytes | None = None) -> None:
        self.refuse = refuse
        self.heads: list[bytes] = []
        self._stop = threading.Event()
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.05)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            head = b""
            while b"\r\n\r\n" not in head:
                data = conn.recv(4096)
                if not data:
                    return
                head += data
            self.heads.append(head)
            method, target = head.split(b" ")[:2]
            if method == b"CONNECT":
                if self.refuse is not None:
                    conn.sendall(b"HTTP/1.1 " + self.refuse + b"\r\nContent-Length: 0\r\n\r\n")
                    return
                host, port = target.decode().rsplit(":", 1)
                upstream = socket.create_connection((host, int(port)), timeout=5)
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                self._pipe(conn, upstream, b"")
            else:
                authority = target.split(b"/")[2].decode()
                host, _, port = authority.partition(":")
                upstream = socket.create_connection((host, int(port or 80)), timeout=5)
                self._pipe(conn, upstream, head)

    def _pipe(self, conn: socket.socket, upstream: socket.socket, first: bytes) -> None:
        with upstream:
            upstream.sendall(first)

            def back() -> None:
                try:
                    while data := upstream.recv(65536):
                        conn.sendall(data)
                except OSError:
                    pass
                try:
                    conn.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

            thread = threading.Thread(target=back, daemon=True)
            thread.start()
            try:
                while data := conn.recv(65536):
                    upstream.sendall(data)
            except OSError:
                pass
            thread.join(5)

    def close(self) -> None:
        self._stop.set()
        self._sock.close()


@pytest.fixture
def proxy():
    made: list[Proxy] = []

    def make(refuse: bytes | None = None) -> Proxy:
        made.append(Proxy(refuse))
        return made[-1]

    yield make
    for p in made:
        p.close()


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY"])
def test_an_http_url_goes_to_an_http_proxy_as_an_absolute_uri(servers, proxy, monkeypatch, variable):
    server, relay = servers(), proxy()
    monkeypatch.setenv(variable, relay.url)
    heavy, lite, _ = both(server.url + "/p/x")
    same(heavy, lite)
    assert heavy.status_code == 204
    assert len(relay.heads) == 2 and relay.heads[0] == relay.heads[1]
    assert relay.heads[0].startswith(f"GET {server.url}/p/x HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n".encode())
    assert server.settle(0.1) == relay.heads  # passed on as it came


@pytest.mark.parametrize("no_proxy", ["127.0.0.1", "127.0.0.0/8", " 10.0.0.1 , 127.0.0.1", "*"])
def test_no_proxy_bypasses_the_proxy(servers, proxy, monkeypatch, no_proxy):
    server, relay = servers(), proxy()
    monkeypatch.setenv("HTTP_PROXY", relay.url)
    monkeypatch.setenv("NO_PROXY", no_proxy)
    heavy, lite, _ = both(server.url + "/p")
    same(heavy, lite)
    assert heavy.status_code == 204 and relay.heads == [] and len(server.settle(0.1)) == 2


def test_no_proxy_by_name_suffix_and_lower_case_first(servers, proxy, monkeypatch):
    server, relay = servers(), proxy()
    monkeypatch.setenv("HTTP_PROXY", relay.url)
    monkeypatch.setenv("no_proxy", ".localhost")
    monkeypatch.setenv("NO_PROXY", "nothing.example")
    heavy, lite, _ = both(f"http://localhost:{server.port}/p")
    same(heavy, lite)
    assert heavy.status_code == 204 and relay.heads == []


def test_an_https_url_goes_through_a_connect_tunnel_with_the_ca_bundle(servers, proxy, monkeypatch, tmp_path):
    context, ca = tls_context(tmp_path)
    server, relay = servers(ssl_context=context), proxy()
    monkeypatch.setenv("HTTPS_PROXY", relay.url)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca))
    heavy, lite, _ = both(server.url + "/p")
    same(heavy, lite)
    assert heavy.status_code == 204
    assert len(relay.heads) == 2 and relay.heads[0] == relay.heads[1]
    assert relay.heads[0].startswith(f"CONNECT 127.0.0.1:{server.port} HTTP/1.".encode())
    first, second = server.settle(0.1)
    assert first == second and first.startswith(b"GET /p HTTP/1.1\r\n")


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_dead_proxy(monkeypatch, scheme):
    monkeypatch.setenv(f"{scheme.upper()}_PROXY", f"http://127.0.0.1:{free_port()}")
    heavy, lite, _ = both(f"{scheme}://127.0.0.1:{free_port()}/p")
    same(heavy, lite)
    assert heavy.error == "ProxyError: Connection refused"


def test_a_proxy_that_refuses_the_tunnel(proxy, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", proxy(refuse=b"407 Proxy Authentication Required").url)
    heavy, lite, _ = both(f"https://127.0.0.1:{free_port()}/p")
    same(heavy, lite)
    assert heavy.error.startswith("ProxyError")


def test_a_stalling_proxy_ends_at_the_deadline(servers, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", servers(stall).url)
    heavy, lite, (slow, fast) = both("https://events.example/p", timeout=0.6)
    same(heavy, lite)
    assert heavy.error == "ReadTimeout: timed out"
    assert 0.5 <= fast < 0.6 + SLACK and 0.5 <= slow < 0.6 + SLACK


@pytest.mark.parametrize("environment", [
    {"HTTPS_PROXY": "socks5://127.0.0.1:1080"},  # requests' (and PySocks') business
    {"HTTP_PROXY": "http://user:secret@127.0.0.1:3128"},  # Proxy-Authorization: requests' business
    {"HTTP_PROXY": "https://127.0.0.1:3128"},  # a TLS proxy
    {"HTTP_PROXY": "127.0.0.1:3128"},  # no scheme
    {"HTTP_PROXY": "http://[::1]:3128"},
])
def test_a_proxy_the_light_client_does_not_cover_is_left_to_requests(monkeypatch, environment):
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert light.plan("GET", "http://127.0.0.1:9/p", HEADERS) is None or "HTTPS_PROXY" in environment
    assert light.plan("GET", "https://127.0.0.1:9/p", HEADERS) is None or "HTTP_PROXY" in environment


@pytest.mark.parametrize("method,url,headers,body", [
    ("POST", "http://127.0.0.1:9/p", {}, b"{}"),
    ("GET", "http://127.0.0.1:9/p", {}, b""),
    ("GET", "http://user:pw@127.0.0.1:9/p", {}, None),
    ("GET", "http://bücher.example/p", {}, None),
    ("GET", "http://[::1]:9/p", {}, None),
    ("GET", "http://127.0.0.1:9/p#part", {}, None),
    ("GET", "http://127.0.0.1:9/a/../p", {}, None),
    ("GET", "http://127.0.0.1:9/p q", {}, None),
    ("GET", "http://127.0.0.1:9/%zz", {}, None),
    ("GET", "ftp://127.0.0.1/p", {}, None),
    ("GET", "http://a..b/p", {}, None),
    ("GET", "http://127.0.0.1:9/p", {"Authorization": "x"}, None),
    ("GET", "http://127.0.0.1:9/p", {"X": " leading space"}, None),
    ("GET", "http://127.0.0.1:9/p", {"X": "é"}, None),
    ("GET", "http://127.0.0.1:9/p", {"Bad Name": "x"}, None),
])
def test_what_the_light_client_does_not_cover(method, url, headers, body):
    assert light.plan(method, url, headers, body) is None
    assert light.send(method, url, timeout=1.0, headers=headers, body=body) is None


# --- TLS --------------------------------------------------------------------------------------


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_tls_with_a_ca_bundle_from_the_environment(servers, monkeypatch, tmp_path, variable):
    context, ca = tls_context(tmp_path)
    server = servers(ssl_context=context)
    monkeypatch.setenv(variable, str(ca))
    heavy, lite, _ = both(server.url + "/p")
    same(heavy, lite)
    assert heavy.status_code == 204 and server.handshake_failures == 0


def test_tls_with_a_ca_directory(servers, monkeypatch, tmp_path):
    context, ca = tls_context(tmp_path)
    server = servers(ssl_context=context)
    directory = tmp_path / "certs"
    directory.mkdir()
    import ssl

    der = ssl.PEM_cert_to_DER_cert(ca.read_text())
    name = subprocess.run(["openssl", "x509", "-hash", "-noout", "-in", str(ca)], capture_output=True, text=True,
                          check=False).stdout.strip()
    if not name:
        pytest.skip("no openssl command to name the CA file")
    (directory / f"{name}.0").write_text(ssl.DER_cert_to_PEM_cert(der))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(directory))
    heavy, lite, _ = both(server.url + "/p")
    same(heavy, lite)
    assert heavy.status_code == 204


def test_tls_refuses_a_certificate_nobody_trusts(servers, tmp_path):
    context, _ = tls_context(tmp_path)  # its CA is not in certifi's bundle
    server = servers(ssl_context=context)
    heavy, lite, _ = both(server.url + "/p")
    same(heavy, lite)
    assert "CERTIFICATE_VERIFY_FAILED" in heavy.error and server.settle(0.1) == []


def test_tls_refuses_a_certificate_for_another_host(servers, monkeypatch, tmp_path):
    context, ca = tls_context(tmp_path, host="example.org")
    server = servers(ssl_context=context)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca))
    heavy, lite, _ = both(server.url + "/p")
    same(heavy, lite)
    assert "CERTIFICATE_VERIFY_FAILED" in heavy.error and server.settle(0.1) == []


def test_https_to_a_plain_http_port():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    stop = threading.Event()

    def plain() -> None:  # answers whatever arrives with a plain-HTTP 400, as a web server would
        listener.settimeout(0.05)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(5)
                if conn.recv(4096):
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    thread = threading.Thread(target=plain, daemon=True)
    thread.start()
    try:
        heavy, lite, _ = both(f"https://127.0.0.1:{listener.getsockname()[1]}/p")
        same(heavy, lite)
        assert heavy.error == "TLS handshake failed: is this an https URL on a plain-HTTP port?", heavy
    finally:
        stop.set()
        thread.join(2)
        listener.close()


def test_a_ca_bundle_that_is_no_certificate(servers, monkeypatch, tmp_path):
    context, _ = tls_context(tmp_path)
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("not a certificate\n")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bogus))
    heavy, lite, _ = both(servers(ssl_context=context).url + "/p")
    same(heavy, lite)
    assert heavy.error.startswith("TLS handshake failed")


WHERE = ("import json, sys\nfrom scarf_autoping import light\nfound = light._certifi_where()\n"
         "lazy = 'certifi' not in sys.modules\nimport certifi\nprint(json.dumps([found, certifi.where(), lazy]))")


def test_certifis_own_bundle_is_found_without_importing_it():
    proc = subprocess.run([sys.executable, "-c", WHERE], env=child_env(), capture_output=True, text=True, timeout=30,
                          check=False)
    assert proc.returncode == 0 and proc.stderr == "", proc
    found, where, lazy = json.loads(proc.stdout)
    assert found == where and lazy


@pytest.mark.parametrize("core", [
    'def where():\n    return "/etc/ssl/certs/ca-certificates.crt"\n\n\ndef contents():\n    return ""\n',
    'import os\n\n\ndef _unused():\n    _CACERT_CTX = get_path("certifi", "cacert.pem")\n\n\n'
    'def where():\n    return os.environ["X"]\n\n\ndef contents():\n    return ""\n',
])
def test_a_patched_certifi_is_asked(tmp_path, core):
    """A distribution's certifi whose where() answers the system's bundle: light asks it, as requests would."""
    package = tmp_path / "certifi"
    package.mkdir()
    (package / "__init__.py").write_text("from .core import contents, where\n")
    (package / "core.py").write_text(core)
    (package / "cacert.pem").write_text("")
    proc = subprocess.run([sys.executable, "-c", WHERE], env=child_env(tmp_path, X="/somewhere/else.pem"),
                          capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0 and proc.stderr == "", proc
    found, where, lazy = json.loads(proc.stdout)
    assert found == where and not lazy and not where.endswith("cacert.pem")


def test_a_ca_bundle_that_does_not_exist_is_left_to_requests(monkeypatch, tmp_path):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "absent.pem"))
    assert light.plan("GET", "https://127.0.0.1:9/p", HEADERS) is None
    assert light.plan("GET", "http://127.0.0.1:9/p", HEADERS) is not None  # not read for http


# --- the sender, in a child process -------------------------------------------------------------

#: Runs the real sender's ``main`` in ``python -I -S``, as the bootstrap does; at its exit it
#: prints which of the heavy modules it had imported.
SENDER = """\
import json, os, sys
settings = json.loads(sys.stdin.read())
sys.path.insert(0, settings["home"])
from scarf_autoping import sender
leave = os._exit
def report(code):
    heavy = ("requests", "urllib3", "importlib.metadata", "email", "http.client", "urllib.request", "distro", "socket",
             "ssl", "logging", "subprocess", "argparse")
    os.write(1, json.dumps(sorted(m for m in heavy if m in sys.modules)).encode())
    leave(code)
os._exit = report
sender.main(settings)
"""


#: What Python 3.9's ``platform`` imports itself (not on our account).
PLATFORMS_OWN = {"subprocess"} if sys.version_info < (3, 10) else set()


def run_sender(site: Path, template: str, env: dict[str, str], package: str = "light-pkg") -> list[str]:
    make_package(site, "light_pkg", "", version="4.5.6", dist_name=package)
    job = {"method": "GET", "template": template, "package": package, "version": None, "variables": {},
           "ci": False, "timeout": 5.0, "retry_interval": None}
    settings = json.dumps({"jobs": [job], "home": spawn.home(), "path": [str(site), *sys.path], "skip": [],
                           "delay": 0.0, "report": False, "loop": False, "host": os.getpid()})
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", SENDER], input=settings, capture_output=True, text=True,
                          env=env, timeout=30, check=False)
    assert proc.returncode == 0 and proc.stderr == "", proc
    return sorted(set(json.loads(proc.stdout)) - PLATFORMS_OWN)


def test_the_sender_pings_without_requests_importlib_metadata_or_email(site):
    collector = Collector()
    try:
        imported = run_sender(site, collector.url + "/t/{package}/{version}/{platform}/{python}/{arch}", child_env())
        assert imported == [], imported
        (request,) = collector.expect(1)
        assert request.path.startswith("/t/light-pkg/4.5.6/")
        assert request.headers["User-Agent"] == transport.user_agent()
    finally:
        collector.close()


def test_the_sender_imports_distro_only_for_a_template_that_names_it(site):
    collector = Collector()
    try:
        imported = run_sender(site, collector.url + "/t/{package}/{distro}", child_env())
        assert imported == ["distro"], imported
        assert len(collector.expect(1)) == 1
    finally:
        collector.close()


def test_distro_imported_lean_in_the_sender_says_what_it_says_in_full():
    code = ("import json, sys\nfrom scarf_autoping import facts\nfull = facts._distro_facts()\n"
            "for name in ('distro', 'distro.distro', 'logging', 'subprocess', 'argparse'): sys.modules.pop(name, None)\n"
            "facts.lean()\nlean = facts._distro_facts()\n"
            "print(json.dumps([full, lean, sorted(m for m in ('logging', 'subprocess', 'argparse') if m in sys.modules)]))")
    proc = subprocess.run([sys.executable, "-c", code], env=child_env(), capture_output=True, text=True, timeout=30,
                          check=False)
    assert proc.returncode == 0 and proc.stderr == "", proc
    full, lean, loaded = json.loads(proc.stdout)
    assert lean == full and loaded == []


def test_the_sender_goes_through_the_environments_proxy_without_requests(site, proxy):
    collector, relay = Collector(), proxy()
    try:
        imported = run_sender(site, collector.url + "/t/{package}", child_env(HTTP_PROXY=relay.url))
        assert imported == []
        (request,) = collector.expect(1)
        assert request.path == "/t/light-pkg"
        assert relay.heads and relay.heads[0].startswith(f"GET {collector.url}/t/light-pkg HTTP/1.1".encode())
    finally:
        collector.close()


def test_the_sender_falls_back_to_requests_for_what_it_does_not_cover(site, proxy):
    collector, relay = Collector(), proxy()
    try:
        # A proxy with credentials: requests sends them (Proxy-Authorization), so requests sends it.
        env = child_env(HTTP_PROXY=relay.url.replace("http://", "http://user:secret@"))
        imported = run_sender(site, collector.url + "/t/{package}", env)
        assert "requests" in imported
        assert [r.path for r in collector.expect(1)] == ["/t/light-pkg"]
        assert b"\r\nProxy-Authorization: Basic dXNlcjpzZWNyZXQ=\r\n" in relay.heads[0]
    finally:
        collector.close()


def test_a_bypassed_proxy_with_credentials_is_no_reason_to_fall_back(site):
    collector = Collector()
    try:
        env = child_env(HTTP_PROXY="http://user:secret@127.0.0.1:9", NO_PROXY="127.0.0.1")
        assert run_sender(site, collector.url + "/t/{package}", env) == []
        assert [r.path for r in collector.expect(1)] == ["/t/light-pkg"]
    finally:
        collector.close()
