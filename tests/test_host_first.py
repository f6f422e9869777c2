"""Host-first delivery, seen from outside: the host program notices nothing, whatever it is.

Every case imports a throwaway package (the one ``autoping`` line) in a CHILD interpreter
that pings a loopback :class:`helpers.Collector`, and checks what the host would notice:
its exit code, zero bytes on stdout and stderr, how long it took, and what reached the
collector (exactly one ping unless the case says otherwise). A ping handed over at exit
arrives shortly *after* the child has gone: the collector is given ``WAIT`` seconds for
it, then ``settle()`` checks that nothing more arrives.

The child reports through a JSON file written by an ``atexit`` hook registered *before*
the import (so it runs after the library's own exit hook): the ``Ping``'s status, reason
and URL at the very end of the process, plus whatever the case's code put in ``RESULT``.

Cases that only check outcomes run concurrently (one collector and one site directory
per case, see :func:`run_batch`), once per session even under ``pytest -n N`` (see
:func:`shared_batch`), to keep the file fast; cases that measure time run alone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import pytest
from helpers import (
    ChildResult,
    Collector,
    RawServer,
    Request,
    autoping_package,
    child_env,
    make_package,
    run_child,
)

pytestmark = pytest.mark.skipif(not hasattr(os, "posix_spawn"), reason="the detached sender needs posix_spawn")

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


def green_available(lib: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(lib) is not None


# --- 1. eventlet and gevent, before and after, imported and patched -----------------------

#: eventlet warns that it is deprecated when imported from ``__main__``: the host's own
#: business, silenced narrowly so that anything else on stderr is seen.
QUIET_EVENTLET = (
    "import warnings\n"
    "warnings.filterwarnings('ignore', message=r'\\s*Eventlet is deprecated')\n"
)
GREEN_IMPORT = {"eventlet": QUIET_EVENTLET + "import eventlet\n", "gevent": "import gevent\n"}
GREEN_PATCH = {
    "eventlet": QUIET_EVENTLET + "import eventlet\neventlet.monkey_patch()\n",
    "gevent": "from gevent import monkey\nmonkey.patch_all()\n",
}
GREEN_LIBS = ("eventlet", "gevent")
GREEN_MODES = ("import-before", "import-after", "patch-before", "patch-after")
LIFETIMES = ("short", "long")
#: How long the long-lived child sleeps after the imports (with the possibly patched ``time.sleep``).
LONG_LIFE = 2.5


def green_body(lib: str, mode: str, life: str) -> str:
    green = (GREEN_PATCH if mode.startswith("patch") else GREEN_IMPORT)[lib]
    ours = f"import {PKG}\n{IMPORTED}"
    body = green + ours if mode.endswith("before") else ours + green
    if life == "long":
        body += f"time.sleep({LONG_LIFE})\n"
    return body + f"RESULT['green'] = {lib!r} in sys.modules\n"


@pytest.fixture(scope="module")
def green_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    def cases(root: Path) -> dict[str, Callable[[], Run]]:
        return {
            f"{lib}-{mode}-{life}": (lambda lib=lib, mode=mode, life=life: run_case(
                root / f"{lib}-{mode}-{life}", green_body(lib, mode, life)))
            for lib in GREEN_LIBS if green_available(lib)
            for mode in GREEN_MODES
            for life in LIFETIMES
        }

    return shared_batch(tmp_path_factory, "green", cases)


@pytest.mark.parametrize("life", LIFETIMES)
@pytest.mark.parametrize("mode", GREEN_MODES)
@pytest.mark.parametrize("lib", GREEN_LIBS)
def test_green_libraries(green_runs, lib, mode, life):
    pytest.importorskip(lib)
    run = green_runs[f"{lib}-{mode}-{life}"]
    assert_quiet(run)  # no MonkeyPatchWarning, no "Exception ignored in thread", no hang
    assert run.report["green"] is True, run
    assert paths(run.requests) == [PATH], run
    # Delivered in life when the child outlived the deferral (a loaded machine may still
    # have it in the sender's hands at exit), else handed over at exit.
    lifetime = run.report["ended_at"] - run.report["imported_at"]
    assert run.ping[0] in (("sent", "handed-over") if lifetime > DEFERRAL / 2 else ("handed-over",)), run


# --- 2. the C locale and a non-ASCII distribution name ----------------------------------

C_LOCALE = {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
NON_ASCII_DIST = "pkg-\u00e9"
NON_ASCII_PATH = "/t/pkg-%C3%A9"


def c_locale_case(root: Path, life: str) -> Run:
    body = (
        "import pkg_e\n" + IMPORTED
        + "RESULT['encodings'] = [sys.getfilesystemencoding(), sys.stdout.encoding, sys.flags.utf8_mode]\n"
    )
    if life == "long":
        body += "RESULT['waited'] = PING.wait(10)\n"
    return run_case(root, body, template=lambda c: c.url + "/t/{package}", env=C_LOCALE,
                    drop_env=("PYTHONIOENCODING",), package="pkg_e", dist_name=NON_ASCII_DIST)


# --- 5. HTTP_PROXY and NO_PROXY, honoured by the detached sender ----------------------------

PROXIED_HOST = "ping.invalid"
PROXIED_URL = f"http://{PROXIED_HOST}/t/{PKG.replace('_', '-')}"


def proxy_case(root: Path, life: str, no_proxy: bool) -> Run:
    body = f"import {PKG}\n{IMPORTED}"
    if life == "long":
        body += "RESULT['waited'] = PING.wait(10)\n"

    def env(collector: Collector) -> dict[str, str]:
        values = {"HTTP_PROXY": collector.url}
        if no_proxy:
            values["NO_PROXY"] = PROXIED_HOST
        return values

    return run_case(root, body, template=lambda c: f"http://{PROXIED_HOST}/t/{{package}}", env=env,
                    expect=0 if no_proxy else 1, quiet=NOTHING if no_proxy and life == "short" else QUIET)


# --- 8 and 9. on_exit="drop", and what the host imports -------------------------------------

MODULES = "[m for m in ('requests', 'urllib3', 'ssl', 'distro') if m in sys.modules]"


@pytest.fixture(scope="module")
def outcome_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    def cases(root: Path) -> dict[str, Callable[[], Run]]:
        found: dict[str, Callable[[], Run]] = {
            "c-locale-short": lambda: c_locale_case(root / "c-short", "short"),
            "c-locale-long": lambda: c_locale_case(root / "c-long", "long"),
            "drop": lambda: run_case(root / "drop", f"import {PKG}\n{IMPORTED}", args="on_exit='drop'", expect=0,
                                     quiet=NOTHING),
            "modules": lambda: run_case(
                root / "modules",
                f"import {PKG}\n{IMPORTED}RESULT['waited'] = PING.wait(10)\nRESULT['status'] = PING.status\n"
                f"RESULT['modules'] = {MODULES}\n",
            ),
        }
        for life in LIFETIMES:
            for no_proxy in (False, True):
                key = f"proxy-{life}" + ("-no-proxy" if no_proxy else "")
                found[key] = lambda life=life, no_proxy=no_proxy, key=key: proxy_case(root / key, life, no_proxy)
        return found

    return shared_batch(tmp_path_factory, "outcomes", cases)


@pytest.mark.parametrize("life", LIFETIMES)
def test_c_locale_with_a_non_ascii_distribution_name(outcome_runs, life):
    run = outcome_runs[f"c-locale-{life}"]
    assert_quiet(run)
    assert run.report["encodings"][2] == 0, run  # really not in UTF-8 mode
    assert len(run.requests) <= 1, run
    if run.requests:  # well-formed: the name percent-encoded as UTF-8
        assert run.requests[0].target == NON_ASCII_PATH, run
    assert run.ping[0] in ("sent", "handed-over", "failed"), run


@pytest.mark.parametrize("life", LIFETIMES)
def test_http_proxy_is_honoured_by_the_detached_sender(outcome_runs, life):
    run = outcome_runs[f"proxy-{life}"]
    assert_quiet(run)
    assert [r.target for r in run.requests] == [PROXIED_URL], run  # absolute form: a proxy request
    assert run.requests[0].headers.get("Host") == PROXIED_HOST, run
    if life == "long":
        assert run.report["waited"] is True, run
        assert run.ping[0] == "sent" and run.ping[2] == PROXIED_URL, run
    else:
        assert run.ping[0] == "handed-over", run


@pytest.mark.parametrize("life", LIFETIMES)
def test_no_proxy_covering_the_host_disables_the_proxy(outcome_runs, life):
    run = outcome_runs[f"proxy-{life}-no-proxy"]
    assert_quiet(run)
    assert run.requests == [], run  # straight to ping.invalid, which does not resolve
    if life == "long":
        assert run.report["waited"] is False, run
        assert run.ping[0] != "sent", run


def test_on_exit_drop_sends_nothing(outcome_runs):
    run = outcome_runs["drop"]
    assert_quiet(run)
    assert run.requests == [], run
    assert run.ping[0] == "dropped", run


def test_host_never_imports_requests_on_our_account(outcome_runs):
    run = outcome_runs["modules"]
    assert_quiet(run)
    assert (run.report["waited"], run.report["status"]) == (True, "sent"), run
    assert run.report["modules"] == [], run
    assert run.report["modules_at_end"] == [], run  # after the library's exit hook
    assert paths(run.requests) == [PATH], run


# --- 6. exactly one ping, whatever the process lifetime ----------------------------------

LIFETIME_SECONDS = (0, 0.3, 0.9, 0.98, 1.0, 1.02, 1.1, 1.5, 3.0)


@pytest.fixture(scope="module")
def lifetime_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    body = f"import {PKG}\n{IMPORTED}time.sleep({{seconds}})\n"

    def cases(root: Path) -> dict[str, Callable[[], Run]]:
        return {
            str(seconds): (lambda seconds=seconds: run_case(root / f"life-{seconds}", body.format(seconds=seconds)))
            for seconds in LIFETIME_SECONDS
        }

    return shared_batch(tmp_path_factory, "lifetimes", cases)


@pytest.mark.parametrize("seconds", LIFETIME_SECONDS)
def test_exactly_one_ping_whatever_the_lifetime(lifetime_runs, seconds):
    run = lifetime_runs[str(seconds)]
    assert_quiet(run)
    assert paths(run.requests) == [PATH], run  # none lost, none duplicated
    assert run.report["modules_at_end"] == [], run  # the hand-over at exit imports none of them either
    assert run.ping[0] in ("sent", "handed-over"), run


# --- 3. Ctrl-C while exit waits ------------------------------------------------------------


def test_ctrl_c_while_exit_waits_ends_the_process_by_sigint(tmp_path, site, make_collector):
    server = make_collector("hang")
    autoping_package(site, PKG, server.url + ROUTE, args="on_exit='wait', exit_timeout=5")
    marker = tmp_path / "reached-the-end"
    code = f"import {PKG}\nopen({str(marker)!r}, 'w').close()\n"
    proc = subprocess.Popen([sys.executable, "-c", code], env=child_env(site), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + HANG
        while not marker.exists() and proc.poll() is None:
            assert time.monotonic() < deadline, "the child never reached the end of its code"
            time.sleep(0.01)
        time.sleep(0.5)
        assert proc.poll() is None, f"the child did not wait at exit: rc={proc.returncode}"
        interrupted = time.monotonic()
        proc.send_signal(signal.SIGINT)
        try:
            stdout, stderr = proc.communicate(timeout=HANG)
        except subprocess.TimeoutExpired:
            pytest.fail("the child hung after SIGINT")
        took = time.monotonic() - interrupted
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert (proc.returncode, stdout, stderr) == (-signal.SIGINT, b"", b"")
    # Milliseconds expected; a child that kept waiting would wait its whole exit bound.
    assert took < 3.0, f"the child took {took:.2f} s to end after SIGINT"


# --- 4. a host whose stdout and stderr are pipes gets EOF when it exits ----------------------


class RecordingServer(RawServer):
    """Records each request head and never answers (until closed)."""

    def __init__(self) -> None:
        super().__init__(lambda conn, stop: stop.wait(HANG))

    def wait_for(self, count: int, timeout: float) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.requests) < count:
            time.sleep(0.01)
        with self._lock:
            return list(self.requests)


@pytest.fixture
def recording_server():
    server = RecordingServer()
    yield server
    server.close()


def test_piped_host_gets_eof_at_its_exit_while_the_sender_lives_on(tmp_path, site, recording_server):
    autoping_package(site, PKG, recording_server.url + ROUTE, args="timeout=3")
    out = tmp_path / "report.json"
    proc = subprocess.Popen([sys.executable, "-c", child_code(out, f"import {PKG}\n{IMPORTED}")], env=child_env(site),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        stdout, stderr = proc.communicate(timeout=HANG)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("communicate() never saw EOF: something holds the host's pipes")
    returned = time.time()
    assert (proc.returncode, stdout, stderr) == (0, b"", b"")
    report = json.loads(out.read_text(encoding="utf-8"))
    assert returned - report["ended_at"] < 1.0, f"EOF {returned - report['ended_at']:.2f} s after the child's end"
    assert report["ping"][0] == "handed-over", report
    heads = recording_server.wait_for(1, timeout=WAIT)
    assert [h.split(b"\r\n", 1)[0] for h in heads] == [f"GET {PATH} HTTP/1.1".encode()], heads
    assert len(recording_server.settle(QUIET)) == 1


# --- 7. exit is not delayed ---------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["slow", "dead"])
def test_a_short_lived_host_exits_as_fast_as_without_us(tmp_path, site, make_collector, endpoint):
    """A host that waited for its ping at exit would live a whole exit_timeout (1 s) longer:
    the endpoint answers after 2 s, or never. The figures themselves are benchmarks'."""
    make_package(site, "pkg_plain", "")
    server = make_collector("delay:2" if endpoint == "slow" else "hang")
    base = server.url
    autoping_package(site, PKG, base + ROUTE)
    env = child_env(site)
    plain_out, ours_out = tmp_path / "plain.json", tmp_path / "ours.json"
    plain_code = child_code(plain_out, f"import pkg_plain\n{IMPORTED}", package="pkg_plain")
    ours_code = child_code(ours_out, f"import {PKG}\n{IMPORTED}")
    plain: list[float] = []
    ours: list[float] = []
    for i in range(3):  # interleaved, so that a busy moment hits both alike
        child, _ = run_host(plain_code, env, plain_out)
        assert (child.returncode, child.stdout, child.stderr) == (0, "", ""), child
        plain.append(child.seconds)
        child, report = run_host(ours_code, env, ours_out)
        arrived = len(server.requests) if server is not None else 0
        assert (child.returncode, child.stdout, child.stderr) == (0, "", ""), child
        assert report["ping"][0] == "handed-over", report
        ours.append(child.seconds)
        if server is not None:
            assert arrived == i, "the ping reached the collector before the host had exited"
            assert len(server.wait_for(i + 1, timeout=WAIT)) == i + 1
    if endpoint == "slow":
        assert paths(server.settle(QUIET)) == [PATH] * 3
    # The fastest of three interleaved runs: a loaded machine can slow any one run, but a
    # host that waits for its ping can never be fast.
    assert min(ours) < min(plain) + EXIT_DELAY_MARGIN, (ours, plain)


