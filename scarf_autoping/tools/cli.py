"""The ``scarf-autoping`` command line (also ``python -m scarf_autoping``).

Only the console script and ``__main__`` import this module, so it costs nothing to
``import scarf_autoping``. Every command reuses the library (``autoping``'s argument
checks, the facts, ``expand``, the opt-out policy, the transport); none re-implements
them. Mistakes give one line on stderr and a non-zero exit, never a traceback: 2 for a
bad argument or template, 1 when the command itself failed.

**Every command starts fast** (issue 20): a shell script pings from its ``EXIT`` trap,
so ``send --detach`` must cost little more than the interpreter's start. This module
imports only ``os``, ``sys`` and the library's face (``import scarf_autoping``: the
policy and the template checker); each command imports what it uses (``subprocess``,
``pathlib``, ``threading``, ``json``, the tools modules) when it runs. ``argparse`` (with
``re``, ``enum`` and ``gettext``) is loaded for every command but one: ``send ...
--detach`` in its plain form, the shell recipe's, is parsed by hand (:func:`quick_send`)
and handed to the detached sender, which reads the metadata and builds the URL. Anything
unusual on that path (``--help``, an abbreviated option, a missing value) goes to
argparse, so every message stays the same.
"""

from __future__ import annotations

import os
import sys

from .. import __version__, check_arguments, check_seconds, policy
from ..template import TemplateError, expand

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    import argparse
    from collections.abc import Sequence
    from pathlib import Path
    from typing import Any, NoReturn

    #: What :class:`_SendArgs` stands in for (it is a plain object at run time: no argparse).
    _Namespace = argparse.Namespace
else:
    _Namespace = object

PROG = "scarf-autoping"

#: Removed from the demo's child environment: the demo pings only its own server on 127.0.0.1.
DEMO_PACKAGE = "demo-pkg"
DEMO_STRIPPED = (*policy.CI_VARIABLES, *policy.GLOBAL_OPT_OUTS, policy.SCARF_ANALYTICS, policy.PINGED,
                 policy.package_variable(DEMO_PACKAGE))

#: Seconds the demo's child import may take before the demo gives up.
DEMO_TIMEOUT = 30.0

DEMO_ROUTE = "/telemetry/{package}/{version}/{platform}/{python}/{arch}/{distro}"


class CliError(Exception):
    """A failure to report as one line: ``scarf-autoping <command>: error: <message>``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _out(text: str = "") -> None:
    print(text, flush=True)


# --------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------


def _parse_vars(pairs: Sequence[str] | None) -> dict[str, str]:
    extra: dict[str, str] = {}
    for pair in pairs or ():
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise CliError(f"--var expects NAME=VALUE, got {pair!r}", 2)
        extra[name] = value
    return extra


def _checked(package: str, template: str, version: str | None, pairs: Sequence[str] | None,
             timeout: float = 3.0) -> dict[str, str]:
    """``autoping``'s own argument checks; their message, without the ``autoping:`` prefix."""
    try:
        return check_arguments(package, template, version, _parse_vars(pairs), timeout, 1.0)
    except (TemplateError, ValueError) as exc:
        raise CliError(str(exc).replace("autoping: ", "", 1), 2) from None


def _name_note(command: str, package: str, version: str | None) -> None:
    """A note on stderr when ``package`` is not an installed distribution (with close names)."""
    from .. import naming

    text = naming.note(naming.resolve(package), version is not None)
    if text:
        sys.stderr.write(f"{PROG} {command}: note: {text}\n")


def _build_url(args: argparse.Namespace, timeout: float = 3.0) -> str:
    """The URL a ping for ``args.package`` would use in this environment."""
    from .. import facts

    extra = _checked(args.package, args.template, args.version, args.var, timeout)
    ci = policy.ci_reason(os.environ) is not None
    try:
        return expand(args.template, facts.variables(args.package, args.version, ci, extra))
    except (TemplateError, TypeError) as exc:
        raise CliError(str(exc), 2) from None


# --------------------------------------------------------------------------
# facts, preview, send, status
# --------------------------------------------------------------------------


def cmd_facts(args: argparse.Namespace) -> int:
    """Print every built-in template variable's value on this machine."""
    from .. import facts

    ci = policy.ci_reason(os.environ) is not None
    if args.package:
        values: dict[str, str | None] = dict(facts.variables(args.package, args.version, ci))
    else:
        values = {**facts.platform_facts(), "package": None, "version": None, "ci": "true" if ci else "false",
                  "first_run": facts.UNKNOWN}  # known only as a ping is sent (scarf_autoping.state)
    ordered = {name: values.get(name) for name in facts.BUILTIN_NAMES}
    if args.package:
        _name_note("facts", args.package, args.version)
    if args.json:
        import json

        _out(json.dumps(ordered, indent=2))
        return 0
    width = max(len(n) for n in ordered)
    for name, value in ordered.items():
        _out(f"{name:<{width}}  {value if value is not None else '-  (pass --package NAME)'}")
    return 0


