"""The event logger's transport against misbehaving real servers on loopback: a deadline
that holds (a trickled head, a stalled server or proxy, a trickled TLS handshake), and one
keep-alive pool per logger (HTTP and HTTPS) that keeps no cookies, reads no ``~/.netrc``,
and is safe across threads and forks."""

from __future__ import annotations

import base64
import json
import os
import threading
import time

import pytest
from helpers import child_env, run_child
from loopback import tls_context

from scarf_autoping import ScarfEventLogger, transport

_ENV = ("DO_NOT_TRACK", "SCARF_NO_ANALYTICS", "SCARF_ANALYTICS", "SCARF_VERBOSE", "SCARF_AUTOPING_DEBUG",
        "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy", "NO_PROXY", "no_proxy",
        "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")

#: Slack for a loaded 2-CPU machine on top of a deadline (first use imports requests).
#: Beyond a deadline, what a loaded CI machine may add. Without the deadline these
#: exchanges would last for ever (a byte every 0.5 s), so the bound still tells them apart.
SLACK = 3.0


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server_factory(make_collector):
    """``server_factory(mode, ssl_context)``: the suite's loopback server factory."""
    return make_collector


def _timed(call):
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


# --- the deadline ------------------------------------------------------------------------


def test_a_trickled_head_ends_at_the_deadline(server_factory):
    server = server_factory("trickle")  # one byte of the head every 0.5 s, for ever
    transport.warm_up()
    logger = ScarfEventLogger(server.url)
    result, seconds = _timed(lambda: logger.log_event({"event": "e"}, timeout=1))
    assert result is False
    assert 0.9 <= seconds < 1 + SLACK, seconds
    result, seconds = _timed(lambda: transport.send("GET", server.url + "/p", timeout=1.0))
    assert result.status_code is None and "timed out" in result.error
    assert 0.9 <= seconds < 1 + SLACK, seconds


def test_a_trickled_head_ends_at_the_deadline_in_the_background(server_factory):
    server = server_factory("trickle")
    ping = ScarfEventLogger(server.url).log_event({"event": "bg"}, timeout=1, background=True)
    ping.wait(0)  # end the deferral: the worker sends it now
    started = time.monotonic()
    assert ping.wait(10) is False
    assert ping.status == "failed" and "timed out" in ping.reason
    assert time.monotonic() - started < 1 + SLACK + 1.0  # the worker imports requests first


def test_a_stalled_server_ends_at_the_deadline(server_factory):
    server = server_factory("stall")
    result, seconds = _timed(lambda: ScarfEventLogger(server.url, timeout=0.5).log_event({}))
    assert result is False and 0.45 <= seconds < 0.5 + SLACK, seconds


def test_a_trickled_tls_handshake_ends_at_the_deadline(server_factory):
    server = server_factory("tls-trickle")
    url = f"https://127.0.0.1:{server.port}/e"
    transport.warm_up()
    result, seconds = _timed(lambda: ScarfEventLogger(url).log_event({}, timeout=1))
    assert result is False and 0.9 <= seconds < 1 + SLACK, seconds


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_stalling_proxy_ends_at_the_deadline(server_factory, monkeypatch, scheme):
    proxy = server_factory("trickle")  # answers CONNECT (https) or the request itself (http) a byte at a time
    monkeypatch.setenv(f"{scheme.upper()}_PROXY", proxy.url)
    transport.warm_up()
    result, seconds = _timed(lambda: ScarfEventLogger(f"{scheme}://events.example/e").log_event({}, timeout=1))
    assert result is False and 0.9 <= seconds < 1 + SLACK, seconds
    arrived = proxy.wait_for(1)
    assert arrived and arrived[0].method == ("CONNECT" if scheme == "https" else "POST")


