"""The opt-out, CI and once-per-tree rules, tested as pure functions of an environment."""

from __future__ import annotations

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
