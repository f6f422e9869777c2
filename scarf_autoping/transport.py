"""The one place that touches ``requests``: send one HTTP request, never raise.

Imported only by the background worker, the detached sender, the event logger and the
command line, never on the thread that imports a host package: ``import requests`` costs
tens of milliseconds.

**A deadline that holds.** ``requests`` (through urllib3) applies its timeout to each
socket operation: a server that sends one byte of its answer every half second keeps a
"1 second" request going for as long as it likes. Here the timeout is a deadline for the
whole exchange, DNS resolution aside (no Python HTTP client can interrupt
``getaddrinfo``). It is kept without a thread or a signal: the urllib3 connection
classes used here (see :class:`_DeadlineConnection`) set the socket's timeout to the
time that is left before every step — the TCP connect, the proxy's ``CONNECT``, the TLS
handshake (which CPython bounds as a whole by the socket timeout), every send — and the
response is read through a file whose every ``recv`` gets the time left, so the status
line and headers (read inside ``http.client``) cannot be trickled past the deadline
either. The deadline lives in a thread-local, set by :meth:`Client.send` around one
request.

**Connection reuse.** A :class:`Client` keeps a pool (HTTP keep-alive) for the event
logger: one TCP (and TLS) connection serves many events. No cookies are kept between
requests, ``~/.netrc`` is never read, and the pool belongs to one process: after a fork
the child starts a pool of its own and never touches the parent's sockets (or their
locks). :func:`send`, used for pings, opens one connection and closes it.
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    import socket
    import threading
    from collections.abc import Iterable, Mapping
    from typing import Any, TypedDict, Union

    import requests
    import requests.adapters
    from _typeshed import ReadableBuffer, SupportsRead, WriteableBuffer

    class _Machinery(TypedDict):
        """What :func:`_machinery` builds once per process."""

        local: threading.local  # its ``budget``: the :class:`Budget` of the request on this thread
        Adapter: type[requests.adapters.HTTPAdapter]

    #: What ``http.client.HTTPConnection.send`` takes.
    _Sendable = Union[ReadableBuffer, SupportsRead[bytes], Iterable[ReadableBuffer], str]

#: Bytes of a response body read so that its connection can be reused; a longer body
#: closes the connection instead (a ping or an event never needs the body).
DRAIN_LIMIT = 65536


class Result:
    """What became of one request: ``status_code`` when the server answered, else ``error``.

    ``retry_after``: the seconds a ``Retry-After`` header asked for, when there was one.
    """

    __slots__ = ("elapsed_ms", "error", "retry_after", "status_code")

    def __init__(
        self, status_code: int | None, error: str | None, elapsed_ms: float, retry_after: float | None = None
    ) -> None:
        self.status_code = status_code
        self.error = error
        self.elapsed_ms = elapsed_ms
        self.retry_after = retry_after

    @property
    def delivered(self) -> bool:
        """A GET counts as delivered on any 2xx or 3xx answer (redirects are not followed)."""
        return self.status_code is not None and 200 <= self.status_code < 400

    @property
    def ok(self) -> bool:
        """True on a 2xx answer (what an event POST needs)."""
        return self.status_code is not None and 200 <= self.status_code < 300

    def describe(self) -> str:
        """``HTTP 204`` or the error, for ``Ping.reason`` and debug lines."""
        return f"HTTP {self.status_code}" if self.status_code is not None else (self.error or "failed")

    def __repr__(self) -> str:
        return f"<Result {self.describe()} {self.elapsed_ms:.1f} ms>"


def user_agent(detail: str | None = None) -> str:
    """``scarf-autoping/<version>``, with ``detail`` in parentheses when given."""
    from . import __version__

    base = f"scarf-autoping/{__version__}"
    return f"{base} ({detail})" if detail else base


def _no_auth(request: requests.PreparedRequest) -> requests.PreparedRequest:
    """An explicit no-op auth: stops ``requests`` from reading ``~/.netrc`` and sending its credentials."""
    return request


#: Set by the detached sender (``warm_up(light=True)``): :func:`send` then sends what
#: :mod:`scarf_autoping.light` covers (a ping's ``GET``) without ``requests``.
_light = [False]


def warm_up(light: bool = False) -> None:
    """Import everything :func:`send` needs, so nothing is imported lazily mid-request.

    The worker calls this while holding its import lock, so that a host forking at that
    moment waits instead of giving its child a half-held import lock.

    ``light`` (the detached sender only, a process of ours where nothing forks): from now
    on :func:`send` sends the requests :mod:`scarf_autoping.light` covers itself, and
    ``requests`` is imported only when a request needs it (an event, a proxy it does not
    cover), on the job's own thread; and ``distro`` is imported lean
    (:func:`scarf_autoping.facts.lean`).
    """
    if light:
        from . import facts
        from . import light as light_client

        light_client.warm_up()
        facts.lean()
        _light[0] = True
        return
    import encodings.idna  # noqa: F401  - socket.getaddrinfo imports it lazily on first use
    import json  # noqa: F401  - events encode their body with it

    import requests  # noqa: F401
    import urllib3  # noqa: F401

    _machinery()
    try:
        import idna  # noqa: F401  - requests imports it lazily for non-ASCII hosts
    except Exception:  # noqa: BLE001 - an odd platform means 'unknown', never an error
        pass


# --- timeouts -------------------------------------------------------------------------


def total_seconds(timeout: float | tuple[float, float]) -> float:
    """The most seconds an exchange with ``timeout`` may take (DNS aside): ``connect + read`` for a pair."""
    if isinstance(timeout, (tuple, list)):
        return float(timeout[0]) + float(timeout[1])
    return float(timeout)


class Budget:
    """The deadlines of the request running on this thread (monotonic seconds).

    ``connect``: by when connecting (TCP, proxy tunnel, TLS handshake) must be done.
    ``deadline``: by when the whole exchange must be done. ``read``: the most one wait for
    the server may take (``requests``' read timeout), never beyond ``deadline``.
    """

    __slots__ = ("connect", "deadline", "read")

    def __init__(self, timeout: float | tuple[float, float]) -> None:
        now = time.monotonic()
        if isinstance(timeout, (tuple, list)):
            self.connect = now + float(timeout[0])
            self.read: float | None = float(timeout[1])
        else:
            self.connect = now + float(timeout)
            self.read = None
        self.deadline = now + total_seconds(timeout)

    def left(self, until: float) -> float:
        """Seconds left before ``until``; a timeout (``socket.timeout``) once it has passed."""
        left = until - time.monotonic()
        if left <= 0:
            import socket

            raise socket.timeout("timed out (deadline)")
        return left

    def for_recv(self) -> float:
        left = self.left(self.deadline)
        return left if self.read is None else min(left, self.read)


_machinery_cache: dict[str, _Machinery] = {}


def _machinery() -> _Machinery:
    """The classes that keep the deadline, built once (they subclass urllib3 and requests)."""
    built = _machinery_cache.get("built")
    if built is not None:
        return built
    import http.client
    import io
    import threading

    import requests
    import requests.adapters
    import urllib3
    from urllib3 import connection as u3connection
    from urllib3 import connectionpool

    local = threading.local()

    def budget() -> Budget | None:
        plan: Budget | None = getattr(local, "budget", None)
        return plan

    class _DeadlineFile(io.RawIOBase):
        """The response's raw stream: every ``recv`` waits at most the time left."""

        def __init__(self, raw: io.RawIOBase, sock: socket.socket, plan: Budget) -> None:
            super().__init__()
            self._raw = raw
            self._sock = sock
            self._plan = plan

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: WriteableBuffer) -> int | None:
            self._sock.settimeout(self._plan.for_recv())
            return self._raw.readinto(buffer)

        def close(self) -> None:
            if not self.closed:
                try:
                    self._raw.close()
                finally:
                    super().close()

    class _SocketView:
        """What ``http.client.HTTPResponse`` asks of a socket: ``makefile`` (deadline-bound)."""

        def __init__(self, sock: socket.socket, plan: Budget) -> None:
            self._sock = sock
            self._plan = plan

        def makefile(self, mode: str = "rb", *args: object, **kwargs: object) -> io.BufferedReader:
            raw = self._sock.makefile("rb", buffering=0)
            return io.BufferedReader(_DeadlineFile(raw, self._sock, self._plan))

    class _DeadlineResponse(http.client.HTTPResponse):
        """``http.client``'s response, reading its head and body against the deadline.

        Also used for a proxy's answer to ``CONNECT`` (``http.client`` builds that one
        from ``response_class`` too).
        """

        def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
            plan = budget()
            # _SocketView is no socket, but has all http.client asks of one: makefile().
            view: Any = _SocketView(sock, plan) if plan is not None else sock
            super().__init__(view, *args, **kwargs)

    class HTTPConnection(u3connection.HTTPConnection):
        """Arms the socket with the time left before each step of the exchange.

        Also the first base of :class:`HTTPSConnection`, before urllib3's (so its methods
        come first, and their ``super()`` is urllib3's HTTPS connection).
        """

        response_class = _DeadlineResponse

        def _new_conn(self) -> socket.socket:
            plan = budget()
            if plan is not None:
                left = max(0.001, plan.connect - time.monotonic())
                current = self.timeout
                self.timeout = left if not isinstance(current, (int, float)) else min(current, left)
            sock = super()._new_conn()
            if plan is not None:
                sock.settimeout(plan.left(plan.connect))  # the TLS handshake's bound as a whole
            return sock

        def _tunnel(self) -> None:
            super()._tunnel()
            plan = budget()
            if plan is not None and self.sock is not None:
                self.sock.settimeout(plan.left(plan.connect))

        def send(self, data: _Sendable) -> None:
            plan = budget()
            if plan is not None and self.sock is not None:
                self.sock.settimeout(plan.left(plan.deadline))
            super().send(data)

    class HTTPSConnection(HTTPConnection, u3connection.HTTPSConnection):
        pass

    class HTTPConnectionPool(connectionpool.HTTPConnectionPool):
        ConnectionCls = HTTPConnection

    class HTTPSConnectionPool(connectionpool.HTTPSConnectionPool):
        ConnectionCls = HTTPSConnection

    pools = {"http": HTTPConnectionPool, "https": HTTPSConnectionPool}

    class Adapter(requests.adapters.HTTPAdapter):
        """``requests``' adapter with our connection classes, direct and through HTTP(S) proxies."""

        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)  # type: ignore[no-untyped-call]  # untyped in types-requests
            self.poolmanager.pool_classes_by_scheme = pools

        def proxy_manager_for(self, proxy: str, **kwargs: Any) -> urllib3.PoolManager:
            manager: urllib3.PoolManager = super().proxy_manager_for(proxy, **kwargs)  # type: ignore[no-untyped-call]  # idem
            if isinstance(manager, urllib3.PoolManager) and not proxy.lower().startswith("socks"):
                manager.pool_classes_by_scheme = pools
            return manager

    # Two threads building at once: one set wins (setdefault is atomic), and everyone uses
    # it, so a session's classes and the thread-local that carries the deadline always match.
    return _machinery_cache.setdefault("built", {"local": local, "Adapter": Adapter})


