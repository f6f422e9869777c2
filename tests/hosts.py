"""A batch of child hosts run in parallel, each reporting what it saw (the host-first suites).

Each case is a child interpreter that imports a throwaway package under a harness: the
harness's ``atexit`` hook, registered first so that it runs after the library's, records
the ping's state, the process's encodings and modules and when it ended; the loopback
collector records what arrived. :func:`shared_batch` runs a module's cases once, in
parallel, and shares the results between the xdist workers that need them.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import pytest
from helpers import ChildResult, autoping_package, child_env, run_child
from loopback import Collector, Request

#: Seconds a child may run before it counts as hung.
HANG = 30.0


#: Seconds a handed-over ping may take to reach the collector after the child exited.
WAIT = 10.0


#: Seconds of quiet after the expected pings: a duplicate would arrive within them.
QUIET = 1.0


#: Seconds of quiet that show that nothing is coming at all.
NOTHING = 3.0


#: Allowed beyond ``exit_timeout`` between the import returning and the process being gone.
EXIT_MARGIN = 0.6


#: How much longer than the same child importing a plain package a short-lived child may take.
EXIT_DELAY_MARGIN = 0.6


#: The contract's deferral: seconds before a living host's ping goes out.
DEFERRAL = 1.0


#: Children run at once by :func:`run_batch` (they mostly sleep or wait for the network).
PARALLEL = 8


#: The package every case imports (each case has a site directory of its own).
PKG = "pkg_hf"


ROUTE = "/t/{package}/{version}"


PATH = f"/t/{PKG.replace('_', '-')}/1.2.3"  # pings carry the normalised name


#: The child's prologue: the report hook first (it runs after the library's exit hook).
HARNESS = """\
import atexit, json, os, sys, time
PACKAGE = {package!r}
_parent = os.getpid()
RESULT = {{}}
def _report():
    if os.getpid() != _parent:
        return
    ping = getattr(sys.modules.get(PACKAGE), "PING", None)
    if ping is not None:
        RESULT["ping"] = [ping.status, ping.reason, ping.url]
    RESULT["ended_at"] = time.time()
    RESULT["modules_at_end"] = [m for m in ("requests", "urllib3", "ssl", "distro") if m in sys.modules]
    with open({out!r}, "w", encoding="utf-8") as _f:
        json.dump(RESULT, _f)
atexit.register(_report)
"""


#: Put after an ``import``: the package's ping, and when the import returned.
IMPORTED = 'PING = getattr(sys.modules[PACKAGE], "PING", None)\nRESULT["imported_at"] = time.time()\n'


def child_code(out: Path, body: str, package: str = PKG) -> str:
    return HARNESS.format(package=package, out=str(out)) + textwrap.dedent(body)


class Run:
    """One child interpreter: what it did, its report, and what reached its collector."""

    def __init__(self) -> None:
        self.child: ChildResult | None = None
        self.report: dict = {}
        self.at_exit: list[Request] = []  # at the collector when the child's process was gone
        self.requests: list[Request] = []  # at the collector once it settled
        self.exited_at = 0.0  # time.time() when the child's process was gone
        self.error: str | None = None  # what went wrong while running the case

    @property
    def ping(self) -> list:
        """``[status, reason, url]`` of the package's ping at the very end of the process."""
        return self.report.get("ping") or [None, None, None]

    @property
    def exit_s(self) -> float:
        """Seconds from the import returning to the process being gone."""
        return self.exited_at - self.report["imported_at"]

    def check(self) -> Run:
        """Fail with what went wrong while running the case (a hang, a missing report)."""
        if self.error is not None:
            pytest.fail(self.error, pytrace=False)
        return self

    def to_json(self) -> dict:
        child = self.child
        return {
            "child": None if child is None else [child.returncode, child.stdout, child.stderr, child.seconds],
            "report": self.report,
            "at_exit": [_request_json(r) for r in self.at_exit],
            "requests": [_request_json(r) for r in self.requests],
            "exited_at": self.exited_at,
            "error": self.error,
        }

    @classmethod
    def from_json(cls, data: dict) -> Run:
        run = cls()
        run.child = None if data["child"] is None else ChildResult(*data["child"])
        run.report = data["report"]
        run.at_exit = [Request(*r) for r in data["at_exit"]]
        run.requests = [Request(*r) for r in data["requests"]]
        run.exited_at = data["exited_at"]
        run.error = data["error"]
        return run

    def __repr__(self) -> str:
        return (f"<Run {self.child!r} report={self.report!r} at_exit={self.at_exit!r} "
                f"requests={self.requests!r}>")


