"""What the host's environment changes, run as one parallel batch of child hosts: the C
locale with a non-ASCII distribution name, ``HTTP_PROXY`` and ``NO_PROXY`` honoured by the
detached sender, ``on_exit='drop'``, and a host that never imports ``requests`` on our
account (before or after the library's exit hook)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import pytest
from hosts import (
    IMPORTED,
    LIFETIMES,
    NOTHING,
    PATH,
    PKG,
    QUIET,
    Run,
    assert_quiet,
    paths,
    run_case,
    shared_batch,
)
from loopback import Collector

pytestmark = pytest.mark.skipif(not hasattr(os, "posix_spawn"), reason="the detached sender needs posix_spawn")


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
