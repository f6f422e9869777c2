"""One attempt at one ping or event, from its job spec to its outcome: written once.

Used by the detached sender (:mod:`scarf_autoping.sender`) and by the engine where the
host sends a ping itself (:mod:`scarf_autoping.engine`). A job spec is plain data (see
the sender's docstring); an attempt is two steps, so that the engine can hold its
import lock over the first only:

1. :func:`prepare`: imports, resolves the distribution name (the distribution's own
   opt-out variable may say no), computes the facts, asks the per-user state whether
   this process sends it (``once_per``, a back-off, a 410; it also sets ``{first_run}``,
   see :mod:`scarf_autoping.state`) and expands the template. No network. Returns a
   :class:`Request`, or the :class:`Outcome` of a ping that is off.
2. :func:`deliver`: one request, classified: ``sent`` on a 2xx or 3xx answer for a ping
   (2xx for an event), else ``failed`` with, when the failure is worth another attempt
   (network, timeout, 5xx, 429), the least seconds to wait (see :mod:`scarf_autoping.retry`);
   the state remembers the attempt (the record, the stamp, the back-off, a 410).

:func:`attempt` is both, and never raises. A prepared request that will not be
delivered (an exception between the steps) is given up with :func:`abandon`.
"""

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable, Mapping

    from .state import Ticket
    from .transport import Client, Result

#: The ``timeout`` of a spec that names none, in seconds.
DEFAULT_TIMEOUT = 3.0


class Request:
    """A prepared request: what :func:`deliver` sends, and how it reads the answer."""

    __slots__ = ("body", "event", "headers", "method", "remark", "spec", "ticket", "url")

    def __init__(self, method: str, url: str, headers: "dict[str, str]", body: "bytes | None",
                 remark: "str | None" = None, event: bool = False, spec: "Mapping[str, object] | None" = None,
                 ticket: "Ticket | None" = None) -> None:
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.remark = remark  # what resolving the name adds to the reason (see naming.note)
        self.event = event
        self.spec = spec  # a ping's spec, for the state to remember the attempt by
        self.ticket = ticket  # the state's answer for this attempt (see state.claim)


class Outcome:
    """What one attempt came to.

    ``status``: ``sent``, ``failed`` or ``disabled``; ``url``: the URL built (None for an
    event, whose URL may hold a password, and when none was built); ``retry``: None when
    the outcome is final, else the least seconds to wait before trying again.
    """

    __slots__ = ("reason", "retry", "status", "url")

    def __init__(self, status: str, reason: "str | None", url: "str | None" = None,
                 retry: "float | None" = None) -> None:
        self.status = status
        self.reason = reason
        self.url = url
        self.retry = retry

    def __repr__(self) -> str:
        return f"<Outcome {self.status} ({self.reason}) {self.url} retry={self.retry}>"


def timeout_of(spec: "Mapping[str, object]") -> float:
    """The seconds one attempt of ``spec`` may take (DNS aside)."""
    value = spec.get("timeout", DEFAULT_TIMEOUT)
    return float(value) if isinstance(value, (int, float)) else DEFAULT_TIMEOUT


def prepare(spec: "Mapping[str, object]") -> "Request | Outcome":
    """The request for ``spec``, or the outcome of a ping its distribution opts out of."""
    body = spec.get("body")
    encoded = body.encode("utf-8") if isinstance(body, str) else None
    if spec.get("event"):
        from .events import event_headers

        return Request("POST", str(spec["url"]), event_headers(), encoded, event=True)
    import os

    from . import facts, naming, transport
    from .template import expand, variable_names

    package = str(spec["package"])
    version = spec.get("version")
    version = version if isinstance(version, str) else None
    off, remark = naming.background(package, version is not None, os.environ)
    if off is not None:
        return Outcome("disabled", off)
    extra = spec.get("variables")
    interface = spec.get("interface")
    template = str(spec["template"])
    values = facts.variables(package, version, bool(spec.get("ci")), extra if isinstance(extra, dict) else None,
                             interface=interface if isinstance(interface, str) else None,
                             names=variable_names(template))  # only the facts the template uses
    ticket = None
    if spec.get("state"):
        from . import state

        ticket = state.claim(spec, values)  # once_per, a back-off, a 410; sets {first_run}
        if ticket.skip is not None:
            return Outcome("disabled", ticket.skip)
    try:
        url = expand(template, values)
    except BaseException:
        abandon(ticket)
        raise
    # Optional "headers" and "body" (a JSON text): a templated POST from `scarf-autoping send --detach`.
    headers = {"User-Agent": transport.user_agent()}
    more = spec.get("headers")
    if isinstance(more, dict):
        headers.update({str(k): str(v) for k, v in more.items()})
    method = spec.get("method")
    return Request(method if isinstance(method, str) else "GET", url, headers, encoded, remark, spec=spec,
                   ticket=ticket)


def abandon(prepared: "Request | Outcome | Ticket | None") -> None:
    """Give up a prepared request without sending it: its claim in the state is let go."""
    ticket = prepared.ticket if isinstance(prepared, Request) else prepared
    if ticket is not None and not isinstance(ticket, Outcome):
        from . import state

        state.release(ticket)


def deliver(
    request: Request,
    timeout: "float | tuple[float, float]",
    client: "Client | None" = None,
    observe: "Callable[[Result], None] | None" = None,
) -> Outcome:
    """Send ``request`` (on ``client``'s pool, else a connection of its own) and classify the answer.

    ``observe`` sees the raw result first (an event logger's ``verbose`` output).
    """
    from . import naming, retry, transport

    send = client.send if client is not None else transport.send
    result = send(request.method, request.url, timeout=timeout, headers=request.headers, body=request.body)
    if request.ticket is not None and request.spec is not None:
        from . import state

        state.after_attempt(request.spec, request.ticket, result.status_code, request.url, delivered=result.delivered,
                            outcome=result.describe(), retry_after=result.retry_after)
    if observe is not None:
        observe(result)
    reason: "str | None"
    if request.event:
        good, reason, url = result.ok, result.describe(), None
    else:
        good, reason, url = result.delivered, naming.with_remark(result.describe(), request.remark), request.url
    if good:
        return Outcome("sent", reason, url)
    return Outcome("failed", reason, url, retry.retryable(result.status_code, result.retry_after))


def attempt(spec: "Mapping[str, object]") -> Outcome:
    """One attempt at ``spec``: :func:`prepare`, then :func:`deliver`. Never raises."""
    url = None
    prepared: "Request | Outcome | None" = None
    try:
        prepared = prepare(spec)
        if isinstance(prepared, Outcome):
            return prepared
        url = None if prepared.event else prepared.url
        return deliver(prepared, timeout_of(spec))
    except BaseException as exc:  # noqa: BLE001 - one bad job must not stop the others
        abandon(prepared)
        return Outcome("failed", type(exc).__name__, url)
