"""The detached sender's own client for a ping: one ``GET`` on a socket, without ``requests``.

Why: ``import requests`` is most of what a detached sender costs the machine (about
110 ms of CPU on a small machine, for one ``GET`` whose answer is never read). This
module sends the same bytes ``requests`` (2.x, over urllib3 2.x) would send, with the
same proxies, the same CA bundle and TLS checks, no redirects followed and the same
deadline as :mod:`scarf_autoping.transport`, and returns the same
:class:`~scarf_autoping.transport.Result`, error descriptions included. Only the sender
uses it (see :func:`scarf_autoping.transport.warm_up`); everything else, events included,
goes through ``requests``.

What it covers, and nothing else: a ``GET`` without a body to an ``http://`` or
``https://`` URL whose host is an ASCII name or an IPv4 address, without user
information or fragment, whose path and query hold only the characters urllib3 leaves as
they are; no proxy, or an ``http://`` proxy without credentials; header names and values
``requests`` would accept, none of those with a meaning of their own (``Host``,
``Authorization``, ``Cookie``...); requests and urllib3 2 installed (an older urllib3
negotiates TLS differently). For anything else :func:`plan` says None *before any byte is
sent*, and the caller sends with ``requests``: nothing is ever sent twice.

What ``requests`` does for such a ``GET``, done here the same way:

* **The request.** Its URL as ``requests`` prepares it (scheme and host lower-cased,
  percent-escapes upper-cased, escaped unreserved characters decoded, an empty path
  ``/``, an empty query dropped), its headers in its order: ``Host`` (``http.client``'s
  rule: no port when it is the scheme's), ``User-Agent``, ``Accept-Encoding`` (``gzip,
  deflate``, with ``br`` and ``zstd`` when urllib3 would announce them), ``Accept: */*``,
  ``Connection: keep-alive``, then the caller's others; in one write.
* **Proxies from the environment**, read as ``requests`` reads them: ``NO_PROXY`` /
  ``no_proxy`` (lower case first; names, suffixes, IPv4 addresses and CIDR blocks),
  then ``urllib.request.getproxies()`` and ``proxy_bypass()`` (their environment-only
  forms, rewritten here, on Linux and the BSDs; the real ones elsewhere, where they also
  read the system's settings), and the proxy chosen by ``scheme://host``, ``scheme``,
  ``all://host``, ``all``. An ``http://`` URL goes to an HTTP proxy as an absolute-URI
  request; an ``https://`` URL through a ``CONNECT`` tunnel (``HTTP/1.0`` before Python
  3.12, ``HTTP/1.1`` with a ``Host`` header after, as ``http.client`` and urllib3 do).
* **TLS** as urllib3 2 sets it up: TLS 1.2 at least, no compression, no session tickets,
  ``http/1.1`` by ALPN, the certificate and host name verified (``VERIFY_X509_STRICT``
  and ``PARTIAL_CHAIN`` on 3.13+), ``SSLKEYLOGFILE`` honoured, against the CA bundle in
  ``REQUESTS_CA_BUNDLE``, else ``CURL_CA_BUNDLE``, else ``certifi.where()`` (a directory
  is a ``capath``; certifi's own ``where()`` is read from its files, any other is asked).
* **The deadline** of :class:`scarf_autoping.transport.Budget`, step by step as the
  transport's urllib3 classes keep it: the connect timeout for each address tried, the
  rest of the connect budget for the tunnel's end and the TLS handshake, the rest of the
  whole budget for every send, and for every ``recv`` the least of that and the read
  timeout. DNS resolution is not bounded (as there).
* **The answer**: the status line and headers as ``http.client`` and ``email`` read them
  (``100 Continue`` skipped, at most 100 headers of 64 KiB, repeated headers joined with
  ``, ``), ``Retry-After`` parsed by the same function. The body is never read, except
  that of a redirect (a 301, 302, 303, 307 or 308 with a ``Location``), which ``requests``
  reads even when it follows none, and whose ``Location`` it decodes and parses.
* **Failures** described as ``requests``' exceptions are
  (:func:`scarf_autoping.transport.describe_error`): the same class name (``ConnectionError``,
  ``ConnectTimeout``, ``ReadTimeout``, ``ProxyError``, ``SSLError``, ``InvalidHeader``) for
  the same failure at the same step, and a text with the same telling words.

Imports: ``_socket`` always (``socket`` itself with ``ssl``, for ``https`` only; ``certifi``
only when it is not certifi's own); ``urllib.parse``
for a redirect only; never ``http.client``, ``email`` or ``urllib.request`` (on Linux).
"""

import os
import sys
import time

from . import transport

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Mapping

__all__ = ["plan", "send", "warm_up"]

