"""scarf-autoping: one line in a package's ``__init__.py`` to measure its adoption.

    from scarf_autoping import autoping; autoping("my-package", "https://my-package.gateway.scarf.sh/t/{package}/{version}/{platform}/{python}/{arch}/{distro}")

On import of the host package, one HTTP GET per process is sent to the author's endpoint,
after a deferral and by a detached sender process (see :mod:`scarf_autoping.engine`).
Importing the host package stays fast and silent; users opt out with ``DO_NOT_TRACK=1``,
``SCARF_NO_ANALYTICS=1`` or ``<PACKAGE>_NO_ANALYTICS=1``.

This module is on the host's import path, so it imports only what it must: ``policy``
(the decisions made from the environment and the state's one small file). A process that
finds its ping already delivered today (``once_per``) imports nothing else; otherwise the
template parser (:mod:`scarf_autoping.checks`) and the engine follow. ``requests``,
``distro`` and ``importlib.metadata`` are imported by the detached sender (or, where there
can be none, by the background worker), never on the importing thread. ``TemplateError``,
``expand`` and ``ScarfEventLogger`` are imported on first use (:func:`__getattr__`).

On the host's import path: no ``from __future__ import annotations`` (importing
``__future__`` costs the host about 0.1 ms), so annotations that need it are strings.
"""

import os
import sys
from _thread import RLock

