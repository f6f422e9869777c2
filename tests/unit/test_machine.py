"""The facts an author decides on (issue 19): normalised ``arch``, ``machine``,
``python_minor``, ``free_threaded``, ``libc``/``libc_version``, ``container`` and
``interface``, each checked against an independent reading (``machine_facts``).

The same facts end to end (a child's ping) are in ``behaviour/test_import_ping.py``, the
CLI's ``facts`` and ``preview`` in ``tools/test_cli.py``, the report merging what older
versions sent in ``tools/test_report.py`` and ``tools/test_report_html.py``.
"""

from __future__ import annotations

import os
import platform
import re
import sys
import sysconfig
from pathlib import Path

import pytest
from machine_facts import NEW, TABLE, _expected_container, _expected_free_threaded, expected

from scarf_autoping import facts, machine

VERSION = re.compile(r"[0-9]+(\.[0-9]+)+")


MINOR = re.compile(r"[0-9]+\.[0-9]+")


# --------------------------------------------------------------------------
# The architecture table
# --------------------------------------------------------------------------


def test_the_test_covers_every_name_the_table_maps():
    assert {raw.lower() for raw in TABLE} == set(machine.ARCHES)


@pytest.mark.parametrize("raw,name", sorted(TABLE.items()))
def test_every_raw_name_maps_to_its_one_name(raw, name):
    assert machine.normalize_arch(raw) == name
    assert machine.normalize_arch(f"  {raw} ") == name
    assert machine.normalize_arch(raw, 64) == name


def test_normalising_twice_changes_nothing():
    # The report normalises names that today's senders have already normalised.
    for name in {*machine.ARCHES.values(), "armv5", "aarch64_be", "e2k", "unknown"}:
        assert machine.normalize_arch(machine.normalize_arch(name)) == machine.normalize_arch(name) == name


@pytest.mark.parametrize("raw,bits,name", [
    ("AMD64", 32, "x86"),  # a 32-bit Python on 64-bit Windows needs win32 wheels
    ("x86_64", 32, "x86"),
    ("aarch64", 32, "armv7"),  # a 32-bit userland on a 64-bit ARM kernel
    ("ppc64", 32, "ppc"),
    ("s390x", 32, "s390"),
    ("mips64el", 32, "mipsel"),
    ("i686", 32, "x86"),
    ("armv7l", 32, "armv7"),
    ("i86pc", 64, "x86_64"),  # Solaris/illumos say i86pc whatever the size
    ("i86pc", 32, "x86"),
    ("i86pc", None, "x86_64"),  # read back from a database: illumos is 64-bit today
    ("iPhone14,2", 64, "arm64"),  # iOS names the device model
    ("iPad8,1", None, "arm64"),
])
def test_the_interpreter_size_and_special_names(raw, bits, name):
    assert machine.normalize_arch(raw, bits) == name


@pytest.mark.parametrize("system,raw,build,name", [
    ("Windows", "ARM64", "win-amd64", "x86_64"),  # an x64 Python emulated on an ARM64 PC needs x64 wheels
    ("Windows", "ARM64", "win32", "x86"),
    ("Windows", "AMD64", "win32", "x86"),  # a 32-bit Python on 64-bit Windows
    ("Windows", "ARM64", "win-arm64", "arm64"),
    ("Windows", "ARM", "win-arm32", "armv7"),
    ("Windows", "AMD64", "mingw_x86_64", "x86_64"),  # a build the table does not know: the machine says it
    ("AIX", "00F84C0C4C00", None, "ppc64" if sys.maxsize > 2**32 else "ppc"),
    ("Linux", "aarch64", None, "arm64" if sys.maxsize > 2**32 else "armv7"),
])
def test_arch_is_the_interpreters(system, raw, build, name):
    assert machine.interpreter_arch(system, raw, build) == name