#: ``http.client``'s limits: the longest line, the most header lines.
MAXLINE = 65536
MAXHEADERS = 100
#: The statuses after which ``requests`` reads the body and works out the next request.
REDIRECT_STATI = (301, 302, 303, 307, 308)
#: Characters urllib3 leaves as they are in a path (a query also allows ``?``).
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PATH_CHARS = _UNRESERVED | frozenset("!$&'()*+,;=:@/")
_HEX = frozenset("0123456789abcdefABCDEF")
#: Characters of a host name we send ourselves (lower-cased first).
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-._")
#: Header names with a meaning of their own to requests, urllib3 or http.client.
_SPECIAL_HEADERS = frozenset(("host", "authorization", "proxy-authorization", "cookie", "content-length",
                              "transfer-encoding", "expect", "te", "upgrade", "accept-encoding"))
#: A header name ``requests`` accepts (a token).
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")

_cache: "dict[str, object]" = {}


class Plan:
    """What one covered ``GET`` needs: where to connect, what to write, how to read the answer.

    ``scheme``, ``host``, ``port``: the target; ``proxy``: ``(host, port)`` of an HTTP
    proxy, or None; ``target``: the request line's target (a path, or the absolute URL
    for a proxy); ``head``: the request's bytes; ``pool``: how urllib3 names the pool in
    its messages; ``verify``: the CA bundle (file or directory) for ``https``.
    """

    __slots__ = ("head", "host", "pool", "port", "proxy", "scheme", "target", "verify")

    def __init__(self, scheme: str, host: str, port: int, proxy: "tuple[str, int] | None", target: str,
                 head: bytes, verify: "str | None") -> None:
        self.scheme = scheme
        self.host = host
        self.port = port
        self.proxy = proxy
        self.target = target
        self.head = head
        self.verify = verify
        pool_host, pool_port = proxy if proxy is not None and scheme == "http" else (host, port)
        self.pool = f"{'HTTPS' if scheme == 'https' else 'HTTP'}ConnectionPool(host={pool_host!r}, port={pool_port})"


def warm_up() -> None:
    """Import what every ping needs: ``_socket`` (no ``socket`` module, no ``selectors``, for plain HTTP;
    ``encodings.idna`` is never needed either: host names go to ``getaddrinfo`` as bytes)."""
    import _socket  # noqa: F401


# --- is it covered? -------------------------------------------------------------------


def _found(name: str) -> "str | None":
    """The directory of the top-level package ``name`` on ``sys.path``, without importing it."""
    key = "found:" + name
    if key not in _cache:
        from importlib.machinery import PathFinder

        spec = PathFinder.find_spec(name)
        places = list(spec.submodule_search_locations or ()) if spec is not None else []
        _cache[key] = places[0] if places else None
    return _cache[key]  # type: ignore[return-value]


def _urllib3_is_2() -> bool:
    """True when ``requests`` and a urllib3 2.x are installed (read from urllib3's ``_version.py``)."""
    if "urllib3-2" not in _cache:
        answer = False
        where = _found("urllib3")
        if where is not None and _found("requests") is not None:
            try:
                with open(os.path.join(where, "_version.py"), encoding="utf-8") as f:
                    for line in f:
                        if line.startswith("__version__") and "=" in line and ("'" in line or '"' in line):
                            value = line.split("=")[-1].strip().strip("'\"")
                            answer = value.split(".")[0] == "2"
                            break
            except (OSError, ValueError):
                answer = False
        _cache["urllib3-2"] = answer
    return bool(_cache["urllib3-2"])


def _accept_encoding() -> str:
    """``requests``' ``Accept-Encoding``: what urllib3 can decode, found as urllib3 finds it."""
    value = _cache.get("accept-encoding")
    if value is None:
        value = "gzip, deflate"
        try:
            try:
                import brotlicffi  # type: ignore[import-not-found]  # noqa: F401
            except ImportError:
                import brotli  # type: ignore[import-not-found]  # noqa: F401
        except ImportError:
            pass
        else:
            value += ", br"
        try:
            if sys.version_info >= (3, 14):
                from compression import zstd  # type: ignore[import-not-found]
            else:
                from backports import zstd  # type: ignore[import-not-found]  # noqa: F401
        except ImportError:
            pass
        else:
            value += ", zstd"
        _cache["accept-encoding"] = value
    return value  # type: ignore[return-value]