from . import policy

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Mapping
    from typing import Protocol

    from .events import ScarfEventLogger
    from .template import TemplateError, expand

    class Lock(Protocol):
        def acquire(self, blocking: bool = ..., timeout: float = ...) -> bool: ...
        def release(self) -> None: ...

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
        package: the name exactly as passed to ``autoping()`` (``{package}`` in the URL is
            the installed distribution's normalised name); for a background event, its
            ``event`` property.
        url: the expanded URL once it is known (reported by the sender); ``None`` while
            pending, when disabled and when handed over at exit.
        status: ``"pending"``, then one of ``"sent"``, ``"failed"``, ``"handed-over"`` (a
            detached process sends it after this one has gone on or exited), ``"dropped"``
            (``on_exit="drop"``) and ``"disabled"`` (found in the background: the
            distribution's own opt-out variable, or a forked child's copy); or
            ``"disabled"`` from the start. With a ``retry_interval``, ``"retrying"``
            between failed attempts. See docs/api.md for every transition.
        reason: a short text saying why it is disabled or failed (or the HTTP status once sent).
        attempts: how many attempts have had an outcome in this process.
        exit_timeout: the most seconds interpreter exit may wait for this ping.
    """

    __slots__ = ("_done", "attempts", "exit_timeout", "package", "reason", "status", "url")

    def __init__(self, package: str, exit_timeout: float = 1.0) -> None:
        self.package = package
        self.url: "str | None" = None
        self.status = "pending"
        self.reason: "str | None" = None
        self.attempts = 0
        self.exit_timeout = exit_timeout
        self._done: "Lock | None" = None
        self._renew()

    def _renew(self) -> None:
        """A fresh 'settled' lock: held until the ping is settled (also after a fork)."""
        from . import host

        allocate_lock, _ = host.thread_primitives()
        done = allocate_lock()
        done.acquire()
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
                from . import engine

                if not engine.hurry():
                    # A signal handler that interrupted our own engine on this thread:
                    # nothing can settle until it returns, so it must not wait.
                    return self.status == "sent"
            if done.acquire(True, -1 if timeout is None else max(0.0, timeout)):
                done.release()
        return self.status == "sent"

    def _retrying(self, reason: "str | None") -> None:
        """One more failed attempt; the ping stays unsettled (``wait()`` goes on waiting)."""
        if self.status in ("pending", "retrying"):
            self.attempts += 1
            self.status = "retrying"
            self.reason = reason

    def _settle(self, status: str, reason: "str | None" = None) -> None:
        """Settle for good (the engine's side): the status, the reason, and ``wait()`` returns."""
        if self.status not in ("pending", "retrying"):
            return
        self.status = status
        self.reason = reason
        if self._done is not None:
            try:
                self._done.release()
            except RuntimeError:
                pass

    def __repr__(self) -> str:
        tries = f", attempt {self.attempts}" if self.status == "retrying" else ""
        return f"<Ping {self.package!r} {self.status}" + (f" ({self.reason}{tries})" if self.reason else "") + ">"


class Registry:
    """The pings of this process, one per package (normalised name), and the first call's arguments.

    ``lock`` is re-entrant (a signal handler may call ``autoping()`` mid-call); the
    engine's fork hooks take it around a fork and give a child a new one. No
    ``__slots__``: ``eventlet.monkey_patch()`` after our import replaces every ``RLock``
    it finds in a dict (an instance's ``__dict__`` too), and writes "RLock(s) were not
    greened" to the host's stderr for one it cannot reach, such as a slot.
    """

    def __init__(self) -> None:
        self.pings: dict[str, Ping] = {}
        #: The arguments of the first call per package, to say what a second call changed.
        self.calls: dict[str, tuple[object, ...]] = {}
        self.lock = RLock()
        #: How many ``autoping()`` calls are inside ``lock`` (more than one: a signal
        #: handler's call inside another on the same thread).
        self.depth = 0

    def pending(self) -> "list[Ping]":
        """The pings that have not settled."""
        return [ping for ping in self.pings.values() if ping.status in ("pending", "retrying")]

    def after_fork_child(self) -> None:
        """A forked child's lock: the parent's may have been held by another thread."""
        self.lock = RLock()
        self.depth = 0


#: This process's pings (see :class:`Registry`).
REGISTRY = Registry()
#: ``Ping.reason`` of a call made by a signal handler that interrupted this thread while it
#: was importing our modules for another call (they are half-initialised until it resumes).
REENTRANT = "called from a signal handler while scarf_autoping was loading its modules: not sent"
_CALL_FIELDS = ("package", "template", "version", "variables", "timeout", "exit_timeout", "skip_ci", "on_exit",
                "retry_interval", "once_per")


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
        exit_timeout: the most interpreter exit may wait for this ping: with
            ``on_exit="wait"``, and where a hand-over cannot be made or would not outlive
            the host (no sender possible, a host that reaps its own children, PID 1, the
            child of an init that exits with it, a systemd service's main process).
        skip_ci: send nothing when a CI environment is detected.
        on_exit: what happens to a ping that has not gone out when the interpreter exits:
            ``"handoff"`` (default) gives it to a detached sender process and exits at once;
            ``"wait"``: the host sends it itself (also while it lives) and exit waits at
            most ``exit_timeout``; ``"drop"`` drops it (while the host lives, it goes out
            exactly as with ``"handoff"``).
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
    extra = check_arguments(package, template, version, variables, timeout, exit_timeout, template_checks=False)
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
    registry = REGISTRY
    with registry.lock:
        # Another call on this very thread (the lock is ours): a signal handler's, inside ours.
        reentrant = registry.depth > 0
        registry.depth += 1
        try:
            existing = registry.pings.get(key)
            if existing is not None:
                first = registry.calls.get(key)
                if first is not None and first != call:
                    _check_template(template, extra)  # what the first call checked, this one may not have
                    if policy.debug_enabled(os.environ):
                        _ignored(key, first, call)
                return existing
            env = policy.environ()
            decision = policy.decide(env, package, skip_ci)
            debug = policy.debug_enabled(env)
            why = decision.reason
            state_dir = stamp = None
            if decision.enabled:
                # The import path's one look at the per-user state (once_per, back-off, 410). The
                # stamp's key holds the fingerprint of what the template check depends on, so a
                # process held by it may skip that check: the one that pinged under it made it.
                state_dir = decision.state
                if state_dir:
                    stamp = policy.stamp_key(sys._getframe(1).f_globals.get("__file__"), version,
                                             policy.call_print(__version__, template, *sorted(extra)))
                why = policy.held(state_dir, package, stamp, once_per, interval is not None)
            if why is None or not decision.enabled:
                _check_template(template, extra)
            registry.calls[key] = call
            if why is not None:
                ping = registry.pings[key] = Ping.disabled(package, why)
                if debug:
                    from .output import debug as write_debug

                    write_debug(f"{package}: {'disabled' if not decision.enabled else 'not sent'} ({why})")
                return ping
            from . import engine, host
            from .facts import interface
        except (ImportError, AttributeError):
            # Our modules half-loaded: this thread is importing them in the call we interrupted.
            if not reentrant:
                raise
            if key not in registry.pings:  # an existing ping stays as it is
                registry.calls[key] = call
                registry.pings[key] = Ping.disabled(package, REENTRANT)
            return registry.pings[key]
        finally:
            registry.depth -= 1
        if not host.main_interpreter():
            # No thread, no hook, no marker: the process's ping comes from its main interpreter.
            ping = registry.pings[key] = Ping.disabled(package, "in a sub-interpreter: only the main interpreter pings")
            return ping
        ping = registry.pings[key] = Ping(package, exit_timeout)
        # Children that inherit this environment (spawn, forkserver, subprocess) skip it.
        try:
            os.environ[policy.PINGED] = policy.mark_pinged(env.get(policy.PINGED), package)
        except Exception:  # noqa: BLE001 - an environment that refuses the write: children may ping too
            pass

    spec: dict[str, object] = {
        "method": "GET",
        "template": template,
        "package": package,
        "version": version,
        "variables": extra,
        "ci": decision.ci,
        "timeout": float(timeout),
        "retry_interval": interval,
        # Decided here, where the host's own interpreter can be looked at (the sender cannot).
        "interface": interface(),
        # What the background needs to find this ping's per-user state (see scarf_autoping.state).
        "once_per": once_per,
        "stamp": stamp,
        "state": state_dir,
        "prefix": sys.prefix,
    }
    # Only "wait" sends from the host while it lives: "handoff" and "drop" differ only at exit.
    engine.submit(engine.Job(ping, spec, detach=on_exit != "wait", on_exit=on_exit, debug=debug))
    return ping


def _check_template(template: str, extra: "dict[str, str]") -> None:
    """The template's own checks (:mod:`scarf_autoping.checks`), which import its parser."""
    from .checks import check_template

    check_template(template, extra)


def _ignored(key: str, first: "tuple[object, ...]", second: "tuple[object, ...]") -> None:
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


def check_seconds(
    value: object, name: str, *, zero_ok: bool = False, pair_ok: bool = False, who: str = ""
) -> "float | tuple[float, float]":
    """The one rule for every timeout: a number of seconds, more than 0, at most :data:`MAX_SECONDS`.

    ``zero_ok``: 0 is allowed too (``exit_timeout``: do not wait). ``pair_ok``: a
    ``(connect, read)`` pair of such numbers is allowed too (the event logger's SDK form).
    Returns the value as given (a pair as a tuple); raises ``ValueError`` naming ``name``
    (after ``who``) otherwise.

    >>> check_seconds(3, "timeout")
    3
    >>> check_seconds([1, 2.5], "timeout", pair_ok=True)
    (1, 2.5)
    >>> check_seconds(0, "timeout", who="autoping")
    Traceback (most recent call last):
    ValueError: autoping: timeout must be a number of seconds > 0 and at most 3600, got 0
    """

    def seconds(part: object) -> bool:
        return (not isinstance(part, bool) and isinstance(part, (int, float))
                and (part >= 0 if zero_ok else part > 0) and part <= MAX_SECONDS)

    if pair_ok and isinstance(value, (tuple, list)) and len(value) == 2 and all(map(seconds, value)):
        return (value[0], value[1])
    if seconds(value):
        return value  # type: ignore[return-value]  # seconds() checked it: an int or a float
    prefix = f"{who}: " if who else ""
    pair = " (or a (connect, read) pair of them)" if pair_ok else ""
    raise ValueError(f"{prefix}{name} must be a number of seconds {'>= 0' if zero_ok else '> 0'} "
                     f"and at most {MAX_SECONDS:g}{pair}, got {value!r}")


def check_arguments(
    package: object,
    template: object,
    version: object,
    variables: object,
    timeout: object,
    exit_timeout: object,
    *,
    template_checks: bool = True,
) -> "dict[str, str]":
    """Raise at the call for the author's mistakes; return the author's variables as strings.

    The checks :func:`autoping` makes, shared with the command line and ``init`` so that they
    accept exactly what the library accepts. The types and ranges are checked here, importing
    nothing; with ``template_checks``, the template's own checks too (a URL, known variables,
    no clash with a built-in: :func:`scarf_autoping.checks.check_template`, which imports the
    parser). ``autoping()`` makes those itself, unless the state holds the ping.
    """
    if not isinstance(package, str) or not package.strip():
        raise ValueError(f"autoping: package must be a non-empty string, got {package!r}")
    if not isinstance(template, str):
        from .template import TemplateError

        raise TemplateError(f"autoping: template must be a string, got {type(template).__name__}")
    if version is not None and not isinstance(version, str):
        raise ValueError(f"autoping: version must be a string or None, got {version!r}")
    check_seconds(timeout, "timeout", who="autoping")
    check_seconds(exit_timeout, "exit_timeout", zero_ok=True, who="autoping")

    extra: dict[str, str] = {}
    if variables is not None:
        if not hasattr(variables, "items"):
            raise ValueError(f"autoping: variables must be a mapping of str to str, got {type(variables).__name__}")
        for name, value in variables.items():  # type: ignore[attr-defined]  # hasattr checked it (no Mapping import here)
            if not isinstance(name, str):
                raise ValueError(f"autoping: variable names must be strings, got {name!r}")  # noqa: TRY004
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise ValueError(f"autoping: variables[{name!r}] must be a string, got {value!r}")  # noqa: TRY004
            extra[name] = str(value)
    if template_checks:
        _check_template(template, extra)
    return extra


#: Imported on first use (PEP 562): ``from scarf_autoping import TemplateError`` works as ever.
_LAZY = {
    "TemplateError": "template",
    "expand": "template",
    "ScarfEventLogger": "events",
}


def __dir__() -> "list[str]":
    """The module's names, the ones imported on first use included (pydoc, ``inspect``)."""
    return sorted(set(globals()) | set(_LAZY))


def __getattr__(name: str) -> object:
    """The names of :data:`_LAZY`, imported on first use, keeping ``import scarf_autoping`` cheap."""
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module 'scarf_autoping' has no attribute {name!r}")
    value = getattr(__import__(f"{__name__}.{where}", None, None, [name]), name)
    globals()[name] = value
    return value
