"""Event logging: a drop-in replacement for the Scarf Python SDK's ``ScarfEventLogger``.

Authors who already use ``from scarf import ScarfEventLogger`` (PyPI ``scarf-sdk``) switch
by changing only the import. Each :meth:`ScarfEventLogger.log_event` call sends the
properties as a JSON body in one HTTP POST to the author's endpoint and answers
``True`` (the endpoint answered 2xx) or ``False`` (opted out, or delivery failed).

What differs from the SDK, on purpose:

* Network faults and non-2xx answers never raise: they return ``False``.
* Opt-outs are read by :mod:`scarf_autoping.policy`, the same code as ``autoping``:
  ``DO_NOT_TRACK``, ``SCARF_NO_ANALYTICS`` (any value but empty/0/false/no/off) and
  ``SCARF_ANALYTICS=false``. Events are not skipped in CI and not limited to one per
  process: the author decides when an event happens.
* ``background=True`` hands the event to the shared background worker and returns a
  :class:`~scarf_autoping.Ping` at once; it is still delivered at interpreter exit
  within ``exit_timeout``.
* ``timeout`` is a deadline for the whole exchange (DNS aside), not per socket read; a
  ``(connect, read)`` pair keeps ``requests``' meaning and is bounded by its sum.

Each logger keeps its own pool of keep-alive connections (:class:`transport.Client`):
no cookies, no ``~/.netrc``, safe across threads, never shared with a forked child.
See docs/events.md for every difference from the SDK and why.

This module is imported on first use of ``scarf_autoping.ScarfEventLogger``. It imports
``json`` at module level but never ``requests``: :mod:`scarf_autoping.transport` does
that, on the calling thread for a synchronous event, on the worker for a background one.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping

from . import policy

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover

    from . import Ping
    from .transport import Result

__all__ = ["ScarfEventLogger"]

#: ``SCARF_VERBOSE`` switches verbose output on, as in the SDK (only ``1`` or ``true``).
VERBOSE = "SCARF_VERBOSE"

_user_agent_cache: str | None = None


def _platform_name(system: str) -> str:
    """The SDK's platform spelling in its User-Agent: ``linux``, ``macOS``, ``windows``, else lower case."""
    if system == "Darwin":
        return "macOS"
    return system.lower() or "unknown"


def event_headers() -> dict[str, str]:
    """The headers of every event: JSON, and the SDK's User-Agent shape.

    ``scarf-autoping/<version> (platform=<os>; arch=<arch>; python=<x.y.z>)``: the shape of
    the SDK's ``scarf-py/<version> (...)`` header as its source writes it today (0.2.1 as
    published separates ``python=`` with a comma; the source normalised the delimiter to
    ``;``). Computed once per process: ``platform`` answers from ``os.uname()`` and ``sys``
    without starting any subprocess.
    """
    global _user_agent_cache
    if _user_agent_cache is None:
        from . import transport

        try:
            import platform

            detail = (
                f"platform={_platform_name(platform.system())}; "
                f"arch={platform.machine() or 'unknown'}; python={platform.python_version()}"
            )
        except Exception:  # noqa: BLE001 - an odd platform loses the detail, never the event
            detail = None
        _user_agent_cache = transport.user_agent(detail)
    return {"Content-Type": "application/json", "User-Agent": _user_agent_cache}


def _check_timeout(name: str, value: object) -> float | tuple[float, float]:
    """The library's one timeout rule, with the SDK's ``(connect, read)`` pair allowed too."""
    from . import check_seconds

    return check_seconds(value, name, pair_ok=True, who="ScarfEventLogger")


def _check_endpoint(endpoint_url: object) -> str:
    """An http(s) URL with a host, without surrounding whitespace and trailing ``/``; ``ValueError`` otherwise.

    Credentials in the URL (``https://user:password@host/...``) are kept: they are sent
    as Basic auth, as the SDK (``requests``) sends them.
    """
    if not endpoint_url:
        raise ValueError("ScarfEventLogger: endpoint_url must be provided")
    if not isinstance(endpoint_url, str):
        raise ValueError(  # noqa: TRY004 - the SDK's contract: a bad endpoint_url is a ValueError
            f"ScarfEventLogger: endpoint_url must be a string, got {type(endpoint_url).__name__}"
        )
    url = endpoint_url.strip().rstrip("/")
    from urllib.parse import urlsplit

    try:
        split = urlsplit(url)
        host = split.hostname
        split.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError:
        host = None
        split = None
    if (split is None or split.scheme.lower() not in ("http", "https") or not host
            or any(ch.isspace() or ord(ch) < 0x20 for ch in url)):
        raise ValueError(f"ScarfEventLogger: endpoint_url must be an http:// or https:// URL with a host, "
                         f"got {_shown(endpoint_url)!r}")
    return url


def _shown(url: str) -> str:
    """``url`` with the password of ``user:password@`` replaced by ``***``, for output and reprs."""
    from .template import split_userinfo

    parts = split_userinfo(url)
    if parts is None:
        return url
    start, userinfo, rest = parts
    user, colon, _ = userinfo.partition(":")
    return f"{start}{user}{':***' if colon else ''}@{rest}"