def cmd_preview(args: argparse.Namespace) -> int:
    """Print the URL a ping would use; send nothing."""
    url = _build_url(args)
    _out(url)
    _name_note("preview", args.package, args.version)
    reason = policy.opt_out_reason(os.environ, args.package)
    if reason:
        sys.stderr.write(f"{PROG} preview: note: {reason} is set here, so {args.package} would send nothing\n")
    return 0


def cmd_send(args: argparse.Namespace) -> int:
    """Send one ping now, or hand it to a detached sender (``--detach``); for shell scripts too.

    CI detection is ignored, opt-outs are not: an opted-out user gets exit 0 and nothing
    sent (the reason on stderr with ``--verbose``), so a ``set -e`` script never dies of
    its user's choice. Exit 1 when delivery failed, 2 for a bad argument.
    """
    body = _send_body(args)
    url = ""  # with --detach, made below only if no detached sender could be started
    if args.detach:
        _checked(args.package, args.template, args.version, args.var, args.timeout)  # mistakes: exit 2, now
    else:
        url = _build_url(args, args.timeout)
    reason = policy.opt_out_reason(os.environ, args.package)
    if not reason and policy.saved_consent(os.environ, args.package)[0] == "off":
        reason = "the saved setting ('scarf-autoping disable')"
    if reason:
        if args.verbose:
            sys.stderr.write(f"{PROG} send: not sent: opted out by {reason}\n")
        return 0
    from .. import transport

    headers = {"User-Agent": transport.user_agent("cli")}
    if body is not None:
        headers["Content-Type"] = "application/json"
    if args.detach:
        if _send_detached(args, headers, body):
            if not args.quiet:
                _out("handed over to a detached sender")
            return 0
        url = _build_url(args, args.timeout)  # no process could be started: send it here
        if args.verbose:
            sys.stderr.write(f"{PROG} send: no detached sender could be started; sending it now\n")
    result = transport.send(args.method, url, timeout=args.timeout, headers=headers,
                            body=None if body is None else body.encode("utf-8"))
    if not args.quiet:
        _out(f"{url}\n{result.describe()} in {result.elapsed_ms:.0f} ms")
    good = result.ok if args.method == "POST" else result.delivered
    return 0 if good else 1


def _send_body(args: argparse.Namespace) -> str | None:
    """``--body``: JSON text, only with ``--method POST``; a mistake is exit 2."""
    if args.body is None:
        return None
    if args.method != "POST":
        raise CliError("--body needs --method POST", 2)
    import json

    try:
        json.loads(args.body)
    except ValueError as exc:
        raise CliError(f"--body must be JSON: {exc}", 2) from None
    body: str = args.body
    return body


def _send_detached(args: argparse.Namespace, headers: dict[str, str], body: str | None) -> bool:
    """Give the ping to a detached sender, re-parented to init; False when none could be started.

    The sender builds the URL from the same template and facts, so this process computes
    nothing it does not need and returns as soon as the sender has been spawned.
    """
    from .. import spawn

    job: dict[str, object] = {
        "method": args.method,
        "template": args.template,
        "package": args.package,
        "version": args.version,
        "variables": _parse_vars(args.var),
        "ci": policy.ci_reason(os.environ) is not None,
        "timeout": float(args.timeout),
        "headers": headers,
    }
    if body is not None:
        job["body"] = body
    return spawn.spawn([job], delay=0.0, orphan=True, loop=False) is not None


def cmd_status(args: argparse.Namespace) -> int:
    """Say whether pings are on here and, when off, which variable turned them off."""
    env = os.environ
    who = args.package or "every package"
    decision = policy.decide(env, args.package)  # the library's own rule and order
    reason = policy.opt_out_reason(env, args.package)
    variables = [policy.package_variable(args.package)] if args.package else ["<PACKAGE>_NO_ANALYTICS"]
    if args.package:
        from .. import naming

        resolved = naming.resolve(args.package)
        distribution_variable = naming.distribution_opt_out(env, args.package)
        if decision.enabled and distribution_variable:
            decision = policy.Decision(False, f"opted out by {distribution_variable}", decision.ci)
            reason = distribution_variable
        if policy.package_variable(resolved.name) not in variables:
            variables.append(policy.package_variable(resolved.name))
    saved, consent_path = policy.saved_consent(env, args.package)
    if decision.enabled and decision.rule == "saved":
        _out(f"on for {who}: turned on by 'scarf-autoping enable --package' (saved in {consent_path}); no "
             "opt-out variable is set and no CI is detected")
    elif decision.enabled:
        _out(f"on for {who}: no opt-out variable is set and no CI is detected")
    elif reason:
        _out(f"off for {who}: {reason} is set ({reason}={env.get(reason, '').strip()})")
    elif decision.rule == "saved":
        _out(f"off for {who}: turned off by 'scarf-autoping disable' (saved in {consent_path}); "
             "'scarf-autoping enable' undoes it")
    elif decision.reason and decision.reason.startswith("CI detected"):
        _out(f"off for {who}: CI detected ({policy.ci_reason(env)} is set); only packages that pass "
             "skip_ci=False ping")
    else:
        _out(f"off for {who} in this process tree: a parent process already pinged it ({policy.PINGED})")
    rule = "a variable" if reason else {"saved": "the saved setting", "ci": "CI detection",
                                        "parent": "a parent process"}.get(decision.rule, "the default")
    _out(f"decided by: {rule}")
    switches = [*policy.GLOBAL_OPT_OUTS, f"{policy.SCARF_ANALYTICS}=false", *variables]
    _out("opt out with any of: " + ", ".join(s if "=" in s else f"{s}=1" for s in switches)
         + ", or for good: scarf-autoping disable" + (f" --package {args.package}" if args.package else ""))
    if args.package:
        from .. import naming

        resolved = naming.resolve(args.package)
        if resolved.found:
            _out(f"pings carry package {resolved.name!r}, version {resolved.version!r} (the installed distribution)")
        else:
            _out(f"note: {naming.note(resolved)}")
    _show_state(args)
    return 0