def run_host(code: str, env: dict[str, str], out: Path, *, args: tuple[str, ...] = ()) -> tuple[ChildResult, dict]:
    """Run the child; fail clearly when it hangs or leaves no report."""
    try:
        child = run_child(code, env, args=args, timeout=HANG)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the child hung: killed after {HANG:.0f} s; stdout={exc.stdout!r} stderr={exc.stderr!r}")
    report = json.loads(out.read_text(encoding="utf-8")) if out.exists() else {}
    return child, report


def run_case(
    root: Path,
    body: str,
    *,
    args: str = "",
    behaviour: str = "ok",
    template: Callable[[Collector], str] = lambda c: c.url + ROUTE,
    env: dict[str, str] | Callable[[Collector], dict[str, str]] | None = None,
    drop_env: tuple[str, ...] = (),
    expect: int = 1,
    quiet: float = QUIET,
    package: str = PKG,
    dist_name: str | None = None,
) -> Run:
    """Import the package in a child (``body`` follows the harness), then watch the collector.

    ``expect`` pings are waited for (``WAIT`` seconds), then ``quiet`` seconds of silence.
    """
    run = Run()
    server = Collector(behaviour)
    try:
        root.mkdir(parents=True, exist_ok=True)
        site = root / "site"
        autoping_package(site, package, template(server), args=args, dist_name=dist_name)
        out = root / "report.json"
        environ = child_env(site, **((env(server) if callable(env) else env) or {}))
        for name in drop_env:
            environ.pop(name, None)
        run.child, run.report = run_host(child_code(out, body, package), environ, out)
        run.exited_at = time.time()
        run.at_exit = list(server.requests)
        if run.child.returncode == 0:
            assert run.report, f"the child left no report: {run.child!r}"
        if expect:
            server.wait_for(expect, timeout=WAIT)
        run.requests = server.settle(quiet)
    except BaseException as exc:  # noqa: BLE001 - reported by the test that reads this run
        run.error = f"{type(exc).__name__}: {exc}"
    finally:
        server.close()
    return run


def _request_json(request: Request) -> list:
    return [request.method, request.target, request.headers, request.body.decode("latin-1")]


def run_batch(cases: dict[str, Callable[[], Run]]) -> dict[str, Run]:
    """Run the cases at once (at most ``PARALLEL`` children), each with its own collector."""
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        futures = {key: pool.submit(case) for key, case in cases.items()}
        return {key: future.result() for key, future in futures.items()}


def shared_batch(factory: pytest.TempPathFactory, name: str,
                 cases: Callable[[Path], dict[str, Callable[[], Run]]]) -> dict[str, Run]:
    """:func:`run_batch` once per test session, also under ``pytest -n N``.

    pytest-xdist builds a module-scoped fixture once in *each* worker that runs one of
    its tests: the first worker runs the batch and leaves the results in the session's
    shared temporary directory; the others wait for them (an exclusive lock) and read them.
    """
    import fcntl

    base = factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # shared by the session's workers
    results = base / f"host-first-{name}.json"
    with open(base / f"host-first-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if results.exists():
            data = json.loads(results.read_text(encoding="utf-8"))
            return {key: Run.from_json(value) for key, value in data.items()}
        runs = run_batch(cases(factory.mktemp(name)))
        results.write_text(json.dumps({key: run.to_json() for key, run in runs.items()}), encoding="utf-8")
        return runs


def assert_quiet(run: Run, returncode: int = 0) -> None:
    """The host's own view: its exit code, and not a byte on stdout or stderr."""
    run.check()
    assert run.child is not None, run
    assert run.child.returncode == returncode, run
    assert run.child.stdout == "", run
    assert run.child.stderr == "", run


def paths(requests: list[Request]) -> list[str]:
    return [r.path for r in requests]


LIFETIMES = ("short", "long")
