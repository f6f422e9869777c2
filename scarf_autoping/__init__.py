"""scarf-autoping: one line in a package's ``__init__.py`` to measure its adoption.

    from scarf_autoping import autoping; autoping("my-package", "https://my-package.gateway.scarf.sh/t/{package}/{version}/{platform}/{python}/{arch}/{distro}")

On import of the host package, one HTTP GET per process is sent to the author's endpoint,
after a deferral and by a detached sender process (see :mod:`scarf_autoping.worker`).
Importing the host package stays fast and silent; users opt out with ``DO_NOT_TRACK=1``,
``SCARF_NO_ANALYTICS=1`` or ``<PACKAGE>_NO_ANALYTICS=1``.

This module is on the host's import path, so it imports only what it must: ``requests``,
``distro`` and ``importlib.metadata`` are imported by the detached sender (or, where
there can be none, by the background worker), never on the importing thread.

On the host's import path: no ``from __future__ import annotations`` (importing
``__future__`` costs the host about 0.1 ms), so annotations that need it are strings.
"""

import os
import sys
from _thread import RLock

from . import policy
from .facts import BUILTIN_NAMES
from .facts import interface as _interface
from .template import TemplateError, check_url, expand, reserved_names, variable_names

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Mapping

__version__ = "0.1.0"

#: The largest ``timeout`` or ``exit_timeout`` accepted, in seconds (an hour).
MAX_SECONDS = 3600.0

#: What becomes of a ping that has not gone out when the interpreter exits.
ON_EXIT = ("handoff", "wait", "drop")

#: How often one environment pings a package: every process, or once a day or a week.
ONCE_PER = ("process", "day", "week")

__all__ = ["Ping", "ScarfEventLogger", "TemplateError", "__version__", "autoping", "expand"]

class Ping:
    """One ping (or event) and what became of it.

    Attributes:
        package: the package name the ping is for.
        url: the expanded URL once it is known (reported by the sender); ``None`` while
            pending, when disabled and when handed over at exit.
        status: ``"pending"``, then one of ``"sent"``, ``"failed"``, ``"handed-over"`` (a
            detached process sends it after this one has gone on or exited) and
            ``"dropped"`` (``on_exit="drop"``); or ``"disabled"`` from the start. With a
            ``retry_interval``, ``"retrying"`` between failed attempts.
        reason: a short text saying why it is disabled or failed (or the HTTP status once sent).
        attempts: how many attempts have had an outcome in this process.
        exit_timeout: the most seconds interpreter exit may wait for this ping.
    """

    __slots__ = ("_done", "attempts", "exit_timeout", "package", "reason", "status", "url")

    def __init__(self, package: str, exit_timeout: float = 1.0) -> None:
        self.package = package
        self.url: str | None = None
        self.status = "pending"
        self.reason: str | None = None
        self.attempts = 0
        self.exit_timeout = exit_timeout
        self._done: object | None = None
        self._renew()

    def _renew(self) -> None:
        """A fresh 'settled' lock: held until the ping is settled (also after a fork)."""
        from . import host

        allocate_lock, _ = host.thread_primitives()
        done = allocate_lock()
        done.acquire()  # type: ignore[attr-defined]
        self._done = done

    @classmethod
    def disabled(cls, package: str, reason: "str | None") -> "Ping":
        """A handle for a ping that will never be sent, and why (no thread, no event)."""
        ping = cls.__new__(cls)
        ping.package = package
        ping.url = None
        ping.status = "disabled"
        ping.reason = reason
        ping.attempts = 0
        ping.exit_timeout = 0.0
        ping._done = None
        return ping

    def wait(self, timeout: "float | None" = None) -> bool:
        """Send now and block until settled (at most ``timeout`` seconds); True once delivered.

        Ends the worker's deferral, so a program that needs the outcome does not wait for it.
        """
        done = self._done
        if done is not None:
            if self.status in ("pending", "retrying"):  # retrying: its sender's outcome is read by our thread
                from . import worker

                if not worker.hurry():
                    # A signal handler that interrupted our own engine on this thread:
                    # nothing can settle until it returns, so it must not wait.
                    return self.status == "sent"
            if done.acquire(True, -1 if timeout is None else max(0.0, timeout)):  # type: ignore[attr-defined]
                done.release()  # type: ignore[attr-defined]
        return self.status == "sent"

    def _retrying(self, reason: "str | None") -> None:
        """One more failed attempt; the ping stays unsettled (``wait()`` goes on waiting)."""
        if self.status in ("pending", "retrying"):
            self.attempts += 1
            self.status = "retrying"
            self.reason = reason

    def _resolve(self, status: str, reason: "str | None" = None) -> None:
        if self.status not in ("pending", "retrying"):
            return
        self.status = status
        self.reason = reason
        if self._done is not None:
            try:
                self._done.release()  # type: ignore[attr-defined]
            except RuntimeError:
                pass

    def __repr__(self) -> str:
        tries = f", attempt {self.attempts}" if self.status == "retrying" else ""
        return f"<Ping {self.package!r} {self.status}" + (f" ({self.reason}{tries})" if self.reason else "") + ">"