def _split_url(url: str) -> "tuple[str, str, int, bool, str] | None":
    """``(scheme, host, port, port_written, path_and_query)`` as ``requests`` prepares ``url``; None if not covered."""
    head, sep, rest = url.partition("://")
    scheme = head.lower()
    if not sep or scheme not in ("http", "https"):
        return None
    end = len(rest)
    for mark in "/?#":
        found = rest.find(mark)
        if found != -1 and found < end:
            end = found
    authority, tail = rest[:end], rest[end:]
    if "#" in tail or "@" in authority or "[" in authority:
        return None
    host, colon, port_text = authority.partition(":")
    host = host.lower()
    if colon:
        if not port_text.isdigit() or not port_text.isascii() or not 0 < int(port_text) < 65536:
            return None
        port = int(port_text)
    else:
        port = 443 if scheme == "https" else 80
    labels = host.split(".")
    if (not host.isascii() or not set(host) <= _HOST_CHARS or any(not 0 < len(label) < 64 for label in labels)
            or host[0] in "*."):
        return None
    path, question, query = tail.partition("?")
    quoted_path = _requote(path, _PATH_CHARS)
    quoted_query = _requote(query, _PATH_CHARS | {"?"})
    if quoted_path is None or quoted_query is None:
        return None
    path, query = quoted_path, quoted_query
    if any(segment in (".", "..") for segment in path.split("/")):
        return None  # urllib3 would remove dot segments: left to it
    target = (path or "/") + ("?" + query if query else "")
    return scheme, host, port, bool(colon), target


def _requote(text: str, allowed: "frozenset[str]") -> "str | None":
    """urllib3's escapes upper-cased, then ``requests``' unreserved ones decoded; None if urllib3 would change more."""
    out = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "%":
            pair = text[i + 1:i + 3]
            if len(pair) != 2 or not set(pair) <= _HEX:
                return None
            decoded = chr(int(pair, 16))
            out.append(decoded if decoded in _UNRESERVED else "%" + pair.upper())
            i += 3
            continue
        if ch not in allowed:
            return None
        out.append(ch)
        i += 1
    return "".join(out)


def _header_ok(name: object, value: object) -> bool:
    """A header ``requests`` sends as it is (its own checks), with no meaning of its own."""
    if not isinstance(name, str) or not isinstance(value, str) or not name or not set(name) <= _TOKEN:
        return False
    if name.lower() in _SPECIAL_HEADERS:
        return False
    if value and (value[0] in " \t" or not value.isascii() or not value.isprintable()):
        return False
    return True


# --- proxies, as requests reads them ----------------------------------------------------


def _environment_proxies() -> "dict[str, str]":
    """``urllib.request.getproxies_environment()``."""
    proxies: dict[str, str] = {}
    environment = []
    for name in os.environ:
        if len(name) > 5 and name[-6] == "_" and name[-5:].lower() == "proxy":
            value = os.environ[name]
            proxy_name = name[:-6].lower()
            environment.append((name, value, proxy_name))
            if value:
                proxies[proxy_name] = value
    if "REQUEST_METHOD" in os.environ:
        proxies.pop("http", None)
    for name, value, proxy_name in environment:
        if name[-6:] == "_proxy":
            if value:
                proxies[proxy_name] = value
            else:
                proxies.pop(proxy_name, None)
    return proxies


def _environment_bypass(host: str, proxies: "dict[str, str]") -> bool:
    """``urllib.request.proxy_bypass_environment(host, proxies)`` for a host without a port."""
    no_proxy = proxies.get("no")
    if no_proxy is None:
        return False
    if no_proxy == "*":
        return True
    host = host.lower()
    hostonly = host
    for name in no_proxy.split(","):
        name = name.strip()
        if name:
            name = name.lstrip(".").lower()
            if hostonly == name or host == name:
                return True
            name = "." + name
            if hostonly.endswith(name) or host.endswith(name):
                return True
    return False


def _system_proxies() -> "tuple[dict[str, str], object]":
    """``getproxies()`` and ``proxy_bypass`` as ``requests`` calls them on this platform."""
    if os.name == "posix" and sys.platform != "darwin":
        proxies = _environment_proxies()
        return proxies, lambda host: _environment_bypass(host, proxies)
    import urllib.request  # macOS and Windows also read the system's settings: the real thing

    return urllib.request.getproxies(), urllib.request.proxy_bypass


def _ipv4(text: str) -> "int | None":
    """``socket.inet_aton(text)`` as a number, None when it is no IPv4 address (``requests.utils.is_ipv4_address``)."""
    import _socket as socket

    try:
        return int.from_bytes(socket.inet_aton(text), "big")
    except (OSError, ValueError):
        return None


def _in_network(address: int, network: str) -> bool:
    """``requests.utils.is_valid_cidr(network) and address_in_network(...)``."""
    if network.count("/") != 1:
        return False
    base, bits = network.split("/")
    try:
        mask_bits = int(bits)
    except ValueError:
        return False
    if mask_bits < 1 or mask_bits > 32:
        return False
    net = _ipv4(base)
    if net is None:
        return False
    mask = (0xFFFFFFFF << (32 - mask_bits)) & 0xFFFFFFFF
    return (address & mask) == (net & mask)


