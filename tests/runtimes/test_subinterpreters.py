"""Sub-interpreters (contract §6), seen from outside, on CPython 3.12+.

A CHILD interpreter (``sys.executable``, the project installed) creates a sub-interpreter
through CPython's private API (3.12: ``_xxsubinterpreters.create(isolated=...)``; 3.13:
``_interpreters.create("isolated" | "legacy")``) and imports a throwaway package (the one
``autoping`` line) in it, in the main interpreter too or not, then destroys the
sub-interpreter or leaves it alive for interpreter shutdown.

* ``isolated``: own GIL, no daemon threads, no fork: what ``concurrent.interpreters`` makes.
* ``legacy``: shared GIL, daemon threads and fork allowed: what ``Py_NewInterpreter`` makes
  (mod_wsgi's default application groups).

What must hold: the child exits 0 and prints nothing; in the sub-interpreter the Ping is
``"disabled"`` with "sub-interpreter" in its reason and no thread was started; the
sub-interpreter's destruction is not delayed; the child does not hang at shutdown; and
the process's ping comes from its main interpreter only (exactly one when the main
interpreter imported the package, none when only the sub-interpreter did).

Both interpreters report through a JSON-lines file (never stdout, which must stay empty).
A ping handed over at exit arrives shortly *after* the child has gone: the collector is
given ``WAIT`` seconds for it, then ``QUIET`` seconds in which no second one may arrive.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ChildResult, autoping_package, child_env, run_child
from loopback import Collector


def _subinterpreter_api() -> str | None:
    """The private module that creates sub-interpreters here, or None."""
    if sys.implementation.name != "cpython" or sys.version_info < (3, 12):
        return None
    import importlib.util

    for name in ("_interpreters", "_xxsubinterpreters"):
        if importlib.util.find_spec(name) is not None:
            return name
    return None


pytestmark = [
    pytest.mark.skipif(
        sys.version_info < (3, 12),
        reason="sub-interpreters with their own config (isolated/legacy) and _thread._is_main_interpreter() "
        "need CPython 3.12+",
    ),
    pytest.mark.skipif(
        sys.version_info >= (3, 12) and _subinterpreter_api() is None,
        reason="this CPython has neither _interpreters nor _xxsubinterpreters",
    ),
    pytest.mark.skipif(not hasattr(os, "posix_spawn"), reason="the detached sender needs posix_spawn"),
]

#: Seconds the child may run before it counts as hung (it is killed then).
HANG = 15.0
#: Seconds the whole child may take (start-up, two imports, a sub-interpreter, exit).
CHILD_SECONDS = 5.0
#: Seconds ``destroy()`` of the sub-interpreter may take.
DESTROY_SECONDS = 0.5
#: Seconds a handed-over ping may take to reach the collector after the child exited.
WAIT = 10.0
#: Seconds of quiet after the expected ping: a duplicate would arrive within them.
QUIET = 1.0
#: Seconds of quiet that show that nothing is coming at all.
NOTHING = 2.0

PACKAGE = "subpkg"
PATH = f"/t/{PACKAGE}/1.2.3"

#: Runs inside the sub-interpreter: imports the package and reports what it sees. Only
#: modules that every kind of sub-interpreter can import (3.12.1 aborts the process at
#: exit when an isolated sub-interpreter imported ``ssl`` or ``_asyncio``).
SUB_CODE = """\
import _thread, json, sys, time
def note(**fields):
    with open(REPORT, "a", encoding="utf-8") as stream:
        stream.write(json.dumps(dict(fields, where="sub")) + "\\n")
try:
    fresh = "scarf_autoping" not in sys.modules
    threads = _thread._count()
    started = time.monotonic()
    import {package}
    import_seconds = time.monotonic() - started
    ping = {package}.PING
    fields = dict(fresh=fresh, status=ping.status, reason=ping.reason, new_threads=_thread._count() - threads,
                  is_main=_thread._is_main_interpreter(), import_seconds=import_seconds)
    if {wait}:
        started = time.monotonic()
        fields.update(waited=ping.wait(2.0), wait_seconds=time.monotonic() - started)
    note(**fields)
except BaseException:
    import traceback
    note(error=traceback.format_exc())
"""

#: Runs in the child's main interpreter. ORDER: "sub" (the package imported only in the
#: sub-interpreter), "main-then-sub", "sub-then-main", or "main-wait" (main then sub, and
#: the main interpreter waits for its ping while the sub-interpreter is alive).
MAIN_CODE = """\
import json, sys, time
REPORT, KIND, MODE, ORDER, SUB = {report!r}, {kind!r}, {mode!r}, {order!r}, {sub!r}
def note(**fields):
    with open(REPORT, "a", encoding="utf-8") as stream:
        stream.write(json.dumps(dict(fields, where="main")) + "\\n")
SUB = "REPORT = " + repr(REPORT) + "\\n" + SUB
if sys.version_info >= (3, 13):
    import _interpreters as interpreters
    iid = interpreters.create(KIND)
    def run(code):
        failure = interpreters.exec(iid, code)
        if failure is not None:
            note(error=failure.errdisplay)
else:
    import _xxsubinterpreters as interpreters
    iid = interpreters.create(isolated=KIND == "isolated")
    def run(code):
        try:
            interpreters.run_string(iid, code)
        except Exception as exc:
            note(error=repr(exc))
if ORDER in ("main-then-sub", "main-wait"):
    import {package}
run(SUB)
if ORDER == "sub-then-main":
    import {package}
if ORDER == "main-wait":
    delivered = {package}.PING.wait(10)
    note(delivered=delivered, status={package}.PING.status, reason={package}.PING.reason)