_registry: "dict[str, Ping]" = {}
#: The arguments of the first call per package (normalised name), to say what a second call changed.
_calls: "dict[str, tuple]" = {}
_CALL_FIELDS = ("package", "template", "version", "variables", "timeout", "exit_timeout", "skip_ci", "on_exit",
                "retry_interval", "once_per")
_registry_lock = RLock()  # re-entrant: a signal handler may call autoping() mid-call


def autoping(
    package: str,
    template: str,
    *,
    version: "str | None" = None,
    variables: "Mapping[str, str] | None" = None,
    timeout: float = 3.0,
    exit_timeout: float = 1.0,
    skip_ci: bool = True,
    on_exit: str = "handoff",
    retry_interval: "float | None" = None,
    once_per: str = "process",
) -> "Ping":
    """Send one adoption ping for ``package``, never holding up the host; return its :class:`Ping`.

    Args:
        package: the distribution name in any spelling (``Acme.Widgets``, ``acme_widgets``),
            or an import name that belongs to it. ``{package}`` is always the installed
            distribution's PEP 503 normalised name (``acme-widgets``), looked up in the
            background; with no such distribution it is the normalised spelling, the
            version is ``"unknown"``, and ``Ping.reason`` and the debug line say why. The
            per-package opt-out variable is ``ACME_WIDGETS_NO_ANALYTICS`` (for an import
            name, that of the distribution is honoured too).
        template: an RFC 6570 route template for an http(s) URL, e.g.
            ``"https://x.gateway.scarf.sh/t/{package}/{version}/{platform}{?python,arch}"``.
        version: overrides the installed metadata (``"unknown"`` when there is none).
        variables: extra values for the template (names must not clash with built-ins).
        timeout: seconds for the whole request.
        exit_timeout: the most interpreter exit may wait for this ping (``on_exit="wait"``,
            or where no detached sender can be started).
        skip_ci: send nothing when a CI environment is detected.
        on_exit: what happens to a ping that has not gone out when the interpreter exits:
            ``"handoff"`` (default) gives it to a detached sender process and exits at once;
            ``"wait"`` never starts a process: the host sends it and exit waits at most
            ``exit_timeout``; ``"drop"`` drops it.
        retry_interval: for long-running processes whose network may not be up yet: after
            a network failure, a timeout, a 5xx or a 429, try again after this many
            seconds (1 to 86400, jittered; a later ``Retry-After`` wins), for as long as
            the process lives, until one attempt is delivered. ``None`` (default): one attempt.
        once_per: ``"process"`` (default): every process pings. ``"day"`` or ``"week"``: one
            environment (this user, this interpreter's ``sys.prefix``) delivers at most one
            ping for the package per 24 hours or 7 days, and an upgrade pings in its next
            process; a process that finds the ping already delivered starts nothing. Needs
            the per-user state directory (see :mod:`scarf_autoping.state`); without one,
            every process pings.

    Raises:
        TemplateError: the template is malformed, is not http(s), or names a variable
            that is neither built-in nor in ``variables``.
        ValueError: another argument is wrong.

    Everything else (network, metadata, odd platforms, a sub-interpreter) is settled
    silently: see ``Ping.status`` and ``Ping.reason``. Calling again for the same package
    (any spelling) in the same process returns the same :class:`Ping` and sends nothing
    more: the first call wins, and with ``SCARF_AUTOPING_DEBUG=1`` a call with other
    arguments is reported as ignored.
    """
    extra = check_arguments(package, template, version, variables, timeout, exit_timeout)
    interval = None
    if retry_interval is not None:
        from . import retry

        interval = retry.check_interval(retry_interval)
    if on_exit not in ON_EXIT:
        raise ValueError(f"autoping: on_exit must be one of {', '.join(map(repr, ON_EXIT))}, got {on_exit!r}")
    if once_per not in ONCE_PER:
        raise ValueError(f"autoping: once_per must be one of {', '.join(map(repr, ONCE_PER))}, got {once_per!r}")
    key = policy.normalize(package)
    call = (package, template, version, extra, float(timeout), float(exit_timeout), bool(skip_ci), on_exit, interval,
            once_per)
    with _registry_lock:
        existing = _registry.get(key)
        if existing is not None:
            first = _calls.get(key)
            if first is not None and first != call and policy.debug_enabled(os.environ):
                _ignored(key, first, call)
            return existing
        _calls[key] = call
        env = os.environ
        decision = policy.decide(env, package, skip_ci)
        debug = policy.debug_enabled(env)
        if not decision.enabled:
            ping = _registry[key] = Ping.disabled(package, decision.reason)
            if debug:
                from .output import debug as write_debug

                write_debug(f"{package}: disabled ({decision.reason})")
            return ping
        # state: the import path's one look at the state (once_per, back-off, 410): no thread, no import
        state_dir = policy.state_dir(env)
        stamp = policy.stamp_key(sys._getframe(1).f_globals.get("__file__"), version) if state_dir else None
        why = policy.held(state_dir, package, stamp, once_per, interval is not None)
        if why is not None:
            ping = _registry[key] = Ping.disabled(package, why)
            if debug:
                from .output import debug as write_debug

                write_debug(f"{package}: not sent ({why})")
            return ping
        from . import host

        if not host.main_interpreter():
            # No thread, no hook, no marker: the process's ping comes from its main interpreter.
            ping = _registry[key] = Ping.disabled(package, "in a sub-interpreter: only the main interpreter pings")
            return ping
        ping = _registry[key] = Ping(package, exit_timeout)
        # Children that inherit this environment (spawn, forkserver, subprocess) skip it.
        try:
            env[policy.PINGED] = policy.mark_pinged(env.get(policy.PINGED), package)
        except Exception:  # noqa: BLE001 - an environment that refuses the write: children may ping too
            pass

    from . import worker

    # Decided here, where the host's own interpreter can be looked at (the sender cannot).
    interface = _interface()
    spec = {
        "method": "GET",
        "template": template,
        "package": package,
        "version": version,
        "variables": extra,
        "ci": decision.ci,
        "timeout": float(timeout),
        "retry_interval": interval,
        "interface": interface,
        # state: what the background needs to find this ping's state (see scarf_autoping.state)
        "once_per": once_per,
        "stamp": stamp,
        "state": state_dir,
        "prefix": sys.prefix,
    }
    tickets: list = []  # state: the claim prepare() takes, for send() to settle
    worker.submit(
        worker.Job(
            ping,
            spec,
            _preparer(ping, template, version, extra, decision.ci, interface, spec, tickets),  # state: + spec, tickets
            _sender(timeout, spec, tickets),  # state: + spec, tickets
            detach=on_exit == "handoff",
            on_exit=on_exit,
            debug=debug,
        )
    )
    return ping


