"""Behaviour of ``ScarfEventLogger``, the drop-in for the Scarf Python SDK: real POSTs to a
real loopback server, in this process and in short-lived child interpreters (including
Ctrl-C during a synchronous event, a full stderr, and background events taken by our
thread just before exit). The transport itself (deadlines, keep-alive, TLS, proxies):
``unit/test_transport.py``; the SDK side by side: ``test_sdk_conformance.py``."""

from __future__ import annotations

import json
import platform
import re
import subprocess
import sys
import textwrap
import threading
import time
import types

import pytest
from helpers import NOTHING_QUIET, child_env, linux_only, needs_posix_spawn, run_child
from loopback import free_port

import scarf_autoping
from scarf_autoping import Ping, ScarfEventLogger

#: Variables of the test runner's environment that would change what these tests see.
_ENV = ("DO_NOT_TRACK", "SCARF_NO_ANALYTICS", "SCARF_ANALYTICS", "SCARF_VERBOSE", "SCARF_AUTOPING_DEBUG",
        "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)


def _sdk_user_agent() -> str:
    system = platform.system()
    name = "macOS" if system == "Darwin" else system.lower()
    return (f"scarf-autoping/{scarf_autoping.__version__} "
            f"(platform={name}; arch={platform.machine()}; python={platform.python_version()})")


# --- constructor -------------------------------------------------------------------------


def test_constructor_defaults_match_the_sdk():
    logger = ScarfEventLogger(endpoint_url="https://x.example/events/")
    assert logger.endpoint_url == "https://x.example/events"
    assert logger.timeout == ScarfEventLogger.DEFAULT_TIMEOUT == 3.0
    assert logger.verbose is False
    assert logger.exit_timeout == 1.0
    custom = ScarfEventLogger("http://x.example", timeout=5.0, verbose=True)
    assert (custom.endpoint_url, custom.timeout, custom.verbose) == ("http://x.example", 5.0, True)


@pytest.mark.parametrize("url", ["", None, "ftp://x.example", "x.example/e", "https://", "https:///path",
                                 "mailto:a@b.example", "https://x.exa mple/e", "http://x.example:99999", 42])
def test_bad_endpoint_is_a_value_error(url):
    with pytest.raises(ValueError, match="endpoint_url"):
        ScarfEventLogger(url)


def test_surrounding_whitespace_is_removed_as_requests_does():
    assert ScarfEventLogger(" https://x.example/e/ ").endpoint_url == "https://x.example/e"
    assert ScarfEventLogger("\thttp://x.example\n").endpoint_url == "http://x.example"


def test_missing_endpoint_is_an_error():
    with pytest.raises(TypeError):
        ScarfEventLogger()  # type: ignore[call-arg]


@pytest.mark.parametrize("kwargs", [{"timeout": 0}, {"timeout": -1}, {"timeout": "3"}, {"timeout": True},
                                    {"exit_timeout": 0}, {"exit_timeout": -0.5}])
def test_bad_timeouts_are_value_errors(kwargs):
    with pytest.raises(ValueError, match="timeout"):
        ScarfEventLogger("https://x.example", **kwargs)


@pytest.mark.parametrize("value,expected", [("1", True), ("true", True), ("TRUE", True), ("0", False),
                                            ("false", False), ("", False), ("yes", False)])
def test_verbose_follows_scarf_verbose_like_the_sdk(monkeypatch, capsys, value, expected):
    monkeypatch.setenv("SCARF_VERBOSE", value)
    assert ScarfEventLogger("https://x.example").verbose is expected
    assert ScarfEventLogger("https://x.example", verbose=not expected).verbose is (not expected)
    capsys.readouterr()


# --- what is sent ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "properties",
    [
        {"event": "package_download", "package": "scarf", "version": "1.0.0"},
        {},
        {"event": "nested", "details": {"version": "1.0.0", "platforms": ["linux", "macos"], "n": None},
         "count": 3, "ratio": 0.5, "ok": True},
        {"event": "ünïcødé", "name": "日本語", "emoji": "🧣", "quote": "a \"b\" \\ c\n"},
    ],
    ids=["flat", "empty", "nested", "non-ascii"],
)
def test_exact_json_body_in_one_post(collector, properties):
    logger = ScarfEventLogger(collector.url + "/events/")
    assert logger.log_event(properties) is True
    reqs = collector.wait_for(1)
    assert len(reqs) == 1
    req = reqs[0]
    assert (req.method, req.target) == ("POST", "/events")
    assert req.headers["Content-Type"] == "application/json"
    assert req.body == json.dumps(properties, ensure_ascii=False).encode("utf-8")
    assert json.loads(req.body.decode("utf-8")) == properties
    assert req.headers["User-Agent"] == _sdk_user_agent()
    assert "Authorization" not in req.headers and "Cookie" not in req.headers