@pytest.mark.parametrize("raw,name", [
    ("aarch64_be", "aarch64_be"),  # big-endian ARM64 runs no arm64 wheel: kept apart
    ("E2K", "e2k"),
    ("alpha", "alpha"),
    ("", "unknown"),
    (None, "unknown"),
    ("   ", "unknown"),
    ("00F84C0C4C00", "unknown"),  # AIX: uname -m is the machine's ID
    ("/home/alice/x", "homealicex"),  # never a path
    ("a" * 100, "a" * 32),
])
def test_unknown_names_are_kept_lower_cased_and_cleaned(raw, name):
    assert machine.normalize_arch(raw) == name


@pytest.mark.parametrize("raw,kept", [
    ("x86_64", "x86_64"), ("AMD64", "AMD64"), ("Power Macintosh", "Power Macintosh"), ("iPhone14,2", "iPhone14,2"),
    ("", "unknown"), ("00F84C0C4C00", "unknown"), ("/home/alice", "unknown"), ("a\nb", "unknown"),
    ("x" * 41, "unknown"),
])
def test_machine_is_the_raw_value_unless_it_could_carry_something_else(raw, kept):
    assert machine.clean_machine(raw) == kept


@pytest.mark.parametrize("version,minor", [
    ("3.12.1", "3.12"), ("3.12.7", "3.12"), ("3.13.0rc1", "3.13"), ("3.9.18", "3.9"), ("3.12", "3.12"),
    ("3.10.0a4+", "3.10"), ("unknown", "unknown"), ("-", "-"), ("", "unknown"), ("3", "3"),
])
def test_python_minor(version, minor):
    assert machine.python_minor(version) == minor


# --------------------------------------------------------------------------
# Each fact on this machine, against an independent reading
# --------------------------------------------------------------------------


def test_every_new_fact_matches_an_independent_reading():
    values = facts.platform_facts()
    assert {name: values[name] for name in NEW} == expected(dict(os.environ), "script")
    assert values["machine"] == platform.machine()
    assert machine._musl() == (values["libc"] == "musl")


def test_libc_agrees_with_confstr_where_glibc_answers_it():
    try:
        text = os.confstr("CS_GNU_LIBC_VERSION")
    except (ValueError, OSError, AttributeError):
        pytest.skip("not glibc: no CS_GNU_LIBC_VERSION")
    assert machine.libc() == tuple(text.split(" ", 1))


def test_musl_version_is_read_from_the_apk_database(tmp_path):
    # Alpine's database: one paragraph per package; musl's need not come first.
    db = tmp_path / "installed"
    db.write_text("C:Q1abc=\nP:alpine-baselayout\nV:3.4.3-r1\n\nC:Q1def=\nP:musl\nV:1.2.4-r2\nA:x86_64\n\n"
                  "P:musl-utils\nV:9.9.9-r0\n", encoding="utf-8")
    assert machine._musl_version(str(db)) == "1.2.4"
    (tmp_path / "other").write_text("P:musl-utils\nV:1.2.4-r2\n\nP:busybox\nV:1.36.1-r5\n", encoding="utf-8")
    assert machine._musl_version(str(tmp_path / "other")) == "unknown"
    (tmp_path / "odd").write_text("P:musl\nV:../../etc/passwd\n", encoding="utf-8")
    assert machine._musl_version(str(tmp_path / "odd")) == "unknown"
    assert machine._musl_version(str(tmp_path / "absent")) == "unknown"


def test_error_paths_of_the_readers_give_unknown(monkeypatch):
    """Unit tests of the error paths (the only place readers are replaced)."""

    def boom(*args: object) -> str:
        raise OSError("odd platform")

    for name in ("libc", "free_threaded", "container", "clean_machine"):
        monkeypatch.setattr(machine, name, boom)
    values = machine.collect("Linux", "x86_64", "3.12.1", "6.1.0")
    assert values == {"python_minor": "3.12", "free_threaded": "unknown", "arch": values["arch"],
                      "machine": "unknown", "container": "unknown", "libc": "unknown", "libc_version": "unknown"}
    assert machine.collect("AIX", "00F84C0C4C00", "3.12.1", "3")["arch"] in {"ppc64", "ppc"}  # never the ID