def _ignored(key: str, first: tuple, second: tuple) -> None:
    """The debug line for a second ``autoping()`` call for the same package with other arguments."""
    from .output import debug

    changed = [
        f"{name} {theirs!r} instead of {ours!r}"
        for name, ours, theirs in zip(_CALL_FIELDS, first, second)
        if ours != theirs
    ]
    debug(
        f"{second[0]}: a second autoping() call for {key!r} was ignored ({'; '.join(changed)}): "
        "the first call wins, since a package pings once per process"
    )


def _preparer(
    ping: "Ping", template: str, version: "str | None", extra: "dict[str, str]", ci: bool, interface: str,
    spec: dict, tickets: list,
) -> object:
    """The worker's preparation step: facts, version and the expanded URL (no network)."""

    def prepare() -> "tuple[str | None, str | None]":
        """``(url, remark)``, or ``(None, why not)`` when the distribution's own variable opts out."""
        from . import facts, naming

        off, remark = naming.background(ping.package, version is not None, os.environ)
        if off is not None:
            return None, off
        values = facts.variables(ping.package, version, ci, extra, interface=interface)
        if spec.get("state"):  # state: once_per, {first_run}, 410, back-off
            from . import state  # state:

            ticket = state.claim(spec, values)  # state:
            tickets[:] = [ticket]  # state:
            if ticket.skip is not None:  # state:
                return None, ticket.skip  # state:
        url = expand(template, values)
        ping.url = url
        return url, remark

    return prepare