def encode_properties(properties: object) -> bytes:
    """The JSON body for ``properties``: UTF-8, non-ASCII kept as is, nested values allowed.

    Raises ``TypeError`` at the caller, before anything is sent, when ``properties`` is
    not a mapping or holds something JSON cannot represent: a set, bytes, an object,
    NaN or infinity (not valid JSON), a circular reference.
    """
    if not isinstance(properties, Mapping):
        raise TypeError(f"log_event: properties must be a dict, got {type(properties).__name__}")
    if not isinstance(properties, dict):
        properties = dict(properties)
    try:
        return json.dumps(properties, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except ValueError as exc:  # NaN/infinity, circular references: still "cannot be serialised"
        raise TypeError(f"log_event: properties cannot be serialised to JSON: {exc}") from exc


def _opted_out() -> str | None:
    """Why this user's events are off, or None: an opt-out variable, or the saved
    ``scarf-autoping disable`` (the rule for every package: an event has no package).
    The rules :func:`scarf_autoping.policy.decide` applies first; CI does not stop events."""
    decision = policy.decide(os.environ, None, skip_ci=False)
    return None if decision.enabled else decision.reason


def _disabled_line(reason: str) -> str:
    """The SDK's verbose line for an event not sent: its own words for a variable."""
    prefix = "opted out by "
    if reason.startswith(prefix):
        return f"Analytics are disabled via environment variables ({reason[len(prefix):]})"
    return f"Analytics are disabled: {reason}"


def _say(*lines: str, on_worker: bool = False) -> None:
    """Write verbose lines to stderr in one write (only ever called when verbose).

    From the background worker, through :func:`output.write_stderr`, which cannot
    abort interpreter exit when stderr is a full pipe.
    """
    text = "".join(line + "\n" for line in lines)
    if on_worker:
        from .output import write_stderr

        write_stderr(text)
        return
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except Exception:  # noqa: BLE001 - a closed stderr is not the caller's problem
        pass


class ScarfEventLogger:
    """Send telemetry events to a Scarf endpoint, with the Scarf Python SDK's interface.

    Attributes:
        endpoint_url: the endpoint, without surrounding whitespace and trailing ``/``.
        timeout: default timeout for one event: seconds for the whole exchange, or the
            SDK's ``(connect, read)`` pair (bounded by its sum).
        verbose: print what is sent and what came of it on stderr.
        exit_timeout: the most interpreter exit waits for one background event in flight
            (never more than that event's own timeout).
    """

    #: The SDK's default, kept: seconds for one event.
    DEFAULT_TIMEOUT = 3.0
    #: The default bound on how long interpreter exit waits for background events, as for ``autoping``.
    DEFAULT_EXIT_TIMEOUT = 1.0

    def __init__(
        self,
        endpoint_url: str,
        timeout: float | tuple[float, float] | None = None,
        verbose: bool | None = None,
        *,
        exit_timeout: float | None = None,
    ) -> None:
        """Check the arguments; nothing is sent and nothing heavy is imported.

        Args:
            endpoint_url: an ``http://`` or ``https://`` URL; surrounding whitespace and a
                trailing ``/`` are removed. ``user:password@`` in it is sent as Basic auth.
            timeout: default per event (default 3.0, as in the SDK): seconds for the whole
                exchange, DNS aside, or a ``(connect, read)`` pair.
            verbose: print to stderr; ``None`` follows ``SCARF_VERBOSE`` (``1``/``true``).
            exit_timeout: the most interpreter exit waits for a background event (default 1.0).

        Raises:
            ValueError: empty or missing ``endpoint_url``, a URL that is not http(s) with a
                host, or a timeout that is neither seconds > 0 nor a pair of them.
        """
        from . import transport

        self.endpoint_url = _check_endpoint(endpoint_url)
        self.timeout = self.DEFAULT_TIMEOUT if timeout is None else _check_timeout("timeout", timeout)
        if exit_timeout is None:
            self.exit_timeout = self.DEFAULT_EXIT_TIMEOUT
        elif isinstance(_check_timeout("exit_timeout", exit_timeout), tuple):
            raise ValueError(f"ScarfEventLogger: exit_timeout must be a number of seconds > 0 and at most "
                             f"3600, got {exit_timeout!r}")
        else:
            self.exit_timeout = exit_timeout
        if verbose is None:
            verbose = os.environ.get(VERBOSE, "").strip().lower() in ("1", "true")
        self.verbose = bool(verbose)
        # One keep-alive pool per logger, closed when the logger goes (or at exit).
        self._client = transport.Client()
        import weakref

        self._finalizer = weakref.finalize(self, self._client.close)
        if self.verbose:
            _say(
                "Scarf Logger Configuration:",
                f"  Endpoint URL: {_shown(self.endpoint_url)}",
                f"  Timeout: {self.timeout}s",
                f"  User-Agent: {event_headers()['User-Agent']}",
            )

    def __repr__(self) -> str:
        return f"ScarfEventLogger(endpoint_url={_shown(self.endpoint_url)!r}, timeout={self.timeout!r})"

    def close(self) -> None:
        """Close the logger's pooled connections now (they are also closed when it is collected)."""
        self._client.close()

    def __enter__(self) -> ScarfEventLogger:  # noqa: PYI034 - typing.Self needs 3.11
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _check_do_not_track() -> bool:
        """True when the user opted out (the SDK's helper, answered by :func:`_opted_out`)."""
        return _opted_out() is not None

    def log_event(
        self,
        properties: Mapping[str, object],
        timeout: float | tuple[float, float] | None = None,
        *,
        background: bool = False,
    ) -> bool | Ping:
        """Send ``properties`` as a JSON body in one POST to :attr:`endpoint_url`.

        Args:
            properties: a dict of JSON-serialisable values (nested dicts and lists allowed;
                ``{}`` sends ``{}``). It is serialised at the call, so later changes to it
                do not change what is sent.
            timeout: for this event, instead of :attr:`timeout`: seconds for the whole
                exchange (DNS aside), or a ``(connect, read)`` pair.
            background: return a :class:`~scarf_autoping.Ping` at once and send from the
                shared background worker; delivered at interpreter exit within
                :attr:`exit_timeout`.

        Returns:
            ``True`` when the endpoint answered 2xx; ``False`` when opted out or when
            delivery failed for any reason (refused, timed out, DNS, TLS, non-2xx).
            With ``background=True``, a ``Ping`` (``.wait()``, ``.status``): ``sent``,
            ``failed``, or ``disabled`` when opted out.

        Raises:
            TypeError: ``properties`` is not a dict or holds something JSON cannot represent
                (NaN or infinity and circular references included).
            ValueError: a bad ``timeout``.

        Network faults never raise, unlike the SDK. Opt-outs are checked at each call,
        after the properties: a mistake in them raises even for users who opted out.
        """
        body = encode_properties(properties)
        seconds = self.timeout if timeout is None else _check_timeout("timeout", timeout)
        reason = _opted_out()
        if background:
            return self._submit(properties, body, seconds, reason)
        if reason is not None:
            if self.verbose:
                _say(_disabled_line(reason))
            return False
        if self.verbose:
            self._say_sending(properties, seconds, "Sending event:")
        result = self._client.send("POST", self.endpoint_url, timeout=seconds, headers=event_headers(), body=body)
        if self.verbose:
            _say_result(result)
        return result.ok

    def _say_sending(self, properties: Mapping[str, object], seconds: object, title: str) -> None:
        _say(
            title,
            f"  Endpoint URL: {_shown(self.endpoint_url)}",
            f"  Properties: {properties!r}",
            f"  Timeout: {seconds}s",
        )

    def _submit(self, properties: Mapping[str, object], body: bytes, seconds: float | tuple[float, float],
                reason: str | None) -> Ping:
        """Queue one event on the shared worker; a ``disabled`` Ping when opted out."""
        from . import Ping, host
        from .output import debug as write_debug
        from .transport import total_seconds

        label = _label(properties)
        env = os.environ
        debug = policy.debug_enabled(env)
        if reason is not None:
            if self.verbose:
                _say(_disabled_line(reason))
            if debug:
                write_debug(f"{label}: disabled ({reason})")
            return Ping.disabled(label, reason)
        if not host.main_interpreter():
            return Ping.disabled(label, "in a sub-interpreter: background events need the main interpreter")
        if self.verbose:
            self._say_sending(properties, seconds, "Sending event in the background:")
        from . import engine

        total = total_seconds(seconds)
        ping = Ping(label, min(self.exit_timeout, total))
        ping.url = _shown(self.endpoint_url)
        # A detached sender (what is left at exit) gets the whole-exchange bound: its job
        # format takes seconds, and connect + read is what the pair allows at most.
        spec = {"method": "POST", "url": self.endpoint_url, "body": body.decode("utf-8"), "timeout": total,
                "event": True}
        # While the program runs, events go out from its worker thread (they are many, and
        # a process each would cost more than the send) on the logger's pool, with its own
        # timeout pair; what is left at exit is handed over.
        observe = _on_worker_result if self.verbose else None
        engine.submit(engine.Job(ping, spec, detach=False, debug=debug, timeout=seconds, client=self._client,
                                 observe=observe))
        return ping


def _label(properties: Mapping[str, object]) -> str:
    """A name for the background handle: the ``event`` property when it is a string, else ``event``."""
    name = properties.get("event")
    return name if isinstance(name, str) and name.strip() else "event"


def _on_worker_result(result: Result) -> None:
    """The ``verbose`` lines of a background event, written from our thread."""
    _say_result(result, on_worker=True)


def _say_result(result: Result, on_worker: bool = False) -> None:
    """``Response received in N ms`` and the status, or ``Error after N ms`` and the error."""
    ms = round(result.elapsed_ms)
    if result.status_code is not None:
        _say(f"Response received in {ms} ms:", f"  Status: {result.status_code}", on_worker=on_worker)
    else:
        _say(f"Error after {ms} ms:", f"  {result.error}", on_worker=on_worker)