def _when(seconds: float) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))


def _show_state(args: argparse.Namespace) -> None:
    """``status``: where the state lives, what is held back, and the last pings sent from here."""
    from .. import state

    directory = policy.state_dir(os.environ)
    if directory is None:
        _out(f"state: none kept ({policy.STATE_DIR} is empty, or there is no home directory)")
        return
    _out(f"state: {directory} (scarf-autoping forget deletes all but the saved setting)")
    for where, failures, until in state.backoffs(os.environ):
        _out(f"backed off: {where} until {_when(until)} after {failures} failure(s) to reach it")
    for when, package, template in state.gone(os.environ):
        _out(f"never again: {template} ({package}: 410 Gone on {_when(when)})")
    entries = state.record(os.environ)
    if args.package:
        name = policy.normalize(args.package)
        entries = [entry for entry in entries if policy.normalize(entry[1]) == name]
    if not entries:
        _out("sent from here: nothing recorded")
        return
    shown = entries if args.all else entries[-10:]
    more = "" if len(shown) == len(entries) else f"; --all shows all {len(entries)}"
    _out(f"last pings sent from here (newest last{more}):")
    for at, package, outcome, url in shown:
        _out(f"  {_when(at)}  {package}  {outcome}  {url}")


def cmd_disable(args: argparse.Namespace) -> int:
    """Save 'off' for this user: every package that uses scarf-autoping, or ``--package``'s."""
    return _consent(args, False)


def cmd_enable(args: argparse.Namespace) -> int:
    """Undo ``disable`` (for every package, or ``--package``'s): the variables still win."""
    return _consent(args, True)


def _consent(args: argparse.Namespace, enabled: bool) -> int:
    from .. import state

    path, written = state.set_consent(os.environ, enabled, args.package)
    if path is None:
        raise CliError(f"no state directory here ({policy.STATE_DIR} is empty, or there is no home directory); "
                       "set DO_NOT_TRACK=1 instead")
    if not written:
        raise CliError(f"could not write {path}")
    who = args.package or "every package that uses scarf-autoping"
    if enabled:
        _out(f"pings on again for {who}, for this user (saved in {path})")
        reason = policy.opt_out_reason(os.environ, args.package)
        if reason:
            _out(f"note: {reason} is set here, and a variable wins over the saved setting")
        elif args.package is None:
            rules = policy.parse_consent(state.read(path))
            still = sorted(name for name, rule in rules.items() if rule == "off" and name != "*")
            if still:
                _out(f"note: still off for {', '.join(still)} (scarf-autoping enable --package NAME)")
    else:
        _out(f"pings off for {who}, for this user (saved in {path}); 'scarf-autoping enable' undoes it")
    return 0


def cmd_forget(args: argparse.Namespace) -> int:
    """Delete all state (the record, stamps, back-offs, 410s) but the saved setting."""
    from .. import state

    directory, removed = state.forget(os.environ)
    if directory is None:
        _out(f"no state kept here ({policy.STATE_DIR} is empty, or there is no home directory)")
        return 0
    _out(f"forgot {removed} file(s) in {directory} (the saved setting, if any, is kept)")
    return 0


# --------------------------------------------------------------------------
# init
# --------------------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    """Add (or update) the ``autoping`` call in a package and write its TELEMETRY.md notice."""
    from .initcmd import InitError, init_package

    try:
        result = init_package(args.package_dir, args.endpoint, args.package, args.notice)
    except InitError as exc:
        raise CliError(str(exc), exc.code) from None
    except (TemplateError, ValueError) as exc:
        raise CliError(str(exc).replace("autoping: ", "", 1), 2) from None
    if result.declared:
        _out(f"note: the project declares the distribution {result.declared!r}; using {result.package!r} as "
             "asked (pings carry the name of the installed distribution either way)")
    if result.init_status == "added":
        _out(f"added to {result.init_path}:")
        for line in result.lines:
            _out(f"  {line}")
    elif result.init_status == "updated":
        old_package, old_template = result.previous or ("", "")
        changed = [what for what, old, new in (("endpoint", old_template, args.endpoint),
                                               ("package", old_package, result.package)) if old != new]
        _out(f"updated {result.init_path} ({' and '.join(changed) or 'layout'} changed):")
    else:
        _out(f"unchanged: {result.init_path} already has the call")
    notices = {
        "written": f"wrote the notice {result.notice_path}",
        "updated": f"updated the notice {result.notice_path}",
        "unchanged": f"unchanged: {result.notice_path}",
        "kept": f"kept {result.notice_path} as it is (it differs from the generated notice; not overwritten"
                + ("; update its endpoint by hand)" if result.init_status == "updated" else ")"),
    }
    for diff in result.diffs:
        for line in diff:
            _out(f"  {line}")
    _out(notices[result.notice_status])
    if result.init_status == "added":
        _out(f"next: add 'scarf-autoping' to the dependencies of {result.package}, and link TELEMETRY.md from "
             "your README")
    return 0