def _sender(timeout: float, spec: dict, tickets: list) -> object:
    def send(prepared: object) -> "tuple[str, str | None, float | None]":
        from . import naming, transport

        url, remark = prepared  # type: ignore[misc]
        if url is None:
            return "disabled", remark, None
        result = transport.send("GET", str(url), timeout=timeout, headers={"User-Agent": transport.user_agent()})
        if spec.get("state"):  # state: remember the attempt (record, stamp, back-off, 410)
            from . import state  # state:

            state.after_attempt(spec, tickets.pop() if tickets else None, result.status_code, str(url),  # state:
                                delivered=result.delivered, outcome=result.describe(),  # state:
                                retry_after=result.retry_after)  # state:
        if result.delivered:
            return "sent", naming.with_remark(result.describe(), remark), None
        from . import retry

        reason = naming.with_remark(result.describe(), remark)
        return "failed", reason, retry.retryable(result.status_code, result.retry_after)

    return send


def check_arguments(
    package: object,
    template: object,
    version: object,
    variables: object,
    timeout: object,
    exit_timeout: object,
) -> "dict[str, str]":
    """Raise at the call for the author's mistakes; return the author's variables as strings.

    The checks :func:`autoping` makes, shared with the command line and ``init`` so that
    they accept exactly what the library accepts.
    """
    if not isinstance(package, str) or not package.strip():
        raise ValueError(f"autoping: package must be a non-empty string, got {package!r}")
    if not isinstance(template, str):
        raise TemplateError(f"autoping: template must be a string, got {type(template).__name__}")
    if version is not None and not isinstance(version, str):
        raise ValueError(f"autoping: version must be a string or None, got {version!r}")
    for name, value, zero_ok in (("timeout", timeout, False), ("exit_timeout", exit_timeout, True)):
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not (value >= 0 if zero_ok else value > 0)
            or not value <= MAX_SECONDS
        ):
            raise ValueError(
                f"autoping: {name} must be a number of seconds {'>= 0' if zero_ok else '> 0'} "
                f"and at most {MAX_SECONDS:g}, got {value!r}"
            )

    extra: dict[str, str] = {}
    if variables is not None:
        if not hasattr(variables, "items"):
            raise ValueError(f"autoping: variables must be a mapping of str to str, got {type(variables).__name__}")
        for name, value in variables.items():  # type: ignore[union-attr]
            if not isinstance(name, str):
                raise ValueError(f"autoping: variable names must be strings, got {name!r}")  # noqa: TRY004
            if name in BUILTIN_NAMES:
                raise ValueError(f"autoping: variables[{name!r}] clashes with the built-in variable {{{name}}}")
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise ValueError(f"autoping: variables[{name!r}] must be a string, got {value!r}")  # noqa: TRY004
            extra[name] = str(value)

    check_url(template)
    known = set(BUILTIN_NAMES) | set(extra)
    for name in variable_names(template):
        if name not in known:
            raise TemplateError(
                f"autoping: unknown variable {{{name}}} in template {template!r}; "
                f"known names: {', '.join(sorted(known))}"
            )
    reserved = reserved_names(template)
    if reserved:
        raise TemplateError(
            f"autoping: {{+{reserved[0]}}} and {{#{reserved[0]}}} pass '/', '?' and '@' through unencoded, "
            f"so a value could add path segments or change the host; use {{{reserved[0]}}} "
            f"or {{/{reserved[0]}}} in template {template!r}"
        )
    return extra


def __getattr__(name: str) -> object:
    # The event logger is imported on first use, keeping ``import scarf_autoping`` cheap.
    if name == "ScarfEventLogger":
        from .events import ScarfEventLogger

        return ScarfEventLogger
    raise AttributeError(f"module 'scarf_autoping' has no attribute {name!r}")