def _bypassed(host: str, port: "int | None", bypass: object) -> bool:
    """``requests.utils.should_bypass_proxies(url, no_proxy=None)`` (``port``: as written in the URL)."""
    no_proxy = os.environ.get("no_proxy") or os.environ.get("NO_PROXY")
    if no_proxy:
        hosts = [h for h in no_proxy.replace(" ", "").split(",") if h]
        address = _ipv4(host)
        if address is not None:
            for entry in hosts:
                if "/" in entry and _in_network(address, entry):
                    return True
                if entry == host:
                    return True
        else:
            with_port = f"{host}:{port}" if port else host
            for entry in hosts:
                entry = entry.lstrip(".")
                if host == entry or with_port == entry:
                    return True
                entry = "." + entry
                if host.endswith(entry) or with_port.endswith(entry):
                    return True
    try:
        return bool(bypass(host))  # type: ignore[operator]
    except (TypeError, OSError):
        return False


def _proxy_for(scheme: str, host: str, port: "int | None") -> "tuple[str, int] | None | bool":
    """The HTTP proxy ``requests`` would use: ``(host, port)``, None for none, False when not covered."""
    proxies, bypass = _system_proxies()
    for value in proxies.values():  # requests parses some of them again after a redirect
        if "[" in value or "]" in value or not value.isascii():
            return False
    if not proxies or _bypassed(host, port, bypass):
        return None
    proxy = None
    for key in (f"{scheme}://{host}", scheme, f"all://{host}", "all"):
        if key in proxies:
            proxy = proxies[key]
            break
    if not proxy:
        return None
    if proxy[:7].lower() != "http://":
        return False  # socks, https proxies, a bare host:port: requests' business
    split = _split_url(proxy)
    if split is None:
        return False
    return split[1], split[2]


# --- the plan -----------------------------------------------------------------------------


#: The lines of certifi's own ``core.py`` that compute where its bundle is (3.11+, then 3.7-3.10).
_CERTIFI_STOCK = ('_CACERT_CTX = as_file(files("certifi").joinpath("cacert.pem"))',
                  '_CACERT_CTX = get_path("certifi", "cacert.pem")')
#: The only ``return`` lines of certifi's own ``core.py``.
_CERTIFI_RETURNS = frozenset(("return _CACERT_PATH", 'return files("certifi").joinpath("cacert.pem").read_text(encoding="ascii")',
                              'return read_text("certifi", "cacert.pem", encoding="ascii")'))


def _certifi_where() -> "str | None":
    """``certifi.where()``, without importing ``certifi`` (and ``importlib.resources``: 30 ms) when it is certifi's own.

    certifi's own ``where()`` is the ``cacert.pem`` next to its ``core.py`` when it is
    installed as files: its ``__init__.py`` takes ``where`` from ``core.py``, whose only
    computation of a path is that one and whose only ``return`` of a path is its result.
    A certifi that differs in any of that (a distribution's patched ``where()`` returning
    the system's bundle, a zip archive, a path ``pathlib`` would write otherwise) is
    imported and asked. None: no certifi.
    """
    where = _found("certifi")
    if where is None:
        return None
    try:
        with open(os.path.join(where, "__init__.py"), encoding="utf-8") as f:
            init = [line.strip() for line in f if line.strip() and not line.lstrip().startswith("#")]
        with open(os.path.join(where, "core.py"), encoding="utf-8") as f:
            core = [line.strip() for line in f]
    except (OSError, UnicodeError):
        init, core = [], []
    pem = os.path.join(where, "cacert.pem")
    stock = (
        "from .core import contents, where" in init
        and not any("where" in line for line in init if line != "from .core import contents, where"
                    and not line.startswith("__all__"))
        and any(line in _CERTIFI_STOCK for line in core)
        and all(line in _CERTIFI_RETURNS for line in core if line.startswith("return"))
        and os.path.normpath(pem) == pem
        and os.path.isabs(pem)
        and os.path.isfile(pem)
    )
    if stock:
        return pem
    import certifi

    return certifi.where()


def _ca_bundle() -> "str | None | bool":
    """The CA bundle ``requests`` verifies with: a path, or False when not covered (no certifi, a missing path)."""
    verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if not verify:
        try:
            verify = _certifi_where()
        except Exception:  # noqa: BLE001 - requests would fail its own way
            return False
        if verify is None:
            return False
    if not verify or not os.path.exists(verify):
        return False  # requests raises its own OSError: let it
    return verify


def plan(method: str, url: str, headers: "Mapping[str, str] | None" = None, body: "bytes | None" = None) -> "Plan | None":
    """The plan for a request this module sends exactly as ``requests`` would, or None. Never raises, sends nothing."""
    try:
        return _plan(method, url, headers or {}, body)
    except Exception:  # noqa: BLE001 - anything odd: requests' business
        return None