def test_libc_when_confstr_does_not_know_glibc(monkeypatch, tmp_path):
    def unknown_name(name: str) -> str:
        raise ValueError("unrecognized configuration name")

    monkeypatch.setattr(machine.os, "confstr", unknown_name)
    monkeypatch.setattr(machine, "_musl", lambda: False)
    assert machine.libc() == ("unknown", "unknown")
    monkeypatch.setattr(machine, "_musl", lambda: True)
    monkeypatch.setattr(machine, "APK_DB", str(tmp_path / "absent"))
    assert machine.libc() == ("musl", "unknown")


def test_container_markers_and_their_order():
    here = "docker" if Path("/.dockerenv").exists() else None
    assert machine.container("Linux", "", {"KUBERNETES_SERVICE_HOST": "10.0.0.1"}) == "kubernetes"
    assert machine.container("Darwin", "", {"KUBERNETES_SERVICE_HOST": "10.0.0.1"}) == "none"
    assert machine.container("Windows", "", {"WSL_DISTRO_NAME": "Ubuntu"}) == "none"
    if not Path("/run/.containerenv").exists() and here is None:
        assert machine.container("Linux", "5.15.153.1-microsoft-standard-WSL2", {}) == "wsl"
        assert machine.container("Linux", "", {"WSL_DISTRO_NAME": "Ubuntu"}) == "wsl"
    else:  # a container marker wins over WSL (Docker Desktop runs its containers in WSL 2)
        assert machine.container("Linux", "5.15.153.1-microsoft-standard-WSL2", {}) in {"docker", "podman"}
    assert machine.container("Linux", "", {}) == _expected_container({})


def test_free_threaded_is_about_the_build():
    assert machine.free_threaded() == _expected_free_threaded()
    if hasattr(sys, "_is_gil_enabled"):  # 3.13+: this says whether the GIL is on now, not the build
        assert machine.free_threaded() == ("false" if sysconfig.get_config_var("Py_GIL_DISABLED") in (None, 0)
                                           else "true")


def test_the_interface_of_this_test_run_is_a_script():
    assert facts.interface() == "script"


def test_variables_take_the_hosts_interface_from_a_closed_vocabulary():
    assert facts.variables("pkg", "1.0", False)["interface"] == "script"
    assert facts.variables("pkg", "1.0", False, interface="jupyter")["interface"] == "jupyter"
    assert facts.variables("pkg", "1.0", False, interface="interactive")["interface"] == "interactive"
    assert facts.variables("pkg", "1.0", False, interface="/home/me")["interface"] == "unknown"


def test_the_new_names_are_built_in_and_refused_as_author_variables():
    from scarf_autoping import check_arguments

    for name in NEW:
        assert name in facts.BUILTIN_NAMES
        with pytest.raises(ValueError, match="clashes with the built-in"):
            check_arguments("pkg", "https://x.example/{package}", None, {name: "x"}, 3.0, 1.0)
    check_arguments("pkg", "https://x.example/" + "/".join(f"{{{n}}}" for n in NEW), None, None, 3.0, 1.0)


def test_privacy_the_new_values_come_from_a_closed_vocabulary_or_a_version_pattern():
    values = facts.variables("pkg", "1.0", False)
    assert MINOR.fullmatch(values["python_minor"])
    assert values["free_threaded"] in {"true", "false"}
    assert values["arch"] in set(machine.ARCHES.values())
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.,+ -]{0,39}", values["machine"])
    assert values["libc"] in {"glibc", "musl", "unknown"}
    assert values["libc_version"] == "unknown" or VERSION.fullmatch(values["libc_version"])
    assert values["container"] in machine.CONTAINERS
    assert values["interface"] in facts.INTERFACES
    import getpass
    import socket

    personal = {socket.gethostname(), getpass.getuser(), os.getcwd(), os.path.expanduser("~"),
                os.environ.get("HOSTNAME"), os.environ.get("CONTAINER_NAME")} - {None, ""}
    for name in NEW:
        assert not any(p in values[name] for p in personal), name
        assert "/" not in values[name] and "\\" not in values[name], name
