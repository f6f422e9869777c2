"""Side by side with the Scarf Python SDK (``scarf-sdk``, a test extra): the same scenarios
run through ``scarf.ScarfEventLogger`` and through the drop-in against one recording
server on loopback, comparing what arrives (method, target, headers, body bytes, TCP
connections) and what each call answers. Where they differ on purpose, the test pins the
difference that docs/events.md lists."""

from __future__ import annotations

import base64
import json
import time

import pytest
from loopback import Collector as RecordingServer

import scarf_autoping
from scarf_autoping import ScarfEventLogger as Ours

scarf = pytest.importorskip("scarf")
requests = pytest.importorskip("requests")
Theirs = scarf.ScarfEventLogger

_ENV = ("DO_NOT_TRACK", "SCARF_NO_ANALYTICS", "SCARF_ANALYTICS", "SCARF_VERBOSE", "SCARF_AUTOPING_DEBUG",
        "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))  # the SDK would read one


@pytest.fixture
def server(make_collector):
    return make_collector("ok")


def _both(server: RecordingServer, path: str, call) -> tuple[object, object, list, list]:
    """Run ``call(logger)`` with the SDK's logger, then ours; what each answered and what arrived."""
    arrivals = []
    answers = []
    for cls in (Theirs, Ours):
        before = len(server.arrivals)
        logger = cls(server.url + path) if not path.startswith(("http", " ")) else cls(path)
        answers.append(call(logger))
        arrivals.append(server.wait_for(before + 1)[before:])
    return answers[0], answers[1], arrivals[0], arrivals[1]


def _comparable(arrival) -> dict[str, str]:
    headers = dict(arrival.headers)
    headers.pop("user-agent")
    return headers


PROPERTIES = [
    {"event": "package_download", "package": "scarf", "version": "1.0.0"},
    {},
    {"event": "nested", "details": {"versions": ["1.0.0", "1.1.0"], "meta": {"platform": "linux"}}, "n": None,
     "ratio": 0.5, "ok": True, "count": 3},
]


@pytest.mark.parametrize("properties", PROPERTIES, ids=["flat", "empty", "nested"])
def test_same_request_on_the_wire(server, properties):
    theirs, ours, (a,), (b,) = _both(server, "/events/", lambda logger: logger.log_event(properties))
    assert theirs is True and ours is True
    assert (a.method, a.target) == (b.method, b.target) == ("POST", "/events")
    assert a.body == b.body  # byte for byte
    assert _comparable(a) == _comparable(b)  # Host, Accept, Accept-Encoding, Connection, Content-*


def test_user_agent_detail_is_the_sdk_sources_form(server):
    _, _, (a,), (b,) = _both(server, "", lambda logger: logger.log_event({}))
    product_a, detail_a = a.headers["user-agent"].split(" ", 1)
    product_b, detail_b = b.headers["user-agent"].split(" ", 1)
    assert product_a.startswith("scarf-py/") and product_b == f"scarf-autoping/{scarf_autoping.__version__}"
    # 0.2.1 as published writes "arch=...,  python=..."; its source (and we) "arch=...; python=...".
    assert detail_a.replace(", python=", "; python=") == detail_b
    assert "; python=" in detail_b


def test_non_ascii_is_the_same_json_value_in_utf_8(server):
    properties = {"event": "ünïcødé", "name": "日本語"}
    _, _, (a,), (b,) = _both(server, "", lambda logger: logger.log_event(properties))
    assert json.loads(a.body) == json.loads(b.body.decode("utf-8")) == properties
    assert b"\\u00fc" in a.body and "ü".encode() in b.body  # escaped by the SDK, UTF-8 here


@pytest.mark.parametrize("path", ["/e?source=py&x=1", " {url}/lead", "{url}/trail/"])
def test_same_target_for_query_and_whitespace(server, path):
    path = path.format(url=server.url)
    _, _, (a,), (b,) = _both(server, path, lambda logger: logger.log_event({"e": 1}))
    assert a.target == b.target


def test_credentials_in_the_url_are_basic_auth_in_both(server):
    url = server.url.replace("http://", "http://us%40er:p%3Ass@") + "/auth"
    theirs, ours, (a,), (b,) = _both(server, url, lambda logger: logger.log_event({}))
    assert theirs is ours is True
    assert a.headers["authorization"] == b.headers["authorization"] == "Basic " + base64.b64encode(b"us@er:p:ss").decode()


@pytest.mark.parametrize("timeout", [1.0, 5, (3.05, 27)])
def test_timeout_forms_the_sdk_accepts_are_accepted(server, timeout):
    theirs, ours, _, _ = _both(server, "", lambda logger: logger.log_event({"t": 1}, timeout=timeout))
    assert theirs is ours is True
    theirs = Theirs(server.url, timeout=timeout)
    ours = Ours(server.url, timeout=timeout)
    assert theirs.timeout == ours.timeout == timeout


def test_keep_alive_in_both(server):
    for cls in (Theirs, Ours):
        before = server.connections
        logger = cls(server.url)
        assert all(logger.log_event({"i": i}) for i in range(20))
        assert server.connections - before == 1


def test_non_2xx_raises_in_the_sdk_and_is_false_here():
    broken = RecordingServer("status:500")
    try:
        with pytest.raises(requests.HTTPError):
            Theirs(broken.url).log_event({})
        assert Ours(broken.url).log_event({}) is False
        assert len(broken.wait_for(2)) == 2
    finally:
        broken.close()


def test_a_trickled_answer_holds_the_sdk_but_not_the_drop_in():
    slow = RecordingServer("trickle-ok:0.04")  # a valid 204 head, ~1.9 s in all
    try:
        started = time.monotonic()
        assert Theirs(slow.url).log_event({}, timeout=0.5) is True  # every byte within 0.5 s
        theirs = time.monotonic() - started
        started = time.monotonic()
        assert Ours(slow.url).log_event({}, timeout=0.5) is False  # the deadline
        ours = time.monotonic() - started
        assert theirs > 1.5 and ours < 1.2, f"SDK {theirs:.2f} s (expected ~1.9), ours {ours:.2f} s (expected ~0.5)"
    finally:
        slow.close()


# The opt-out table of the SDK's own test suite (DO_NOT_TRACK, SCARF_NO_ANALYTICS), both ways.
SDK_TABLE = [("1", "", True), ("true", "", True), ("TRUE", "", True), ("0", "", False), ("false", "", False),
             ("", "1", True), ("", "true", True), ("", "TRUE", True), ("", "0", False), ("", "false", False),
             ("", "", False), ("false", "true", True), ("true", "false", True)]


@pytest.mark.parametrize("dnt,sna,expected", SDK_TABLE)
def test_check_do_not_track_agrees_on_the_sdks_values(server, monkeypatch, dnt, sna, expected):
    monkeypatch.setenv("DO_NOT_TRACK", dnt)
    monkeypatch.setenv("SCARF_NO_ANALYTICS", sna)
    assert Theirs._check_do_not_track() is Ours._check_do_not_track() is expected
    before = len(server.arrivals)
    answers = [cls(server.url).log_event({}) for cls in (Theirs, Ours)]
    assert answers == [not expected, not expected]
    assert len(server.settle(0.05)) - before == (0 if expected else 2)


@pytest.mark.parametrize("name,value", [("DO_NOT_TRACK", "yes"), ("SCARF_NO_ANALYTICS", "on"),
                                        ("SCARF_ANALYTICS", "false"), ("SCARF_ANALYTICS", "0")])
def test_wider_opt_outs_are_honoured_here_only(server, monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    assert Theirs(server.url).log_event({}) is True
    assert Ours(server.url).log_event({}) is False
    assert len(server.settle(0.1)) == 1


@pytest.mark.parametrize("properties,theirs_error", [
    ({"nan": float("nan")}, "InvalidJSONError"),
    ({"tags": {"a"}}, "TypeError"),
])
def test_unserialisable_properties(server, properties, theirs_error):
    with pytest.raises(Exception) as raised:
        Theirs(server.url).log_event(properties)
    assert type(raised.value).__name__ == theirs_error
    with pytest.raises(TypeError):
        Ours(server.url).log_event(properties)
    assert server.settle(0.05) == []
