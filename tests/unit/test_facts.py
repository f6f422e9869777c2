"""Platform facts: every built-in variable is a non-empty string; nothing personal."""

from __future__ import annotations

import getpass
import os
import platform
import socket
import sys

import pytest

from scarf_autoping import facts
from scarf_autoping.machine import normalize_arch


def test_every_builtin_is_a_non_empty_string():
    values = facts.variables("pkg", "1.0", ci=False)
    assert set(values) == set(facts.BUILTIN_NAMES)
    assert all(isinstance(v, str) and v.strip() for v in values.values())
    assert values["ci"] == "false"
    assert values["python"] == platform.python_version()
    assert values["machine"] == platform.machine()
    assert values["arch"] == normalize_arch(platform.machine(), 64 if sys.maxsize > 2**32 else 32)


def test_nothing_personal_is_collected():
    values = facts.platform_facts().values()
    personal = {socket.gethostname(), getpass.getuser(), os.getcwd(), os.path.expanduser("~")}
    assert not personal & set(values)


@pytest.mark.parametrize(
    "system,expected",
    [
        ("Linux", "linux"),
        ("Darwin", "macos"),
        ("Windows", "windows"),
        ("FreeBSD", "freebsd"),
        ("CYGWIN_NT-10.0", "windows"),
        ("SunOS", "solaris"),
        ("Plan 9", "plan9"),
        ("", "unknown"),
    ],
)
def test_scarf_platform(system, expected):
    assert facts.scarf_platform(system) == expected


@pytest.mark.parametrize("value", [None, "", "   "])
def test_clean_unknown(value):
    assert facts.clean(value) == "unknown"


def _version(package: str) -> str:
    """The version a ping reports for ``package`` when the author gives none."""
    return facts.variables(package, None, False)["version"]


def test_missing_package_version_is_unknown():
    assert _version("surely-not-installed-xyz") == "unknown"


def test_installed_version_by_distribution_and_import_name():
    import requests

    assert _version("requests") == requests.__version__
    assert _version("Requests") == requests.__version__


def test_facts_are_cached():
    assert facts.platform_facts() == facts.platform_facts()
    first = facts.platform_facts()
    first["os"] = "changed"
    assert facts.platform_facts()["os"] != "changed"