def test_a_connect_read_pair_keeps_requests_meaning_bounded_by_its_sum(server_factory):
    stalled = server_factory("stall")
    trickle = server_factory("trickle")
    transport.warm_up()
    logger = ScarfEventLogger(stalled.url, timeout=(3.05, 0.5))  # the SDK's documented pair form
    assert logger.timeout == (3.05, 0.5)
    result, seconds = _timed(lambda: logger.log_event({}))
    assert result is False and 0.45 <= seconds < 0.5 + SLACK, seconds  # a silent server: the read bound
    result, seconds = _timed(lambda: ScarfEventLogger(trickle.url).log_event({}, timeout=(0.5, 0.8)))
    assert result is False and 1.2 <= seconds < 1.3 + SLACK, seconds  # bytes keep coming: connect + read at most


def test_a_pair_is_delivered_and_bounds_the_exit_wait(server_factory):
    server = server_factory("ok")
    logger = ScarfEventLogger(server.url, timeout=(3.05, 27))
    assert logger.log_event({"event": "pair"}) is True
    assert logger.log_event({"event": "pair"}, timeout=[1, 2]) is True
    assert logger.log_event({}, timeout=(0.2, 0.3), background=True).exit_timeout == 0.5


@pytest.mark.parametrize("bad", [(1,), (1, 2, 3), (0, 1), (1, None), (None, 1), ("1", 2), (True, 1), (1, float("inf"))])
def test_a_bad_pair_is_a_value_error(bad):
    with pytest.raises(ValueError, match="timeout"):
        ScarfEventLogger("http://x.example", timeout=bad)
    with pytest.raises(ValueError, match="timeout"):
        ScarfEventLogger("http://x.example").log_event({}, timeout=bad)


def test_a_reset_is_false_at_once(server_factory):
    server = server_factory("reset")
    result, seconds = _timed(lambda: ScarfEventLogger(server.url, timeout=5).log_event({}))
    assert result is False and seconds < 2.0, f"{result} after {seconds:.2f} s, expected False in a few ms"


# --- connection reuse --------------------------------------------------------------------


def test_two_hundred_events_one_connection(server_factory):
    server = server_factory("ok")
    logger = ScarfEventLogger(server.url + "/e")
    assert all(logger.log_event({"i": i}) for i in range(200))
    arrived = server.wait_for(200)
    assert [json.loads(a.body)["i"] for a in arrived] == list(range(200))
    assert server.connections == 1
    logger.close()


def test_https_keep_alive_with_a_throwaway_ca(server_factory, monkeypatch, tmp_path):
    context, ca = tls_context(tmp_path)
    server = server_factory("ok", context)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca))  # honoured, as by the SDK
    with ScarfEventLogger(server.url) as logger:
        assert all(logger.log_event({"i": i}) for i in range(50))
    assert len(server.wait_for(50)) == 50
    assert server.connections == 1
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    assert ScarfEventLogger(server.url).log_event({}) is False  # untrusted without it


def test_loggers_do_not_share_connections(server_factory):
    server = server_factory("ok")
    first, second = ScarfEventLogger(server.url), ScarfEventLogger(server.url)
    for _ in range(3):
        assert first.log_event({}) and second.log_event({})
    assert server.connections == 2


def test_a_connection_the_server_dropped_is_replaced(server_factory):
    server = server_factory("hold-idle")  # answers, then drops the idle connection
    logger = ScarfEventLogger(server.url)
    assert logger.log_event({"n": 1}) is True
    time.sleep(0.4)
    assert logger.log_event({"n": 2}) is True
    assert server.connections == 2


def test_close_and_connection_close_answers(server_factory):
    server = server_factory("close")
    logger = ScarfEventLogger(server.url)
    assert logger.log_event({}) is True and logger.log_event({}) is True
    assert server.connections == 2
    logger.close()
    logger.close()
    assert logger.log_event({}) is True  # a closed logger opens a new pool when used again


def test_no_cookie_is_kept_between_events(server_factory):
    server = server_factory("set-cookie")
    logger = ScarfEventLogger(server.url)
    assert logger.log_event({}) is True and logger.log_event({}) is True
    arrived = server.wait_for(2)
    assert server.connections == 1
    assert all("cookie" not in a.headers for a in arrived)