def test_keyword_properties_and_timeout_and_any_mapping(collector):
    logger = ScarfEventLogger(endpoint_url=collector.url, timeout=5.0)
    assert logger.log_event(properties={"event": "custom_event"}, timeout=1.0) is True
    assert logger.log_event(types.MappingProxyType({"event": "proxy"})) is True
    bodies = [json.loads(r.body) for r in collector.wait_for(2)]
    assert bodies == [{"event": "custom_event"}, {"event": "proxy"}]


def test_every_call_sends_even_in_ci(collector, monkeypatch):
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    logger = ScarfEventLogger(collector.url)
    assert [logger.log_event({"i": i}) for i in range(3)] == [True, True, True]
    assert [json.loads(r.body) for r in collector.wait_for(3)] == [{"i": 0}, {"i": 1}, {"i": 2}]


@pytest.mark.parametrize("behaviour,expected", [("ok", True), ("status:200", True), ("status:201", True),
                                                ("status:404", False), ("status:500", False),
                                                ("redirect:http://127.0.0.1:9/elsewhere", False)])
def test_true_only_for_2xx(make_collector, behaviour, expected):
    server = make_collector(behaviour)
    assert ScarfEventLogger(server.url).log_event({"event": "e"}) is expected
    assert len(server.settle(0.1)) == 1  # the redirect is not followed


# --- opting out --------------------------------------------------------------------------


@pytest.mark.parametrize("name,value", [("DO_NOT_TRACK", "1"), ("DO_NOT_TRACK", "true"), ("DO_NOT_TRACK", "yes"),
                                        ("SCARF_NO_ANALYTICS", "1"), ("SCARF_NO_ANALYTICS", "TRUE"),
                                        ("SCARF_ANALYTICS", "false"), ("SCARF_ANALYTICS", "0")])
def test_each_opt_out_sends_nothing(collector, monkeypatch, capsys, name, value):
    logger = ScarfEventLogger(collector.url)
    monkeypatch.setenv(name, value)  # read at each call, not at construction
    assert logger.log_event({"event": "e"}) is False
    ping = logger.log_event({"event": "e"}, background=True)
    assert isinstance(ping, Ping)
    assert (ping.status, ping.reason) == ("disabled", f"opted out by {name}")
    assert ping.wait(0) is False
    assert collector.settle(0.2) == []
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("value", ["0", "false", "", "no", "off"])
def test_falsy_values_are_not_opt_outs(collector, monkeypatch, value):
    for name in ("DO_NOT_TRACK", "SCARF_NO_ANALYTICS"):
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SCARF_ANALYTICS", "true")
    assert ScarfEventLogger(collector.url).log_event({}) is True


def test_opted_out_imports_nothing_heavy(collector):
    child = run_child(
        f"""
        import sys
        from scarf_autoping import ScarfEventLogger
        logger = ScarfEventLogger({collector.url!r})
        print(logger.log_event({{"event": "e"}}), logger.log_event({{}}, background=True).status,
              "requests" in sys.modules)
        """,
        child_env(DO_NOT_TRACK="1"),
    )
    assert (child.returncode, child.stdout, child.stderr) == (0, "False disabled False\n", ""), child
    assert collector.settle(NOTHING_QUIET) == []


# --- faults ------------------------------------------------------------------------------


def test_refused_is_false_and_quick():
    started = time.monotonic()
    assert ScarfEventLogger(f"http://127.0.0.1:{free_port()}").log_event({"event": "e"}) is False
    took = time.monotonic() - started
    assert took < 5.0, f"a refused connection took {took:.2f} s, expected milliseconds"


def test_unresolvable_host_is_false():
    assert ScarfEventLogger("https://scarf-autoping-test.invalid/e").log_event({"event": "e"}) is False


@pytest.mark.parametrize("where", ["constructor", "call"])
def test_never_answering_endpoint_honours_the_timeout(make_collector, where):
    server = make_collector("hang")
    logger = ScarfEventLogger(server.url, timeout=0.3 if where == "constructor" else 30.0)
    started = time.monotonic()
    result = logger.log_event({"event": "e"}) if where == "constructor" else logger.log_event({"event": "e"}, 0.3)
    elapsed = time.monotonic() - started
    assert result is False
    # 0.3 s expected; without it the call would wait 30 s (or the default 3 s).
    assert 0.25 <= elapsed < 2.5, f"took {elapsed:.2f} s, expected about 0.3 s"