# --------------------------------------------------------------------------
# collect, report
# --------------------------------------------------------------------------


class _Printer:
    """Writes lines to stdout from its own thread, so nobody else ever waits on stdout.

    The collector's writer thread only queues a line here; when stdout is not being read
    (a pipe nobody drains) the queue fills and further ping lines are dropped and
    counted, while storing, answering and stopping go on. The thread writes with
    ``os.write`` (holding no Python lock) so a write stuck at exit cannot block the
    interpreter's shutdown.
    """

    def __init__(self, limit: int = 1000) -> None:
        import threading

        self._lines: list[str] = []
        self._limit = limit
        self._cond = threading.Condition()
        self._writing = False
        self.dropped = 0
        try:
            sys.stdout.flush()
            self._fd: int | None = sys.stdout.fileno()
        except (AttributeError, OSError, ValueError):
            self._fd = None
        self._encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
        threading.Thread(target=self._run, name="collect-printer", daemon=True).start()

    def line(self, text: str, *, droppable: bool = False) -> None:
        """Queue one line (never blocks); a droppable line is dropped when the queue is full."""
        with self._cond:
            if droppable and len(self._lines) >= self._limit:
                self.dropped += 1
                return
            self._lines.append(text)
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._lines:
                    self._cond.wait()
                lines, self._lines = self._lines, []
                self._writing = True
            try:
                self._write("".join(f"{line}\n" for line in lines))
            except OSError:  # stdout closed: nothing more can be shown
                pass
            with self._cond:
                self._writing = False
                self._cond.notify_all()

    def _write(self, text: str) -> None:
        if self._fd is None:
            sys.stdout.write(text)
            sys.stdout.flush()
            return
        data = memoryview(text.encode(self._encoding, "backslashreplace"))
        while data:
            data = data[os.write(self._fd, data):]

    def drain(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for every queued line to be written."""
        import time

        deadline = time.monotonic() + timeout
        with self._cond:
            while self._lines or self._writing:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True


def cmd_collect(args: argparse.Namespace) -> int:
    """Run the local collector until Ctrl-C or SIGTERM."""
    import signal
    import threading
    from pathlib import Path

    from .collector import Collector, CollectorError, Route, describe, is_loopback

    if args.route:
        try:
            Route(args.route)
        except CollectorError as exc:  # a bad template is a bad argument, as in preview and init
            raise CliError(str(exc), 2) from None
    printer = _Printer()
    try:
        collector = Collector(args.host, args.port, args.db, route=args.route, keep_ip=args.keep_ip,
                              on_ping=lambda record: printer.line(describe(record), droppable=True))
    except CollectorError as exc:
        raise CliError(str(exc)) from None
    stop = threading.Event()
    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.signal(signum, lambda *_: stop.set())
    try:
        collector.start()
        printer.line(f"collecting on {collector.url} into {Path(args.db).resolve()} (Ctrl-C to stop)")
        if not is_loopback(collector.host):
            printer.line(f"note: {collector.host} is not a loopback address; other machines can reach this "
                         "collector")
        route = args.route or DEMO_ROUTE
        example = collector.url + route if route.startswith("/") else route
        printer.line(f"point a template at it, e.g. {example}")
        printer.line(f"see the pings: scarf-autoping report --db {args.db} (a table), "
                     f"or add --html report.html (a page with charts)")
        while not stop.wait(0.2):
            pass
    finally:
        collector.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    dropped = f" ({printer.dropped} ping line(s) not printed: stdout was not being read)" if printer.dropped else ""
    printer.line(f"stopped; {collector.store.stored} ping(s) stored in {args.db}{dropped}")
    printer.drain(1.0)  # a stdout nobody reads must not keep the collector from exiting
    return 0


def _fields(text: str | None) -> list[str] | None:
    if text is None:
        return None
    fields = [f.strip() for f in text.split(",") if f.strip()]
    if not fields:
        raise CliError("--by needs at least one field name, e.g. --by version,platform", 2)
    return fields


def cmd_report(args: argparse.Namespace) -> int:
    """Print the adoption table, or write the HTML page, from the collector's database."""
    from .report import ReportArgumentError, ReportError, format_table, parse_since, report

    fields = _fields(args.by)
    if args.package is not None and not args.package.strip():
        raise CliError("--package needs a package name", 2)
    try:
        since = parse_since(args.since) if args.since is not None else None
        if args.html is not None:
            from .report_html import write_html

            written = write_html(args.db, args.html, fields, package=args.package, since=since)
            _out(f"wrote {written.path} ({written.pings} ping(s), {written.size / 1024:.0f} KiB); "
                 "open it in a browser")
            return 0
        result = report(args.db, fields, package=args.package, since=since)
        if result.total == 0 and (args.package is not None or since is not None):
            _out("no pings match these filters")
        else:
            _out(format_table(result))
    except ReportArgumentError as exc:
        raise CliError(str(exc), 2) from None
    except ReportError as exc:
        raise CliError(str(exc)) from None
    return 0


# --------------------------------------------------------------------------
# demo
# --------------------------------------------------------------------------


def _demo_env(site: Path) -> tuple[dict[str, str], list[str]]:
    """The child's environment: ours, minus CI/opt-out variables, plus the throwaway package."""
    from pathlib import Path

    import scarf_autoping

    env = dict(os.environ)
    stripped = [name for name in DEMO_STRIPPED if name in env]
    for name in stripped:
        del env[name]
    # Our own checkout/site-packages first, so the child imports this very scarf_autoping.
    ours = str(Path(scarf_autoping.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), ours, env.get("PYTHONPATH")) if p)
    env["NO_PROXY"] = ",".join(p for p in ("127.0.0.1", "localhost", env.get("NO_PROXY")) if p)
    env.pop("no_proxy", None)
    return env, stripped


