"""The one place that touches ``requests``: send one HTTP request, never raise.

Imported only by the background worker (and the command line), never on the thread
that imports a host package: ``import requests`` costs tens of milliseconds.
"""

from __future__ import annotations

import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Mapping


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


def _no_auth(request: object) -> object:
    """An explicit no-op auth: stops ``requests`` from reading ``~/.netrc`` and sending its credentials."""
    return request


def warm_up() -> None:
    """Import everything :func:`send` needs, so nothing is imported lazily mid-request.

    The worker calls this while holding its import lock, so that a host forking at that
    moment waits instead of giving its child a half-held import lock.
    """
    import encodings.idna  # noqa: F401  - socket.getaddrinfo imports it lazily on first use
    import json  # noqa: F401  - events encode their body with it

    import requests  # noqa: F401
    import urllib3  # noqa: F401

    try:
        import idna  # noqa: F401  - requests imports it lazily for non-ASCII hosts
    except Exception:  # noqa: BLE001 - an odd platform means 'unknown', never an error
        pass


def send(
    method: str,
    url: str,
    *,
    timeout: float,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
) -> Result:
    """Send one request and return what happened; never raises.

    Redirects are not followed, the response body is never read (``stream=True`` and the
    connection is closed), proxies from the environment are honoured, ``~/.netrc`` is not
    consulted, and ``timeout`` bounds connecting and reading together (urllib3's total
    timeout). DNS resolution is not interruptible; callers bound their own waits.
    """
    started = time.perf_counter()
    response = None
    try:
        import requests
        from urllib3 import Timeout

        response = requests.request(
            method,
            url,
            headers=dict(headers or {}),
            data=body,
            timeout=Timeout(total=timeout),
            allow_redirects=False,
            stream=True,
            auth=_no_auth,
        )
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return Result(response.status_code, None, (time.perf_counter() - started) * 1000, retry_after)
    except Exception as exc:  # noqa: BLE001 - no network fault may reach the host program
        # Exception, not BaseException: Ctrl-C during a synchronous event must still
        # interrupt the caller. (On the worker thread, the worker catches everything.)
        return Result(None, _describe_error(exc), (time.perf_counter() - started) * 1000)
    finally:
        if response is not None:
            try:
                response.close()
            except Exception:  # noqa: BLE001
                pass


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


def _describe_error(exc: BaseException) -> str:
    """A short, path-free description of a failure (the exception class and its category)."""
    name = type(exc).__name__
    text = str(exc)
    for marker in ("timed out", "Connection refused", "Name or service not known", "CERTIFICATE_VERIFY_FAILED", "ProxyError"):
        if marker in text:
            return f"{name}: {marker}"
    return name
