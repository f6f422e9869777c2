"""The opt-out, CI and once-per-tree rules, tested as pure functions of an environment."""

from __future__ import annotations

import os

import pytest

from scarf_autoping import policy


@pytest.mark.parametrize("value", ["1", "true", "TRUE", " yes ", "on", "enabled", "typo", "2"])
def test_set_values(value):
    assert policy.is_set(value)


@pytest.mark.parametrize("value", [None, "", " ", "0", "false", "False", " NO ", "off"])
def test_unset_values(value):
    assert not policy.is_set(value)


@pytest.mark.parametrize(
    "package,variable",
    [
        ("my-package", "MY_PACKAGE_NO_ANALYTICS"),
        ("my.pkg__x", "MY_PKG_X_NO_ANALYTICS"),
        ("Django", "DJANGO_NO_ANALYTICS"),
        ("a--b..c", "A_B_C_NO_ANALYTICS"),
        ("-lead", "LEAD_NO_ANALYTICS"),
        ("ünï", "N_NO_ANALYTICS"),
    ],
)
def test_package_variable(package, variable):
    assert policy.package_variable(package) == variable


@pytest.mark.parametrize("name", ["DO_NOT_TRACK", "SCARF_NO_ANALYTICS", "MY_PKG_NO_ANALYTICS"])
def test_each_opt_out_is_named(name):
    decision = policy.decide({name: "1"}, "my-pkg")
    assert not decision.enabled
    assert name in decision.reason


def test_scarf_analytics_false_only():
    assert policy.opt_out_reason({"SCARF_ANALYTICS": "false"}) == "SCARF_ANALYTICS"
    assert policy.opt_out_reason({"SCARF_ANALYTICS": "0"}) == "SCARF_ANALYTICS"
    assert policy.opt_out_reason({"SCARF_ANALYTICS": "true"}) is None
    assert policy.opt_out_reason({"SCARF_ANALYTICS": ""}) is None


def test_other_package_variable_does_not_opt_out():
    assert policy.decide({"OTHER_NO_ANALYTICS": "1"}, "mine").enabled


@pytest.mark.parametrize("name", policy.CI_VARIABLES)
def test_ci_variables(name):
    decision = policy.decide({name: "true"}, "p")
    assert not decision.enabled and decision.ci and name in decision.reason
    counted = policy.decide({name: "true"}, "p", skip_ci=False)
    assert counted.enabled and counted.ci


def test_ci_false_is_not_ci():
    assert policy.decide({"CI": "false"}, "p").enabled
    assert not policy.decide({"CI": "false"}, "p").ci


def test_opt_out_wins_over_ci():
    decision = policy.decide({"CI": "1", "DO_NOT_TRACK": "1"}, "p")
    assert "DO_NOT_TRACK" in decision.reason


def test_once_per_tree_marker():
    value = policy.mark_pinged(None, "My_Pkg")
    assert value == "my-pkg"
    value = policy.mark_pinged(value, "other.pkg")
    assert value == "my-pkg,other-pkg"
    assert policy.mark_pinged(value, "my-pkg") == value
    env = {policy.PINGED: value}
    assert policy.already_pinged(env, "MY-PKG")
    assert not policy.already_pinged(env, "my")
    decision = policy.decide(env, "my_pkg")
    assert not decision.enabled and policy.PINGED in decision.reason


def test_normalize():
    assert policy.normalize("Foo.Bar__baz-") == "foo-bar-baz-"


# --- the import path's read of the environment ----------------------------------------------


def test_environ_reads_what_os_environ_reads_and_sees_the_hosts_changes(monkeypatch):
    monkeypatch.setenv("SCARF_TEST_PLAIN", "1")
    monkeypatch.setenv("SCARF_TEST_UNICODE", "caf\u00e9 \u00fc")
    os.environb[b"SCARF_TEST_RAW"] = b"\xff\xfe"  # not UTF-8: surrogateescape, as os.environ gives it
    try:
        view = policy.environ()
        for name in ("SCARF_TEST_PLAIN", "SCARF_TEST_UNICODE", "SCARF_TEST_RAW", "SCARF_TEST_MISSING", "HOME"):
            assert view.get(name) == os.environ.get(name), name
        monkeypatch.setenv("SCARF_TEST_LATER", "yes")  # set after the view was made
        monkeypatch.delenv("SCARF_TEST_PLAIN")
        assert view.get("SCARF_TEST_LATER") == "yes" and view.get("SCARF_TEST_PLAIN") is None
        assert policy.decide(view, "p").reason == policy.decide(os.environ, "p").reason
    finally:
        del os.environb[b"SCARF_TEST_RAW"]


def test_environ_asks_a_hosts_own_environ_object(monkeypatch):
    """A host that replaced os.environ with its own mapping (here one that adds an opt-out)
    is asked, not bypassed through the interpreter's dictionary."""
    class Mine(type(os.environ)):
        def __getitem__(self, key):
            return "1" if key == "DO_NOT_TRACK" else super().__getitem__(key)

    stock = os.environ
    mine = Mine(stock._data, stock.encodekey, stock.decodevalue, stock.encodevalue, stock.decodevalue)
    monkeypatch.setattr(os, "environ", mine)
    assert policy.environ() is mine
    assert policy.decide(policy.environ(), "p").reason == "opted out by DO_NOT_TRACK"


def test_environ_is_os_environ_where_it_holds_no_plain_dictionary(monkeypatch):
    class Data(dict):  # what a replaced os.environ might hold: not the interpreter's own dict
        pass

    monkeypatch.setattr(os.environ, "_data", Data(os.environ._data), raising=False)
    assert policy.environ() is os.environ


@pytest.mark.parametrize("name", ["Acme.__Widgets", " a-b ", "é.x", "a,b%c d", "-_.", "", "x+y", "İ"])
def test_the_usual_names_fast_paths_give_what_the_loops_give(name):
    """normalize, package_variable and marker_name skip their loop for the usual name."""
    def loop_normalize(text: str) -> str:
        out, prev = [], False
        for ch in text.strip().lower():
            if ch in "-_.":
                if not prev:
                    out.append("-")
                prev = True
            else:
                out.append(ch)
                prev = False
        return "".join(out)

    normal = loop_normalize(name)
    assert policy.normalize(name) == normal
    variable = []
    for ch in normal.upper():
        if ch.isascii() and ch.isalnum():
            variable.append(ch)
        elif not variable or variable[-1] != "_":
            variable.append("_")
    assert policy.package_variable(name) == "".join(variable).strip("_") + "_NO_ANALYTICS"
    marker = "".join(chr(b) if 0x20 < b < 0x7F and b not in (0x25, 0x2C) else f"%{b:02X}"
                     for b in normal.encode("utf-8", "surrogatepass"))
    assert policy.marker_name(name) == marker
