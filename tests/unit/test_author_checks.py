"""What ``autoping()`` refuses at the call, in process: templates that would let a value
move the ping to another host, literal hosts that are fine, unbounded or nonsense timeouts.
The same mistakes made in a package's ``__init__``: ``behaviour/test_import_ping.py``."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    "template,message",
    [
        ("https://h.invalid{+version}/t", "{+version}"),
        ("https://h.invalid/t{#version}", "{+version}"),
        ("https://{package}/t", "written out"),
        ("https://h.invalid:{version}/t", "written out"),
        ("https://h.invalid{.package}/t", "written out"),
        ("http://:80/x", "with a host"),
        ("http://@/x", "user name or password"),
        ("https://user:secret@h.invalid/x", "user name or password"),
        ("https://h.invalid:99999/x", "with a host"),
        ("https://[::1]x/t", "with a host"),
    ],
)
def test_templates_that_could_let_a_value_move_the_ping_are_refused(template, message, monkeypatch):
    from scarf_autoping import TemplateError, autoping

    monkeypatch.setenv("DO_NOT_TRACK", "1")  # should a check ever let it through, nothing is sent
    with pytest.raises(TemplateError) as info:
        autoping("refused-pkg", template)
    assert message in str(info.value)


@pytest.mark.parametrize(
    "template",
    [
        "https://h.invalid{/package,version}",
        "https://h.invalid{?package,version}",
        "http://127.0.0.1:8080/t/{package}",
        "http://[::1]:8080/t/{package}",
        "HTTPS://H.INVALID/t{?python}",
    ],
)
def test_templates_with_a_literal_host_are_accepted(template):
    from scarf_autoping import check_arguments

    check_arguments("ok-pkg", template, None, None, 3.0, 1.0)


@pytest.mark.parametrize(
    "kwargs",
    [{"timeout": float("inf")}, {"timeout": float("nan")}, {"exit_timeout": float("inf")},
     {"exit_timeout": 1e12}, {"timeout": 0}, {"exit_timeout": -0.1}],
)
def test_unbounded_or_nonsense_timeouts_are_refused(kwargs, monkeypatch):
    from scarf_autoping import autoping

    monkeypatch.setenv("DO_NOT_TRACK", "1")  # should a check ever let it through, nothing is sent
    with pytest.raises(ValueError, match="seconds"):
        autoping("timeout-pkg", "https://h.invalid/{package}", **kwargs)