def test_an_unexpected_exception_in_requests_is_false(collector, monkeypatch):
    import requests

    def explode(*args, **kwargs):
        raise RuntimeError("something odd deep inside")

    monkeypatch.setattr(requests.Session, "send", explode)
    assert ScarfEventLogger(collector.url).log_event({"event": "e"}) is False


@pytest.mark.parametrize(
    "properties,error",
    [
        ({"when": object()}, TypeError),
        ({"tags": {"a", "b"}}, TypeError),
        ({"raw": b"bytes"}, TypeError),
        ({("tuple", "key"): 1}, TypeError),
        ({"deep": {"deeper": [1, {"x": object()}]}}, TypeError),
        (["event"], TypeError),
        (None, TypeError),
        ("event", TypeError),
        ({"nan": float("nan")}, TypeError),
        ({"inf": float("inf")}, TypeError),
    ],
)
@pytest.mark.parametrize("background", [False, True])
@pytest.mark.parametrize("opted_out", [False, True])
def test_unserialisable_properties_raise_before_anything_is_sent(collector, monkeypatch, properties, error,
                                                                  background, opted_out):
    if opted_out:
        monkeypatch.setenv("DO_NOT_TRACK", "1")
    with pytest.raises(error):
        ScarfEventLogger(collector.url).log_event(properties, background=background)
    assert collector.settle(0.05) == []


def test_bad_call_timeout_is_a_value_error(collector):
    with pytest.raises(ValueError, match="timeout"):
        ScarfEventLogger(collector.url).log_event({}, timeout=0)
    assert collector.settle(0.05) == []


# --- background --------------------------------------------------------------------------


def test_background_returns_a_ping_at_once_and_delivers(make_collector):
    server = make_collector("delay:2")
    logger = ScarfEventLogger(server.url + "/bg")
    properties = {"event": "bg_event", "details": {"n": 1}}
    started = time.monotonic()
    ping = logger.log_event(properties, background=True)
    took = time.monotonic() - started
    # Microseconds expected; sending on the caller's thread would take the server's 2 s.
    assert took < 1.0, f"log_event(background=True) took {took:.2f} s, expected a few ms (it returns at once)"
    assert isinstance(ping, Ping)
    assert (ping.package, ping.url, ping.status) == ("bg_event", server.url + "/bg", "pending")
    properties["details"]["n"] = 2  # serialised at the call: later changes are not sent
    assert ping.wait(5) is True
    assert (ping.status, ping.reason) == ("sent", "HTTP 204")
    req = server.wait_for(1)[0]
    assert (req.method, req.path, json.loads(req.body)) == ("POST", "/bg", {"event": "bg_event", "details": {"n": 1}})
    assert req.headers["User-Agent"] == _sdk_user_agent()


def test_background_failures_settle_as_failed(make_collector):
    broken = make_collector("status:500")
    hanging = make_collector("hang")
    failed = ScarfEventLogger(broken.url).log_event({}, background=True)
    started = time.monotonic()
    timed_out = ScarfEventLogger(hanging.url).log_event({"event": 7}, 0.3, background=True)
    assert failed.wait(5) is False and (failed.status, failed.reason) == ("failed", "HTTP 500")
    assert failed.package == "event"  # no string "event" property: a generic label
    assert timed_out.wait(5) is False and timed_out.status == "failed"
    assert "timed out" in timed_out.reason
    took = time.monotonic() - started
    # 0.3 s (the timeout) expected; a timeout not applied would run into wait()'s 5 s.
    assert took < 4.0, f"the failures took {took:.2f} s to settle, expected about 0.3 s"


def test_background_from_a_short_lived_child_is_delivered(make_collector):
    slow = make_collector("delay:0.3")
    child = run_child(
        f"""
        from scarf_autoping import ScarfEventLogger
        ScarfEventLogger({slow.url!r}).log_event({{"event": "cli_run", "argv": ["x", "é"]}}, background=True)
        """,
        child_env(),
    )
    assert (child.returncode, child.stdout, child.stderr) == (0, "", ""), child
    reqs = slow.wait_for(1, timeout=2)
    assert len(reqs) == 1
    assert json.loads(reqs[0].body.decode("utf-8")) == {"event": "cli_run", "argv": ["x", "é"]}