def _plan(method: str, url: str, headers: "Mapping[str, str]", body: "bytes | None") -> "Plan | None":
    if method != "GET" or body is not None or not isinstance(url, str) or not _urllib3_is_2():
        return None
    split = _split_url(url)
    if split is None:
        return None
    scheme, host, port, written, target = split
    if not all(_header_ok(k, v) for k, v in headers.items()):
        return None
    proxy = _proxy_for(scheme, host, port if written else None)
    if proxy is False:
        return None
    verify = None
    if scheme == "https":
        verify = _ca_bundle()
        if verify is False:
            return None
    default = 443 if scheme == "https" else 80
    netloc = f"{host}:{port}" if written else host
    if proxy is not None and scheme == "http":
        target = f"http://{netloc}{target}"
        host_header = netloc  # http.client: the absolute URL's netloc
    else:
        host_header = host if port == default else f"{host}:{port}"
    merged = {"user-agent": ("User-Agent", "python-requests"), "accept-encoding": ("Accept-Encoding", _accept_encoding()),
              "accept": ("Accept", "*/*"), "connection": ("Connection", "keep-alive")}
    for name, value in headers.items():
        merged[name.lower()] = (name, value)
    lines = [f"GET {target} HTTP/1.1", f"Host: {host_header}"]
    lines += [f"{name}: {value}" for name, value in merged.values()]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")
    return Plan(scheme, host, port, proxy, target, head, verify)  # type: ignore[arg-type]


# --- failures, named as requests names them -------------------------------------------------

_classes: "dict[str, type]" = {}


class _Failure(Exception):
    """A failure, as the name of the exception ``requests`` would raise and its text."""

    def __init__(self, name: str, text: str) -> None:
        super().__init__(text)
        self.name = name
        self.text = text

    def describe(self) -> str:
        cls = _classes.get(self.name)
        if cls is None:
            cls = _classes.setdefault(self.name, type(self.name, (Exception,), {}))
        return transport.describe_error(cls(self.text))


def _is_ssl(exc: BaseException) -> bool:
    ssl = sys.modules.get("ssl")
    return ssl is not None and isinstance(exc, ssl.SSLError)


def _aborted(exc: BaseException) -> _Failure:
    """urllib3's ``ProtocolError('Connection aborted.', exc)``, raised by requests as ``ConnectionError``."""
    return _Failure("ConnectionError", f"('Connection aborted.', {exc!r})")


class _BadHead(Exception):
    """What ``http.client`` raises for an answer it cannot read (an ``HTTPException``)."""


class _Tunnel(OSError):
    """A proxy that answered ``CONNECT`` with anything but 200."""


# --- the exchange -------------------------------------------------------------------------


class _Reader:
    """The answer, read from the socket; every ``recv`` waits at most what the budget allows."""

    __slots__ = ("budget", "buffer", "sock")

    def __init__(self, sock: object, budget: "transport.Budget") -> None:
        self.sock = sock
        self.budget = budget
        self.buffer = b""

    def _fill(self) -> bool:
        self.sock.settimeout(self.budget.for_recv())  # type: ignore[attr-defined]
        data = self.sock.recv(65536)  # type: ignore[attr-defined]
        if not data:
            return False
        self.buffer += data
        return True

    def readline(self, limit: int) -> bytes:
        """Up to and including a newline, at most ``limit`` bytes (as a buffered ``readline(limit)``)."""
        start = 0
        while True:
            found = self.buffer.find(b"\n", start, limit)
            if found != -1:
                line, self.buffer = self.buffer[:found + 1], self.buffer[found + 1:]
                return line
            if len(self.buffer) >= limit:
                line, self.buffer = self.buffer[:limit], self.buffer[limit:]
                return line
            start = len(self.buffer)
            if not self._fill():
                line, self.buffer = self.buffer, b""
                return line

    def skip(self, count: "int | None") -> bool:
        """Read and drop ``count`` bytes (None: to the end); False when the connection ended first."""
        while count is None or count > 0:
            if not self.buffer and not self._fill():
                return count is None
            taken = len(self.buffer) if count is None else min(count, len(self.buffer))
            self.buffer = self.buffer[taken:]
            if count is not None:
                count -= taken
        return True


def _status_line(reader: _Reader) -> "tuple[str, int, str]":
    """``http.client.HTTPResponse._read_status``."""
    line = str(reader.readline(MAXLINE + 1), "iso-8859-1")
    if len(line) > MAXLINE:
        raise _BadHead("LineTooLong('status line')")
    if not line:
        raise _BadHead("RemoteDisconnected('Remote end closed connection without response')")
    try:
        version, status, reason = line.split(None, 2)
    except ValueError:
        try:
            version, status = line.split(None, 1)
            reason = ""
        except ValueError:
            version = ""
    if not version.startswith("HTTP/"):
        raise _BadHead(f"BadStatusLine({line!r})")
    try:
        code = int(status)
    except ValueError:
        raise _BadHead(f"BadStatusLine({line!r})") from None
    if code < 100 or code > 999:
        raise _BadHead(f"BadStatusLine({line!r})")
    return version, code, reason