def cmd_demo(args: argparse.Namespace) -> int:
    """Collector, throwaway package, import in a child process, the ping, the report."""
    import subprocess
    import tempfile
    import threading
    import time
    from pathlib import Path

    from .collector import Collector, CollectorError, describe
    from .initcmd import InitError, init_package
    from .report import adoption, format_table, load_rows

    arrived: list[dict[str, object]] = []
    arrived_at: list[float] = []
    got = threading.Event()

    def on_ping(record: dict[str, object]) -> None:
        arrived.append(record)
        arrived_at.append(time.monotonic())
        got.set()

    _out("scarf-autoping demo: offline, no account; everything stays on 127.0.0.1.\n")
    with tempfile.TemporaryDirectory(prefix="scarf-autoping-demo-") as tmp:
        root = Path(tmp)
        db = root / "pings.sqlite"
        try:
            collector = Collector("127.0.0.1", 0, db, route=DEMO_ROUTE, on_ping=on_ping).start()
        except CollectorError as exc:
            raise CliError(str(exc)) from None
        try:
            template = collector.url + DEMO_ROUTE
            _out(f"1. a collector listens on {collector.url} (database {db.name} in a temporary directory)")
            site = root / "site"
            package_dir = _write_demo_package(site)
            try:
                result = init_package(package_dir, template, DEMO_PACKAGE, root / "TELEMETRY.md")
            except InitError as exc:
                raise CliError(str(exc)) from None
            _out("2. a throwaway package demo_pkg 1.0.0; 'scarf-autoping init' gave its __init__.py the call:")
            for line in result.lines:
                _out(f"     {line}")
            env, stripped = _demo_env(site)
            _out("3. importing it in a child process: python -c 'import demo_pkg'")
            if stripped:
                _out(f"   (removed {', '.join(stripped)} from the child's environment: the demo pings only "
                     "its own server on 127.0.0.1, so it is not telemetry)")
            started = time.monotonic()
            try:
                child = subprocess.run([sys.executable, "-c", "import demo_pkg"], env=env, capture_output=True,
                                       text=True, timeout=DEMO_TIMEOUT, check=False, stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                raise CliError(f"the child process importing demo_pkg did not finish within {DEMO_TIMEOUT:g} s; "
                               "it was stopped") from None
            except OSError as exc:
                raise CliError(f"cannot start the child process {sys.executable!r}: "
                               f"{exc.strerror or exc}") from None
            ended = time.monotonic()
            output = (child.stdout + child.stderr).strip()
            _out(f"   the child process ran for {ended - started:.2f} s in all (interpreter start-up included), "
                 f"exit code {child.returncode}, " + (f"output: {output}" if output else "no output"))
            got.wait(5.0)
            if arrived_at:
                when = arrived_at[0] - ended
                _out(f"   its ping arrived {abs(when) * 1000:.0f} ms {'after' if when >= 0 else 'before'} it exited: "
                     "a short-lived program hands its ping to a detached process and exits at once")
        finally:
            collector.stop()
        if not arrived:
            _out("\nno ping arrived. Is something on this machine blocking connections to 127.0.0.1?")
            return 1
        record = arrived[0]
        _out("\n4. the ping that arrived:")
        _out(f"     {describe(record)}")
        _out(f"     user agent: {record['user_agent']}")
        _out("\n5. the adoption report ('scarf-autoping report --by version,platform,python,arch,distro'):\n")
        table = format_table(adoption(load_rows(db), ("version", "platform", "python", "arch", "distro")))
        _out("\n".join("   " + line for line in table.splitlines()))
    _out("\nnext: 'scarf-autoping init PACKAGE_DIR --endpoint URL_TEMPLATE' for your own package.")
    return 0


def _write_demo_package(site: Path) -> Path:
    """``site/demo_pkg`` with a docstring and real dist-info metadata (version 1.0.0)."""
    package = site / "demo_pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('"""A throwaway package for the scarf-autoping demo."""\n', encoding="utf-8")
    info = site / "demo_pkg-1.0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: demo-pkg\nVersion: 1.0.0\n", encoding="utf-8")
    (info / "top_level.txt").write_text("demo_pkg\n", encoding="utf-8")
    (info / "RECORD").write_text("demo_pkg/__init__.py,,\n", encoding="utf-8")
    return package


# --------------------------------------------------------------------------
# Parser and entry point
# --------------------------------------------------------------------------


def _parser_class() -> type[argparse.ArgumentParser]:
    """``_Parser``: argparse with a one-line error, and a help formatter that leaves ``shutil`` alone.

    (Made on first use, so that importing this module does not import ``argparse``.)
    """
    import argparse

    class _Formatter(argparse.HelpFormatter):
        """argparse's formatter, told the terminal's width instead of asking ``shutil``.

        argparse makes a formatter for every ``add_argument`` (to check the metavar) and
        each one imports ``shutil`` (with ``fnmatch``, ``bz2`` and ``lzma``) to read the
        width: milliseconds for a command that never shows its help. The width is read
        here as ``shutil.get_terminal_size`` reads it: ``COLUMNS``, else the terminal, else 80.
        """

        def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                     width: int | None = None, **kwargs: Any) -> None:
            super().__init__(prog, indent_increment, max_help_position,
                             _terminal_columns() - 2 if width is None else width, **kwargs)

    class _Parser(argparse.ArgumentParser):
        """argparse with a one-line error (usage stays available through ``--help``)."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("formatter_class", _Formatter)
            super().__init__(*args, **kwargs)

        def error(self, message: str) -> NoReturn:
            sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
            raise SystemExit(2)

    return _Parser


def _terminal_columns() -> int:
    """The terminal's width as ``shutil.get_terminal_size().columns`` gives it (fallback 80)."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            stdout = sys.__stdout__  # None without a standard output
            columns = os.get_terminal_size(stdout.fileno()).columns if stdout is not None else 0
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


def _positive(text: str) -> float:
    """A ``--timeout``: the library's one timeout rule (see :func:`scarf_autoping.check_seconds`)."""
    import argparse

    from .. import check_seconds

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    try:
        check_seconds(value, "--timeout")
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected more than 0 seconds and at most 3600, got {text!r}") from None
    return value


def _port(text: str) -> int:
    import argparse

    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, got {text!r}")
    return int(text)


class _Unbuilt:
    """Stands in for a command's parser that will not be used (``build_parser(arguments=False)``)."""

    def __init__(self, **kwargs: object) -> None:
        pass


#: The commands, in the order ``--help`` lists them.
COMMANDS = ("facts", "preview", "send", "status", "disable", "enable", "forget", "init", "collect", "report", "demo")


def build_parser(only: str | None = None, *, arguments: bool = True) -> argparse.ArgumentParser:
    """The argument parser: every command with its arguments (the default), or the part that will be used.

    ``only``: that one command (a command line that starts with it: argparse hands all
    that follows to that command's parser and never looks at another). ``arguments=False``:
    every command listed with its one-line summary, and no parser behind it (for
    ``--help`` and ``--version``, which exit before any command is parsed). argparse
    makes a parser per command and a help formatter per argument, and looks up every
    message in ``gettext``: a few milliseconds of a command's start that need not be spent.
    """
    parser_class = _parser_class()
    parser = parser_class(prog=PROG, description="Adoption pings for Python packages: inspect, test, set up, collect.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    # _Unbuilt is no parser, but all argparse does with it is make one.
    subparser_class: type[argparse.ArgumentParser] = parser_class if arguments else _Unbuilt  # type: ignore[assignment]
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=subparser_class)
    commands.required = True

    def command(name: str, func: object, summary: str, description: str) -> argparse.ArgumentParser | None:
        """Add the command (unless ``only`` names another); its parser when its arguments are wanted."""
        if only is not None and name != only:
            return None
        if not arguments:
            commands.add_parser(name, help=summary)  # listed in --help; an _Unbuilt stands in for its parser
            return None
        sub = commands.add_parser(name, help=summary, description=description)
        sub.set_defaults(func=func)
        return sub

    def ping_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("template", metavar="TEMPLATE", help="RFC 6570 route template, e.g. "
                         "'https://x.gateway.scarf.sh/t/{package}/{version}/{platform}'")
        sub.add_argument("--package", required=True, metavar="NAME", help="the package name")
        sub.add_argument("--version", metavar="V", help="the version (default: installed metadata of NAME)")
        sub.add_argument("--var", action="append", metavar="K=V", help="an extra template variable (repeatable)")

    sub = command("facts", cmd_facts, "this machine's value for every built-in template variable",
                  "Print this machine's value for every built-in template variable.")
    if sub:
        sub.add_argument("--json", action="store_true", help="one JSON object keyed by variable name")
        sub.add_argument("--package", metavar="NAME", help="also fill in package and version for NAME")
        sub.add_argument("--version", metavar="V", help="the version to show (default: installed metadata of NAME)")

    sub = command("preview", cmd_preview, "print the URL a ping would use; sends nothing",
                  "Print the URL a ping would use in this environment; send nothing.")
    if sub:
        ping_options(sub)

    sub = command("send", cmd_send, "send one ping now (or hand it to a detached sender)",
                  "Send one ping now, synchronously, or with --detach hand it to a detached process and return at "
                  "once (for a shell script's EXIT trap). CI detection is ignored, opt-outs are not. Exit 0 when "
                  "delivered (GET: 2xx/3xx, POST: 2xx), handed over, or opted out; 1 when delivery failed; 2 for a "
                  "bad argument.")
    if sub:
        ping_options(sub)
        sub.add_argument("--timeout", type=_positive, default=3.0, metavar="S",
                         help="seconds for the whole exchange, DNS aside (default 3)")
        sub.add_argument("--method", choices=("GET", "POST"), default="GET", help="the HTTP method (default GET)")
        sub.add_argument("--body", metavar="JSON", help="a JSON body to POST (with --method POST)")
        sub.add_argument("--detach", action="store_true",
                         help="hand the ping to a detached sender and return at once (exit 0 unless an argument is "
                              "bad)")
        sub.add_argument("--quiet", "-q", action="store_true", help="print nothing on stdout")
        sub.add_argument("--verbose", "-v", action="store_true", help="say on stderr why nothing was sent")

    sub = command("status", cmd_status, "whether pings are on here, what decided, and what was sent",
                  "Say whether pings are on in this environment and which rule decided (a variable, the saved "
                  "setting, CI detection or the default); where the state lives, and the last pings sent from "
                  "here.")
    if sub:
        sub.add_argument("--package", metavar="NAME", help="also check NAME's own <PACKAGE>_NO_ANALYTICS")
        sub.add_argument("--all", action="store_true", help="show every recorded ping, not only the last 10")

    for name, func, summary, description in (
        ("disable", cmd_disable, "turn pings off for this user, for good",
         "Save 'off' for this user: no package that uses scarf-autoping pings (or only NAME, with --package). "
         "Kept in the state directory; 'enable' undoes it."),
        ("enable", cmd_enable, "undo 'disable'",
         "Undo 'disable', for every package or for NAME. The opt-out variables (DO_NOT_TRACK, ...) still win."),
    ):
        sub = command(name, func, summary, description)
        if sub:
            sub.add_argument("--package", metavar="NAME", help="only this package")

    command("forget", cmd_forget, "delete what this user's state remembers (not the saved setting)",
            "Delete the record of pings sent, the once-a-day stamps, back-offs and 410 Gone endpoints kept in the "
            "state directory. The saved setting of 'disable'/'enable' is kept.")

    sub = command("init", cmd_init, "add the autoping call to a package and write TELEMETRY.md",
                  "Add the autoping call to PACKAGE_DIR/__init__.py (after its imports, formatted so that ruff and "
                  "black accept it, with a comment naming the opt-out variables) and write a TELEMETRY.md notice at "
                  "the project root. Running it again changes nothing; with another endpoint it updates the call and "
                  "the notice it wrote, and shows what changed.")
    if sub:
        sub.add_argument("package_dir", metavar="PACKAGE_DIR", help="the directory holding the package's __init__.py")
        sub.add_argument("--endpoint", required=True, metavar="TEMPLATE", help="the route template to ping")
        sub.add_argument("--package", metavar="NAME",
                         help="the distribution name (default: read from the project's pyproject.toml ([project] "
                              "or [tool.poetry]), setup.cfg or setup.py; init asks for it when it cannot tell)")
        sub.add_argument("--notice", metavar="PATH", help="where to write TELEMETRY.md (a file or a directory)")

    sub = command("collect", cmd_collect, "run a local collector that stores pings in SQLite",
                  "Run a local HTTP collector: every GET/POST is answered 200 and stored in SQLite; one line is "
                  "printed per ping. Ctrl-C or SIGTERM stops it.")
    if sub:
        sub.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
        sub.add_argument("--port", type=_port, default=8750, metavar="P",
                         help="port (default 8750; 0 picks a free one)")
        sub.add_argument("--db", default="pings.sqlite", metavar="PATH", help="SQLite file (default ./pings.sqlite)")
        sub.add_argument("--route", metavar="TEMPLATE",
                         help="route template whose variables are parsed from each ping")
        sub.add_argument("--keep-ip", action="store_true",
                         help="also store the client's IP address (off by default)")

    sub = command("report", cmd_report, "adoption table from the collector's database",
                  "Print counts and shares of the collected pings grouped by FIELDS, newest version first; or, with "
                  "--html, write a self-contained page with charts (see docs/report.md).")
    if sub:
        sub.add_argument("--db", default="pings.sqlite", metavar="PATH", help="SQLite file (default ./pings.sqlite)")
        sub.add_argument("--by", metavar="FIELDS",
                         help="comma-separated fields, e.g. version,platform,python,arch,distro (default "
                              "package,version)")
        sub.add_argument("--package", metavar="NAME",
                         help="only this package's pings (PEP 503 names: My_Pkg = my-pkg)")
        sub.add_argument("--since", metavar="WHEN",
                         help="only pings received since WHEN: a date (2026-11-01, UTC), a date and time, or an age "
                              "(12h, 7d, 2w)")
        sub.add_argument("--html", metavar="PATH", help="write a self-contained HTML page with charts to PATH")

    command("demo", cmd_demo, "see it work in seconds: offline, no account",
            "Start a collector on 127.0.0.1, write a throwaway package that uses autoping, import it in a child "
            "process, show the ping and the report.")
    return parser


def _parser_for(argv: Sequence[str]) -> argparse.ArgumentParser:
    """As much of the parser as ``argv`` can use (see :func:`build_parser`)."""
    first = argv[0] if argv else ""
    if first in COMMANDS:
        return build_parser(only=first)
    if first in ("-h", "--help", "--version"):
        return build_parser(arguments=False)
    return build_parser()  # anything else (an error, an abbreviation): the whole parser, as ever


class _SendArgs(_Namespace):
    """The arguments of ``send`` as argparse would give them, for :func:`quick_send`."""

    command = "send"

    def __init__(self) -> None:
        self.func = cmd_send
        self.template: str | None = None
        self.package: str | None = None
        self.version: str | None = None
        self.var: list[str] | None = None
        self.timeout = 3.0
        self.method = "GET"
        self.body: str | None = None
        self.detach = False
        self.quiet = False
        self.verbose = False


#: ``send``'s options that take a value, and where argparse stores it.
_SEND_VALUES = {"--package": "package", "--version": "version", "--var": "var", "--timeout": "timeout",
                "--method": "method", "--body": "body"}
#: ``send``'s flags.
_SEND_FLAGS = {"--detach": "detach", "--quiet": "quiet", "-q": "quiet", "--verbose": "verbose", "-v": "verbose"}


def quick_send(argv: Sequence[str]) -> _SendArgs | None:
    """``send TEMPLATE --package NAME ... --detach`` parsed without argparse; None for anything else.

    The path of a shell script's ``EXIT`` trap, where the interpreter's start is most of
    the cost and argparse (with ``re``, ``enum`` and ``gettext``) would add half as much
    again. Only the plain forms are taken: ``send``'s own options spelt in full, as
    ``--name VALUE`` or ``--name=VALUE``, ``-q`` and ``-v`` alone, one ``TEMPLATE``, a
    value that does not start with ``-`` (unless given with ``=``), valid ``--timeout``
    and ``--method`` values, and ``--detach``. Whatever else there is (``--help``, an
    abbreviation, ``-qv``, ``--``, a missing or bad value, a second ``TEMPLATE``, no
    ``--detach``) returns None, and argparse parses the command line as it always has,
    with its own messages. What is accepted here is what argparse would make of it,
    repeats included (the last value wins; ``--var`` adds up): ``tests/tools/test_cli.py``
    checks that against argparse itself. The rest (``--body``, the template, the
    variables, the opt-outs) is checked by :func:`cmd_send` on either path, so a mistake
    is the same one line and exit 2.
    """
    if len(argv) < 2 or argv[0] != "send":
        return None
    args = _SendArgs()
    items = iter(argv[1:])
    for item in items:
        if not item.startswith("-"):
            if args.template is not None:
                return None  # a second positional: argparse's "unrecognized arguments"
            args.template = item
            continue
        name, equals, value = item.partition("=")
        flag = _SEND_FLAGS.get(name)
        if flag is not None and not equals:
            setattr(args, flag, True)
            continue
        field = _SEND_VALUES.get(name)
        if field is None or not name.startswith("--"):
            return None
        if not equals:
            following = next(items, None)
            if following is None or following.startswith("-"):
                return None
            value = following
        elif not value:
            return None
        if field == "var":
            args.var = [*(args.var or ()), value]
        elif field == "timeout":
            try:
                seconds = float(value)
            except ValueError:
                return None
            try:
                check_seconds(seconds, "--timeout")  # the one timeout rule, as argparse's _positive applies it
            except ValueError:
                return None
            args.timeout = seconds
        elif field == "method":
            if value not in ("GET", "POST"):
                return None
            args.method = value
        else:
            setattr(args, field, value)
    if args.template is None or args.package is None or not args.detach:
        return None
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit code (0 ok, 1 failed, 2 bad arguments)."""
    for stream in (sys.stdout, sys.stderr):  # a path or value the terminal cannot show is escaped, not fatal
        try:
            stream.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]  # a replaced stream may lack it
        except (AttributeError, ValueError):
            pass
    words = sys.argv[1:] if argv is None else list(argv)
    args: argparse.Namespace | None = quick_send(words)
    if args is None:
        args = _parser_for(words).parse_args(words)
    try:
        return int(args.func(args))
    except CliError as exc:
        sys.stderr.write(f"{PROG} {args.command}: error: {exc}\n")
        return exc.code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (``scarf-autoping demo | head -1``): exit quietly. Point stdout
        # at devnull so the interpreter's final flush does not complain (Python docs, signal).
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