@pytest.mark.parametrize("exit_timeout", [None, 0.3])
def test_exit_waits_at_most_the_exit_bound_for_an_event_in_flight(make_collector, exit_timeout, tmp_path):
    hanging = make_collector("hang")
    arg = "" if exit_timeout is None else f", exit_timeout={exit_timeout}"
    # The child ends only once its request is on the wire (the server has it), not after a
    # guessed delay: on a loaded machine the worker may take longer than any guess to send.
    arrived = tmp_path / "arrived"
    threading.Thread(target=lambda: hanging.wait_for(1, timeout=30) and arrived.touch(), daemon=True).start()
    child = run_child(
        f"""
        import atexit, os, time
        from scarf_autoping import ScarfEventLogger
        logger = ScarfEventLogger({hanging.url!r}, timeout=10{arg})
        # Registered before the worker's own exit handler, so it runs after the exit wait.
        atexit.register(lambda: print(round(time.monotonic() - started, 2), ping.status))
        ping = logger.log_event({{"event": "e"}}, background=True)
        ping.wait(0)  # ends the deferral: the worker sends it, and it hangs on the wire
        while not os.path.exists({str(arrived)!r}):  # until the server has it (run_child's timeout bounds it)
            time.sleep(0.01)
        started = time.monotonic()
        """,
        child_env(),
    )
    assert (child.returncode, child.stderr) == (0, ""), child
    bound = 1.0 if exit_timeout is None else exit_timeout
    seconds, status = child.stdout.split()
    # Exit waits the bound, not the request's 10 s timeout.
    assert bound - 0.05 <= float(seconds) < bound + 2.5, f"exit waited {seconds} s, expected {bound} s: {child!r}"
    assert status == "pending", child  # abandoned at the bound, never sent twice
    assert len(hanging.wait_for(1)) == 1
    assert len(hanging.settle(0.5)) == 1


def test_an_event_not_yet_sent_at_exit_is_handed_over(make_collector):
    hanging = make_collector("hang")
    child = run_child(
        f"""
        import atexit, time
        from scarf_autoping import ScarfEventLogger
        atexit.register(lambda: print(round(time.monotonic() - started, 2), ping.status))
        ping = ScarfEventLogger({hanging.url!r}, timeout=10).log_event({{"event": "late", "n": "é"}}, background=True)
        started = time.monotonic()
        """,
        child_env(),
    )
    assert (child.returncode, child.stderr) == (0, ""), child
    seconds, status = child.stdout.split()
    assert status == "handed-over", child
    # Handed over at once; waiting for the hanging request would take the 1 s exit bound.
    assert float(seconds) < 0.8, f"exit took {seconds} s, expected a few ms: {child!r}"
    reqs = hanging.wait_for(1, timeout=10)
    assert len(reqs) == 1 and reqs[0].method == "POST"
    assert json.loads(reqs[0].body.decode("utf-8")) == {"event": "late", "n": "é"}
    assert reqs[0].headers["Content-Type"] == "application/json"
    assert reqs[0].headers["User-Agent"].startswith("scarf-autoping/")


def test_exit_bound_is_capped_by_the_event_timeout(make_collector):
    hanging = make_collector("hang")
    logger = ScarfEventLogger(hanging.url, exit_timeout=5.0)
    ping = logger.log_event({}, 0.2, background=True)
    assert ping.exit_timeout == 0.2
    ping.wait(3)


def test_background_debug_line_with_scarf_autoping_debug(collector):
    child = run_child(
        f"""
        from scarf_autoping import ScarfEventLogger
        ScarfEventLogger({collector.url!r}).log_event({{"event": "dbg"}}, background=True).wait(5)
        """,
        child_env(SCARF_AUTOPING_DEBUG="1"),
    )
    assert child.returncode == 0, child
    assert re.fullmatch(rf"scarf-autoping: dbg: sent \(HTTP 204\) in \d+ ms: {re.escape(collector.url)}\n",
                        child.stderr), child


# --- verbose -----------------------------------------------------------------------------