def _header_lines(reader: _Reader, counted: bool = True) -> "list[bytes]":
    """``http.client._read_headers``: the lines up to the blank one (at most 100 when ``counted``)."""
    lines: "list[bytes]" = []
    while True:
        line = reader.readline(MAXLINE + 1)
        if len(line) > MAXLINE:
            raise _BadHead("LineTooLong('header line')")
        if line in (b"\r\n", b"\n", b""):
            return lines
        lines.append(line)
        if counted and len(lines) > MAXHEADERS:
            raise _BadHead(f"HTTPException('got more than {MAXHEADERS} headers')")


def parse_headers(raw: "list[bytes]") -> "list[tuple[str, str]]":
    """The header fields ``http.client`` makes of these lines (through ``email``), in order."""
    from .mailheaders import fields

    return fields(b"".join(raw).decode("iso-8859-1"))


def _joined(headers: "list[tuple[str, str]]", name: str) -> "str | None":
    """A header as ``requests`` sees it: every value of that name, joined with ``, `` (urllib3's HTTPHeaderDict)."""
    values = [v for k, v in headers if k.lower() == name]
    return ", ".join(values) if values else None


def _first(headers: "list[tuple[str, str]]", name: str) -> "str | None":
    """A header as ``http.client`` sees it: its first value."""
    from .mailheaders import first

    return first(headers, name)


def _content_length_check(headers: "list[tuple[str, str]]") -> None:
    """urllib3's ``HTTPResponse._init_length``: several unmatching ``Content-Length`` values are ``InvalidHeader``."""
    value = _joined(headers, "content-length")
    if value is None:
        return
    chunked = (_first(headers, "transfer-encoding") or "").lower() == "chunked"
    if chunked:
        return
    try:
        lengths = {int(v) for v in value.split(",")}
    except ValueError:
        return
    if len(lengths) > 1:
        raise _Failure("InvalidHeader", f"Content-Length contained multiple unmatching values ({value})")


def _read_body(reader: _Reader, headers: "list[tuple[str, str]]") -> None:
    """Read a redirect's body to its end as ``requests`` does (framing errors end it quietly)."""
    if (_first(headers, "transfer-encoding") or "").lower() == "chunked":
        while True:
            line = reader.readline(MAXLINE + 1)
            try:
                size = int(line.split(b";", 1)[0], 16)
            except ValueError:
                return  # urllib3: InvalidChunkLength, a ProtocolError that requests ignores here
            if size == 0:
                _header_lines(reader, counted=False)  # the trailer
                return
            if not reader.skip(size + 2):
                return
    length = _first(headers, "content-length")
    count: "int | None" = None
    if length is not None:
        try:
            count = int(length)
        except ValueError:
            count = None
        if count is not None and count < 0:
            count = None
    reader.skip(count)


def _after_redirect(location: str) -> None:
    """What ``requests`` does with a ``Location`` before it stops (it builds the request it would send next)."""
    url = location.encode("latin1").decode("utf8")  # UnicodeDecodeError, as requests raises it
    from urllib.parse import urlparse

    parsed = urlparse(url)  # ValueError for a broken IPv6 literal, as requests raises it
    if (os.environ.get("no_proxy") or os.environ.get("NO_PROXY")) and parsed.hostname and _ipv4(parsed.hostname) is None:
        parsed.port  # noqa: B018 - requests reads it (a ValueError for a port out of range)


def _connect(host: str, port: int, timeout: float) -> object:
    """urllib3's ``create_connection``: every address in turn, ``TCP_NODELAY``, each with ``timeout``."""
    import _socket as socket

    family = _cache.get("family")
    if not isinstance(family, int):
        family = socket.AF_INET
        if socket.has_ipv6:
            probe = None
            try:
                probe = socket.socket(socket.AF_INET6)
                probe.bind(("::1", 0))
                family = socket.AF_UNSPEC
            except Exception:  # noqa: BLE001 - urllib3's HAS_IPV6 probe
                pass
            finally:
                if probe is not None:
                    probe.close()
        _cache["family"] = family
    error: "OSError | None" = None
    for af, socktype, proto, _, address in socket.getaddrinfo(host.encode("ascii"), port, family, socket.SOCK_STREAM):
        sock = None
        try:
            sock = socket.socket(af, socktype, proto)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(timeout)
            sock.connect(address)
            return sock
        except OSError as exc:
            error = exc
            if sock is not None:
                sock.close()
    raise error if error is not None else OSError("getaddrinfo returns an empty list")