def test_netrc_is_never_read(server_factory, monkeypatch, tmp_path):
    (tmp_path / ".netrc").write_text("machine 127.0.0.1 login someone password secret\n", encoding="utf-8")
    os.chmod(tmp_path / ".netrc", 0o600)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(tmp_path / ".netrc"))
    server = server_factory("ok")
    assert ScarfEventLogger(server.url).log_event({}) is True
    assert "authorization" not in server.wait_for(1)[0].headers


def test_credentials_in_the_url_are_sent_as_basic_auth(server_factory, capsys):
    server = server_factory("ok")
    url = f"http://us%40er:p%3Ass%20w@127.0.0.1:{server.port}/e"
    logger = ScarfEventLogger(url, verbose=True)
    assert logger.log_event({"event": "auth"}) is True
    arrived = server.wait_for(1)[0]
    assert arrived.headers["authorization"] == "Basic " + base64.b64encode(b"us@er:p:ss w").decode()
    assert arrived.target == "/e"
    err = capsys.readouterr().err
    assert "p%3Ass" not in err and "us%40er:***@127.0.0.1" in err  # verbose output hides the password
    assert "p%3Ass" not in repr(logger)


def test_threads_share_one_pool(server_factory):
    server = server_factory("ok")
    logger = ScarfEventLogger(server.url)
    results: list[bool] = []

    def work(n: int) -> None:
        for i in range(25):
            results.append(logger.log_event({"thread": n, "i": i}))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results.count(True) == 200
    assert len(server.wait_for(200)) == 200
    assert 1 <= server.connections <= 8


def test_a_forked_child_never_uses_the_parents_connection(server_factory):
    server = server_factory("ok")
    child = run_child(
        f"""
        import os
        from scarf_autoping import ScarfEventLogger
        logger = ScarfEventLogger({server.url!r})
        assert logger.log_event({{"who": "parent", "n": 1}})
        pid = os.fork()
        if pid == 0:
            ok = logger.log_event({{"who": "child", "n": 1}}) and logger.log_event({{"who": "child", "n": 2}})
            logger.close()
            os._exit(0 if ok else 3)
        _, status = os.waitpid(pid, 0)
        assert logger.log_event({{"who": "parent", "n": 2}})
        print(os.waitstatus_to_exitcode(status))
        """,
        child_env(),
        args=("-X", "dev", "-W", "error"),
    )
    assert (child.returncode, child.stdout, child.stderr) == (0, "0\n", ""), child
    arrived = server.wait_for(4)
    by = {(json.loads(a.body)["who"], json.loads(a.body)["n"]): a.peer for a in arrived}
    assert by[("parent", 1)] == by[("parent", 2)]  # the parent kept its connection
    assert by[("child", 1)] == by[("child", 2)] != by[("parent", 1)]  # the child made its own
    assert server.connections == 2


def test_no_warning_no_leak_under_a_strict_interpreter(server_factory):
    ok = server_factory("ok")
    stalled = server_factory("stall")
    child = run_child(
        f"""
        import gc, threading
        from scarf_autoping import ScarfEventLogger
        logger = ScarfEventLogger({ok.url!r})
        assert all(logger.log_event({{"i": i}}) for i in range(20))
        assert ScarfEventLogger({stalled.url!r}).log_event({{}}, timeout=0.3) is False
        other = ScarfEventLogger({ok.url!r})
        assert other.log_event({{}})
        del other
        gc.collect()
        assert logger.log_event({{}}, background=True).wait(10)
        print(threading.active_count())
        """,
        child_env(),
        args=("-X", "dev", "-W", "error"),
    )
    assert (child.returncode, child.stderr) == (0, ""), child
    assert child.stdout.strip() in ("1", "2"), child  # the caller, at most our idle worker thread