def test_verbose_prints_endpoint_properties_timeout_status_and_ms(collector, capsys):
    logger = ScarfEventLogger(collector.url + "/v", timeout=2.5, verbose=True)
    assert logger.log_event({"event": "v", "name": "é"}) is True
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert lines[:4] == ["Scarf Logger Configuration:", f"  Endpoint URL: {collector.url}/v", "  Timeout: 2.5s",
                         f"  User-Agent: {_sdk_user_agent()}"]
    assert lines[4:8] == ["Sending event:", f"  Endpoint URL: {collector.url}/v",
                          "  Properties: {'event': 'v', 'name': 'é'}", "  Timeout: 2.5s"]
    assert re.fullmatch(r"Response received in \d+ ms:", lines[8])
    assert lines[9:] == ["  Status: 204"]


def test_verbose_prints_the_error_and_the_opt_out(capsys, monkeypatch):
    logger = ScarfEventLogger(f"http://127.0.0.1:{free_port()}", verbose=True)
    capsys.readouterr()
    assert logger.log_event({}, timeout=1.0) is False
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert out == ""
    assert lines[-3] == "  Timeout: 1.0s"
    assert re.fullmatch(r"Error after \d+ ms:", lines[-2])
    assert lines[-1] == "  ConnectionError: Connection refused"
    monkeypatch.setenv("SCARF_NO_ANALYTICS", "1")
    assert logger.log_event({}) is False
    assert capsys.readouterr() == ("", "Analytics are disabled via environment variables (SCARF_NO_ANALYTICS)\n")


def test_verbose_background_in_a_child_from_scarf_verbose(collector):
    child = run_child(
        f"""
        from scarf_autoping import ScarfEventLogger
        ScarfEventLogger({collector.url!r}).log_event({{"event": "bgv"}}, background=True).wait(10)
        """,
        child_env(SCARF_VERBOSE="1"),
    )
    assert (child.returncode, child.stdout) == (0, ""), child
    lines = child.stderr.splitlines()
    assert lines[4:8] == ["Sending event in the background:", f"  Endpoint URL: {collector.url}",
                          "  Properties: {'event': 'bgv'}", "  Timeout: 3.0s"]
    assert re.fullmatch(r"Response received in \d+ ms:", lines[8]) and lines[9] == "  Status: 204"


def test_silent_when_not_verbose(make_collector, capsys):
    ok = make_collector("ok")
    hanging = make_collector("hang")
    assert ScarfEventLogger(ok.url).log_event({"event": "e"}) is True
    assert ScarfEventLogger(f"http://127.0.0.1:{free_port()}").log_event({}) is False
    assert ScarfEventLogger(hanging.url).log_event({}, 0.2) is False
    assert ScarfEventLogger(ok.url).log_event({}, background=True).wait(5) is True
    assert capsys.readouterr() == ("", "")


# --- drop-in -----------------------------------------------------------------------------


def test_the_sdk_readme_usage_runs_unchanged_but_for_the_import(collector):
    child = run_child(
        f"""
        import sys
        from scarf_autoping import ScarfEventLogger
        assert "requests" not in sys.modules
        logger = ScarfEventLogger(endpoint_url={collector.url!r}, timeout=5.0)
        success = logger.log_event({{"event": "package_download", "package": "scarf", "version": "1.0.0"}})
        print(success)
        success = logger.log_event(properties={{"event": "custom_event"}}, timeout=1.0)
        print(success)
        success = logger.log_event({{}})
        print(success)
        """,
        child_env(CI="true"),
    )
    assert (child.returncode, child.stdout, child.stderr) == (0, "True\nTrue\nTrue\n", ""), child
    bodies = [json.loads(r.body) for r in collector.wait_for(3)]
    assert bodies == [{"event": "package_download", "package": "scarf", "version": "1.0.0"},
                      {"event": "custom_event"}, {}]


def test_importing_the_logger_stays_light():
    child = run_child(
        """
        import sys
        import scarf_autoping
        scarf_autoping.ScarfEventLogger("https://x.example")
        print(sorted(m for m in ("requests", "urllib3", "distro", "platform", "threading") if m in sys.modules))
        """,
        child_env(),
    )
    assert child.returncode == 0, child
    assert "requests" not in child.stdout and "urllib3" not in child.stdout and "distro" not in child.stdout


def test_circular_properties_are_a_type_error(collector):
    loop: dict = {}
    loop["self"] = loop
    with pytest.raises(TypeError, match="serialised"):
        ScarfEventLogger(collector.url).log_event(loop)
    assert collector.settle(0.05) == []