note(main_imported="scarf_autoping" in sys.modules)
if MODE == "destroy":
    started = time.monotonic()
    interpreters.destroy(iid)
    note(destroy_seconds=time.monotonic() - started)
"""


def _run(site: Path, collector: Collector, kind: str, mode: str, order: str,
         wait: bool = False) -> tuple[ChildResult, list[dict]]:
    """Run one child and return what it did and what its interpreters reported. With ``wait``
    the sub-interpreter also calls ``PING.wait(2.0)`` after the import (which would let a
    wrongly started thread finish, so the other cases leave it out)."""
    autoping_package(site, PACKAGE, collector.url + "/t/{package}/{version}")
    report = site.parent / "report.jsonl"
    sub = SUB_CODE.format(package=PACKAGE, wait=wait)
    code = MAIN_CODE.format(report=str(report), kind=kind, mode=mode, order=order, sub=sub, package=PACKAGE)
    try:
        result = run_child(code, child_env(site), timeout=HANG)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the child hung: still running after {HANG} s ({kind} sub-interpreter, {mode}, {order}); "
                    f"stdout={exc.stdout!r} stderr={exc.stderr!r}")
    lines = report.read_text(encoding="utf-8").splitlines() if report.exists() else []
    return result, [json.loads(line) for line in lines]


def _check_child(result: ChildResult, notes: list[dict], seconds: float = CHILD_SECONDS) -> dict:
    """The checks every case shares; returns the sub-interpreter's report."""
    errors = [n["error"] for n in notes if "error" in n]
    assert not errors, "an exception escaped:\n" + "\n".join(errors) + f"\n{result!r}"
    assert result.returncode == 0, result
    assert result.stdout == "", result
    assert result.stderr == "", result
    assert result.seconds < seconds, result
    subs = [n for n in notes if n["where"] == "sub"]
    assert len(subs) == 1, f"the sub-interpreter did not report: {notes!r} {result!r}"
    sub = subs[0]
    assert sub["is_main"] is False, sub
    assert sub["fresh"] is True, f"the sub-interpreter shared the main's sys.modules: {sub!r}"
    assert sub["status"] == "disabled", sub
    assert "sub-interpreter" in (sub["reason"] or ""), sub
    assert sub["new_threads"] == 0, f"a thread was started in the sub-interpreter: {sub!r}"
    return sub


def _check_destroy(mode: str, notes: list[dict]) -> None:
    timings = [n["destroy_seconds"] for n in notes if "destroy_seconds" in n]
    if mode == "destroy":
        assert len(timings) == 1, f"destroy() did not return: {notes!r}"
        assert timings[0] < DESTROY_SECONDS, f"destroying the sub-interpreter took {timings[0]:.3f} s"
    else:
        assert timings == []


CASES = [(kind, mode) for kind in ("isolated", "legacy") for mode in ("destroy", "leave")]


@pytest.mark.parametrize(("kind", "mode"), CASES, ids=[f"{k}-{m}" for k, m in CASES])
def test_imported_only_in_sub_interpreter_sends_nothing(site: Path, collector: Collector, kind: str, mode: str):
    result, notes = _run(site, collector, kind, mode, "sub")
    _check_child(result, notes)
    _check_destroy(mode, notes)
    mains = [n for n in notes if "main_imported" in n]
    assert mains == [{"main_imported": False, "where": "main"}], notes
    requests = collector.settle(NOTHING)
    assert requests == [], f"the sub-interpreter's import sent a ping: {requests!r}"


BOTH = [(kind, mode, order) for kind, mode in CASES for order in ("main-then-sub", "sub-then-main")]


@pytest.mark.parametrize(("kind", "mode", "order"), BOTH, ids=[f"{k}-{m}-{o}" for k, m, o in BOTH])
def test_imported_in_main_and_sub_sends_one_ping(site: Path, collector: Collector, kind: str, mode: str,
                                                  order: str):
    result, notes = _run(site, collector, kind, mode, order)
    _check_child(result, notes)
    _check_destroy(mode, notes)
    requests = collector.wait_for(1, timeout=WAIT)
    assert requests, f"the main interpreter's ping never arrived: {result!r} {notes!r}"
    requests = collector.settle(QUIET)
    assert [r.path for r in requests] == [PATH], f"expected one ping from the main interpreter: {requests!r}"


@pytest.mark.parametrize("kind", ["isolated", "legacy"])
def test_main_ping_delivered_while_sub_interpreter_alive(site: Path, collector: Collector, kind: str):
    result, notes = _run(site, collector, kind, "destroy", "main-wait")
    _check_child(result, notes, seconds=CHILD_SECONDS + 10)  # the main interpreter waits up to 10 s for its ping
    _check_destroy("destroy", notes)
    waits = [n for n in notes if "delivered" in n]
    assert len(waits) == 1, notes
    assert waits[0]["delivered"] is True, waits[0]
    assert waits[0]["status"] == "sent", waits[0]
    requests = collector.settle(QUIET)
    assert [r.path for r in requests] == [PATH], f"expected one ping from the main interpreter: {requests!r}"


@pytest.mark.parametrize("kind", ["isolated", "legacy"])
def test_wait_on_disabled_ping_returns_at_once(site: Path, collector: Collector, kind: str):
    result, notes = _run(site, collector, kind, "destroy", "sub", wait=True)
    sub = _check_child(result, notes)
    _check_destroy("destroy", notes)
    assert sub["waited"] is False, sub
    # Microseconds expected; a wait that blocked would take its whole 2 s.
    assert sub["wait_seconds"] < 1.5, f"PING.wait() blocked on a disabled ping: {sub!r}"
    assert collector.settle(NOTHING) == []