def _tls_context(verify: str) -> object:
    """urllib3 2's ``create_urllib3_context()`` with requests' CA bundle loaded."""
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_SSLv2 | ssl.OP_NO_SSLv3 | ssl.OP_NO_COMPRESSION | ssl.OP_NO_TICKET
    if sys.version_info >= (3, 13):
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN | ssl.VERIFY_X509_STRICT
    if getattr(context, "post_handshake_auth", None) is not None:
        context.post_handshake_auth = True
    context.verify_mode = ssl.CERT_REQUIRED
    context.check_hostname = True
    context.hostname_checks_common_name = False
    keylog = os.path.expandvars(os.environ["SSLKEYLOGFILE"]) if "SSLKEYLOGFILE" in os.environ else None
    if keylog:
        context.keylog_filename = keylog
    if os.path.isdir(verify):
        context.load_verify_locations(None, verify, None)
    else:
        context.load_verify_locations(verify, None, None)
    context.set_alpn_protocols(["http/1.1"])
    return context


def _tunnel(sock: object, budget: "transport.Budget", host: str, port: int) -> None:
    """``CONNECT host:port`` through the proxy, as urllib3 2 (and ``http.client``) ask for it."""
    if sys.version_info >= (3, 12):
        request = f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n"
    else:
        request = f"CONNECT {host}:{port} HTTP/1.0\r\n\r\n"
    sock.settimeout(budget.left(budget.deadline))  # type: ignore[attr-defined]
    sock.sendall(request.encode("ascii"))  # type: ignore[attr-defined]
    reader = _Reader(sock, budget)
    _, code, message = _status_line(reader)
    if sys.version_info >= (3, 12):
        _header_lines(reader)
        if code != 200:
            raise _Tunnel(f"Tunnel connection failed: {code} {message.strip()}")
    else:
        if code != 200:
            raise _Tunnel(f"Tunnel connection failed: {code} {message.strip()}")
        _header_lines(reader, counted=False)


def send(
    method: str,
    url: str,
    *,
    timeout: "float | tuple[float, float]",
    headers: "Mapping[str, str] | None" = None,
    body: "bytes | None" = None,
) -> "transport.Result | None":
    """Send a covered request as :func:`scarf_autoping.transport.send` would; None when not covered (nothing sent).

    Never raises otherwise: every failure is a :class:`~scarf_autoping.transport.Result`.
    """
    started = time.perf_counter()
    planned = plan(method, url, headers, body)
    if planned is None:
        return None
    try:
        status, retry_after = _exchange(planned, timeout)
        return transport.Result(status, None, (time.perf_counter() - started) * 1000, retry_after)
    except _Failure as failure:
        error = failure.describe()
    except Exception as exc:  # noqa: BLE001 - no network fault may reach the caller
        error = transport.describe_error(exc)
    return transport.Result(None, error, (time.perf_counter() - started) * 1000)