# --- the client -----------------------------------------------------------------------


def _new_session() -> requests.Session:
    """A ``requests.Session`` with our adapter, environment proxies and CA bundles, no cookies kept."""
    import http.cookiejar

    import requests

    session = requests.Session()
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))  # no cookie is ever kept
    adapter = _machinery()["Adapter"]()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


#: Sessions a forked child inherited: never used, never closed (their locks may be held
#: by a thread that exists only in the parent), kept so their sockets are not collected
#: (and reported as unclosed) in the child.
_inherited: list[requests.Session] = []


class Client:
    """A pool of keep-alive connections for one user (an event logger); safe across threads and forks.

    The pool is made on first use and belongs to the process that made it: a forked child
    (``os.fork``, multiprocessing, uWSGI workers) makes a pool of its own.
    """

    __slots__ = ("__weakref__", "_state")

    def __init__(self) -> None:
        self._state: tuple[int, requests.Session] | None = None

    def _session(self) -> requests.Session:
        pid = os.getpid()
        state = self._state
        if state is not None and state[0] == pid:
            return state[1]
        if state is not None:
            _inherited.append(state[1])
        session = _new_session()
        self._state = (pid, session)  # two threads racing here: the loser's session is closed after use
        return session

    def send(
        self,
        method: str,
        url: str,
        *,
        timeout: float | tuple[float, float],
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        keep_alive: bool = True,
    ) -> Result:
        """Send one request within ``timeout`` (a deadline; see the module) and never raise.

        Redirects are not followed, proxies and CA bundles from the environment are
        honoured, ``~/.netrc`` is not consulted; credentials written in ``url``
        (``user:password@``) are sent as Basic auth. With ``keep_alive`` a short body is
        read so that the connection goes back to the pool; otherwise it is never read and
        the connection is closed.
        """
        started = time.perf_counter()
        response: requests.Response | None = None
        local: threading.local | None = None
        session: requests.Session | None = None
        try:
            machinery = _machinery()
            local = machinery["local"]
            from requests.utils import get_auth_from_url

            session = self._session()
            user, password = get_auth_from_url(url)
            auth = (user, password) if user or password else _no_auth
            plan = Budget(timeout)
            local.budget = plan
            # requests makes urllib3's Timeout(connect=, read=) of a pair, or of one number for both.
            if isinstance(timeout, (tuple, list)):
                seconds: float | tuple[float, float] = (float(timeout[0]), float(timeout[1]))
            else:
                seconds = float(timeout)
            response = session.request(
                method,
                url,
                headers=dict(headers or {}),
                data=body,
                timeout=seconds,
                allow_redirects=False,
                stream=True,
                auth=auth,
            )
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            result = Result(response.status_code, None, (time.perf_counter() - started) * 1000, retry_after)
            if keep_alive:
                _drain(response)
            return result
        except Exception as exc:  # noqa: BLE001 - no network fault may reach the host program
            # Exception, not BaseException: Ctrl-C during a synchronous event must still
            # interrupt the caller. (On the worker thread, the worker catches everything.)
            return Result(None, describe_error(exc), (time.perf_counter() - started) * 1000)
        finally:
            if local is not None:
                local.budget = None
            if response is not None:
                try:
                    response.close()  # back to the pool when drained, else the connection is closed
                except Exception:  # noqa: BLE001
                    pass
            if session is not None and (not keep_alive or self._state is None or self._state[1] is not session):
                self._close_session(session)

    def _close_session(self, session: requests.Session) -> None:
        try:
            session.close()
        except Exception:  # noqa: BLE001
            pass

    def close(self) -> None:
        """Close the pooled connections (in the process that opened them; a child only forgets them)."""
        state, self._state = self._state, None
        if state is None:
            return
        if state[0] == os.getpid():
            self._close_session(state[1])
        else:
            _inherited.append(state[1])