def test_ctrl_c_interrupts_a_synchronous_event(make_collector):
    hang = make_collector("hang")
    child = run_child(
        f"""
        import os, signal, threading, time
        from scarf_autoping import ScarfEventLogger
        threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
        started = time.monotonic()
        try:
            ScarfEventLogger("{hang.url}/e", timeout=5).log_event({{"event": "x"}})
            print("not interrupted")
        except KeyboardInterrupt:
            print("interrupted", round(time.monotonic() - started) < 3)
        """,
        child_env(None),
        timeout=20,
    )
    assert child.stdout.strip() == "interrupted True", child


def _run_with_full_stderr(code: str, env: dict[str, str]) -> tuple[int, bytes, float]:
    """Run ``code`` with its stderr pipe filled up and never read until the process ends."""
    prefix = "import fcntl, os\nos.write(2, b'x' * (fcntl.fcntl(2, 1032) - 8))\n"
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", prefix + code], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        returncode = proc.wait(timeout=15)
        seconds = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
        _, stderr = proc.communicate()
    return returncode, stderr, seconds


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="F_GETPIPE_SZ is Linux-only")
def test_verbose_background_event_to_a_full_stderr_never_aborts_exit(collector):
    code = (
        "from scarf_autoping import ScarfEventLogger\n"
        f"ScarfEventLogger({collector.url + '/e'!r}, timeout=0.5, verbose=False, exit_timeout=0.5)"
        ".log_event({'event': 'x'}, background=True).wait(0)\n"  # ends the deferral: sent by the worker
        "import scarf_autoping.events as ev\n"
    )
    # verbose only for the worker's lines: the calling thread's lines would block the host itself
    code = code.replace("verbose=False", "verbose=True").replace(
        "from scarf_autoping import ScarfEventLogger\n",
        "from scarf_autoping import ScarfEventLogger, events\n"
        "_say = events._say\n"
        "events._say = lambda *lines, on_worker=False: on_worker and _say(*lines, on_worker=True)\n",
    )
    returncode, stderr, seconds = _run_with_full_stderr(code, child_env(None))
    assert returncode == 0, stderr[-600:]
    assert b"Fatal" not in stderr
    assert seconds < 0.5 + 2.5, f"exit took {seconds:.2f} s, expected about the exit_timeout (0.5 s)"
    assert len(collector.wait_for(1, timeout=5)) == 1
    assert len(collector.settle(0.3)) == 1


#: Seconds a child may run before it counts as hung.
HANG = 30.0


# --- 12. jobs the thread has taken but not yet sent at exit ------------------------------


@linux_only
@needs_posix_spawn
def test_background_events_logged_just_before_exit_all_arrive(make_collector):
    server = make_collector("delay:0.1")
    code = textwrap.dedent(f"""\
        from scarf_autoping import ScarfEventLogger
        logger = ScarfEventLogger({server.url + "/e"!r})
        pings = [logger.log_event({{"event": "e", "n": n}}, background=True) for n in range(5)]
        pings[-1].wait(0)  # ends the deferral: the thread takes all five at once
        import time; time.sleep(0.05)  # and the program ends
        """)
    child = run_child(code, child_env(), timeout=HANG)
    assert (child.returncode, child.stdout, child.stderr) == (0, "", ""), child
    server.wait_for(5, timeout=20)
    numbers = sorted(json.loads(r.body.decode("utf-8"))["n"] for r in server.settle(NOTHING_QUIET))
    assert numbers == [0, 1, 2, 3, 4], child  # old code: 2 or 3 of them


@linux_only
@needs_posix_spawn
def test_events_taken_by_the_thread_follow_on_exit_drop(make_collector):
    """What the thread has taken but not started is treated as queued: ``drop`` drops it."""
    server = make_collector("delay:0.2")
    code = textwrap.dedent(f"""\
        import atexit, json
        from scarf_autoping import ScarfEventLogger, engine
        atexit.register(lambda: print(json.dumps(sorted(p.status for p in pings))))  # runs after ours
        logger = ScarfEventLogger({server.url + "/e"!r}, exit_timeout=10)
        pings = [logger.log_event({{"event": "e", "n": n}}, background=True) for n in range(4)]
        for job in engine.ENGINE.queue:
            job.on_exit = "drop"
        pings[-1].wait(0)  # ends the deferral: the thread takes all four at once
        import time; time.sleep(0.05)  # and the program ends
        """)
    child = run_child(code, child_env(), timeout=HANG)
    assert (child.returncode, child.stderr) == (0, ""), child
    statuses = json.loads(child.stdout)
    # The one being sent when exit began is waited for; the others are dropped, none left pending.
    assert set(statuses) <= {"dropped", "sent"} and statuses.count("dropped") >= 3, child