def _exchange(planned: Plan, timeout: "float | tuple[float, float]") -> "tuple[int, float | None]":
    """One exchange: ``(status, retry_after)``, or a :class:`_Failure` named as requests names it."""
    budget = transport.Budget(timeout)
    connect_value = float(timeout[0]) if isinstance(timeout, (tuple, list)) else float(timeout)
    read_value = float(timeout[1]) if isinstance(timeout, (tuple, list)) else float(timeout)
    https = planned.scheme == "https"
    host, port = planned.proxy if planned.proxy is not None else (planned.host, planned.port)
    caused = f"{planned.pool}: Max retries exceeded with url: {planned.target} (Caused by "
    read_timed_out = f"{planned.pool}: Read timed out. (read timeout={read_value})"

    def via_proxy(inner: str) -> str:
        return caused + f"ProxyError('Unable to connect to proxy', {inner}))"

    import _socket as socket

    # Connect: each address gets the connect timeout, never beyond the connect budget.
    wait = min(connect_value, max(0.001, budget.connect - time.monotonic()))
    try:
        sock = _connect(host, port, wait)
    except socket.gaierror as exc:
        inner = f"NameResolutionError(\"<connection>: Failed to resolve '{host}' ({exc})\")"
        raise _Failure("ProxyError" if planned.proxy else "ConnectionError",
                       via_proxy(inner) if planned.proxy else caused + inner + ")") from None
    except socket.timeout:
        inner = f"ConnectTimeoutError('<connection>', 'Connection to {host} timed out. (connect timeout={wait})')"
        raise _Failure("ProxyError" if planned.proxy else "ConnectTimeout",
                       via_proxy(inner) if planned.proxy else caused + inner + ")") from None
    except OSError as exc:
        inner = f"NewConnectionError('<connection>: Failed to establish a new connection: {exc}')"
        raise _Failure("ProxyError" if planned.proxy else "ConnectionError",
                       via_proxy(inner) if planned.proxy else caused + inner + ")") from None
    try:
        try:
            sock.settimeout(budget.left(budget.connect))  # type: ignore[attr-defined]
        except socket.timeout as exc:
            if planned.proxy is not None:
                raise _Failure("ProxyError", via_proxy(repr(exc))) from None
            if https:
                raise _Failure("ReadTimeout", read_timed_out) from None
            raise _aborted(exc) from None
        if https:
            sock = _secure(sock, planned, budget, read_timed_out)
        _write(sock, planned.head, budget)
        reader = _Reader(sock, budget)
        try:
            while True:
                version, status, _reason = _status_line(reader)
                if status != 100:
                    break
                _header_lines(reader)
            if not (version in ("HTTP/1.0", "HTTP/0.9") or version.startswith("HTTP/1.")):
                raise _BadHead(f"UnknownProtocol({version!r})")
            headers = parse_headers(_header_lines(reader))
        except socket.timeout:
            raise _Failure("ReadTimeout", read_timed_out) from None
        except _BadHead as exc:
            raise _Failure("ConnectionError", f"('Connection aborted.', {exc})") from None
        except OSError as exc:
            if _is_ssl(exc):
                raise _Failure("SSLError", caused + f"SSLError({exc!r}))") from None
            raise _aborted(exc) from None
        _content_length_check(headers)
        retry_after = transport.parse_retry_after(_joined(headers, "retry-after"))
        location = _joined(headers, "location")
        if status in REDIRECT_STATI and location is not None:
            try:
                _read_body(reader, headers)
            except socket.timeout:
                raise _Failure("ConnectionError", f"{planned.pool}: Read timed out.") from None
            except _BadHead:
                pass
            except OSError as exc:
                if _is_ssl(exc):
                    raise _Failure("SSLError", repr(exc)) from None
            _after_redirect(location)
        return status, retry_after
    finally:
        try:
            sock.close()  # type: ignore[attr-defined]
        except OSError:
            pass


def _secure(sock: object, planned: Plan, budget: "transport.Budget", read_timed_out: str) -> object:
    """Through the tunnel when there is a proxy, then the TLS handshake; failures named as requests names them."""
    import _socket as socket

    if planned.proxy is not None:
        try:
            _tunnel(sock, budget, planned.host, planned.port)
            sock.settimeout(budget.left(budget.connect))  # type: ignore[attr-defined]
        except socket.timeout:
            raise _Failure("ReadTimeout", read_timed_out) from None
        except _Tunnel as exc:
            raise _Failure("ProxyError", f"{planned.pool}: Max retries exceeded with url: {planned.target} "
                                         f"(Caused by ProxyError('Unable to connect to proxy', OSError({str(exc)!r})))"
                           ) from None
        except _BadHead as exc:
            raise _Failure("ConnectionError", f"('Connection aborted.', {exc})") from None
        except OSError as exc:
            raise _aborted(exc) from None
    caused = f"{planned.pool}: Max retries exceeded with url: {planned.target} (Caused by SSLError("
    try:
        context = _tls_context(planned.verify or "")
    except Exception as exc:  # noqa: BLE001 - urllib3 raises its SSLError for a bundle it cannot load
        raise _Failure("SSLError", caused + f"{exc!r}))") from None
    import socket as socket_module  # ssl wraps a socket.socket: the connection becomes one

    wait = sock.gettimeout()  # type: ignore[attr-defined]
    whole = socket_module.socket(sock.family, sock.type, sock.proto, fileno=sock.detach())  # type: ignore[attr-defined]
    whole.settimeout(wait)
    try:
        return context.wrap_socket(whole, server_hostname=planned.host)  # type: ignore[attr-defined]
    except socket.timeout:
        whole.close()
        raise _Failure("ReadTimeout", read_timed_out) from None
    except OSError as exc:
        whole.close()
        if _is_ssl(exc):
            raise _Failure("SSLError", caused + f"{exc!r}))") from None
        raise _aborted(exc) from None


def _write(sock: object, data: bytes, budget: "transport.Budget") -> None:
    """Send the request within the budget; a peer that closed already is found out when reading (as urllib3 does)."""
    import _socket as socket
    import errno

    try:
        sock.settimeout(budget.left(budget.deadline))  # type: ignore[attr-defined]
        sock.sendall(data)  # type: ignore[attr-defined]
    except BrokenPipeError:
        pass
    except OSError as exc:
        if _is_ssl(exc):
            raise _Failure("SSLError", repr(exc)) from None
        if isinstance(exc, socket.timeout) or exc.errno not in (errno.EPROTOTYPE, errno.ECONNRESET):
            raise _aborted(exc) from None