def _drain(response: requests.Response) -> None:
    """Read a short body to its end so the connection can be reused; give up on a long one."""
    try:
        length = response.headers.get("Content-Length")
        if length is not None and (not length.strip().isdigit() or int(length) > DRAIN_LIMIT):
            return  # closed by response.close(): not worth reading
        seen = 0
        for chunk in response.iter_content(16384):
            seen += len(chunk)
            if seen > DRAIN_LIMIT:
                return
    except Exception:  # noqa: BLE001 - the answer is known; a broken body only costs the connection
        pass


def send(
    method: str,
    url: str,
    *,
    timeout: float | tuple[float, float],
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
) -> Result:
    """Send one request on a connection of its own and return what happened; never raises.

    Redirects are not followed, the response body is never read (the connection is
    closed), proxies from the environment are honoured, ``~/.netrc`` is not consulted,
    and ``timeout`` bounds the whole exchange, DNS resolution aside (callers bound their
    own waits). See :meth:`Client.send`.

    In the detached sender (see :func:`warm_up`), a request :mod:`scarf_autoping.light`
    covers is sent by it instead, with the same outcome.
    """
    if _light[0]:
        from . import light

        result = light.send(method, url, timeout=timeout, headers=headers, body=body)
        if result is not None:
            return result
    return Client().send(method, url, timeout=timeout, headers=headers, body=body, keep_alive=False)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date; None if absent or odd."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        from email.utils import parsedate_to_datetime

        when = parsedate_to_datetime(value)
        if when is None or when.tzinfo is None:
            return None
        return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def describe_error(exc: BaseException) -> str:
    """A short, path-free description of a failure (the exception class and its category)."""
    name = type(exc).__name__
    text = str(exc)
    if name == "SSLError" or "SSLError" in text:
        # "SSLError" alone explains nothing: say what usually causes it, in words.
        if "CERTIFICATE_VERIFY_FAILED" in text:
            return "TLS handshake failed: the server's certificate is not trusted (CERTIFICATE_VERIFY_FAILED)"
        if "WRONG_VERSION_NUMBER" in text or "record layer failure" in text:
            return "TLS handshake failed: is this an https URL on a plain-HTTP port?"
        return "TLS handshake failed: is this an https URL on a plain-HTTP port, or a certificate that is not trusted?"
    for marker in ("timed out", "Connection refused", "Name or service not known", "CERTIFICATE_VERIFY_FAILED", "ProxyError"):
        if marker in text:
            return f"{name}: {marker}"
    return name