# --- 8. on_exit="wait" --------------------------------------------------------------------


def test_on_exit_wait_delivers_before_the_host_exits(tmp_path, site, collector):
    autoping_package(site, PKG, collector.url + ROUTE, args="on_exit='wait'")
    out = tmp_path / "report.json"
    child, report = run_host(child_code(out, f"import {PKG}\n{IMPORTED}"), child_env(site), out)
    at_exit = list(collector.requests)
    assert (child.returncode, child.stdout, child.stderr) == (0, "", ""), child
    assert paths(at_exit) == [PATH], (child, report)  # already there when the process had ended
    assert report["ping"][:2] == ["sent", "HTTP 204"], report
    assert paths(collector.settle(QUIET)) == [PATH]  # and no detached sender sends it again


def test_on_exit_wait_gives_up_after_exit_timeout(tmp_path, site, make_collector):
    server = make_collector("hang")
    # 3 s: long enough for a loaded machine to import requests and reach the server first.
    autoping_package(site, PKG, server.url + ROUTE, args="on_exit='wait', exit_timeout=3.0")
    out = tmp_path / "report.json"
    child, report = run_host(child_code(out, f"import {PKG}\n{IMPORTED}"), child_env(site), out)
    exit_s = time.time() - report["imported_at"]
    assert (child.returncode, child.stdout, child.stderr) == (0, "", ""), child
    assert exit_s < 3.0 + EXIT_MARGIN, (exit_s, report)
    assert report["ping"][0] == "pending", report  # abandoned, silently
    assert paths(server.wait_for(1, timeout=WAIT)) == [PATH]
    assert len(server.settle(QUIET)) == 1  # no detached sender: nothing more

