"""The facts an author decides on (issue 19): normalised ``arch``, ``machine``,
``python_minor``, ``free_threaded``, ``libc``/``libc_version``, ``container`` and
``interface``, and the report that merges what older versions sent.

Each fact is checked against an independent reading made here (``uname -m``, ``ldd
--version``, ``sysconfig``, the marker files), then end to end: a child interpreter's
ping, with every new variable in its template, arrives at a loopback collector with the
right values, from a script and from ``python -i`` fed on stdin.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest
from helpers import autoping_package, child_env
from test_report import make_db, ping

from scarf_autoping import facts, machine
from scarf_autoping.tools.report import adoption, report
from scarf_autoping.tools.report_html import render

SCRIPT = str(Path(sys.executable).parent / "scarf-autoping")

NEW = ("python_minor", "free_threaded", "arch", "machine", "libc", "libc_version", "container", "interface")

VERSION = re.compile(r"[0-9]+(\.[0-9]+)+")
MINOR = re.compile(r"[0-9]+\.[0-9]+")

#: Every raw name the table maps, and its one name (written out here, not read from the table).
TABLE = {
    "x86_64": "x86_64", "AMD64": "x86_64", "amd64": "x86_64", "x64": "x86_64", "X64": "x86_64",
    "x86-64": "x86_64", "EM64T": "x86_64", "Intel64": "x86_64",
    "i386": "x86", "i486": "x86", "i586": "x86", "i686": "x86", "x86": "x86", "X86": "x86", "ia32": "x86",
    "aarch64": "arm64", "arm64": "arm64", "ARM64": "arm64", "arm64e": "arm64",
    "armv7l": "armv7", "armv7": "armv7", "armv7hl": "armv7", "armv7hf": "armv7", "armv7a": "armv7",
    "armv8l": "armv7", "ARM": "armv7",
    "armv6l": "armv6", "armv6": "armv6", "armv6hl": "armv6",
    "armv5l": "armv5", "armv5tel": "armv5", "armv5tejl": "armv5",
    "ppc64le": "ppc64le", "powerpc64le": "ppc64le", "ppc64": "ppc64", "powerpc64": "ppc64",
    "ppc": "ppc", "powerpc": "ppc", "Power Macintosh": "ppc",
    "s390x": "s390x", "s390": "s390",
    "riscv64": "riscv64", "riscv32": "riscv32", "loongarch64": "loongarch64", "loong64": "loongarch64",
    "mips": "mips", "mipsel": "mipsel", "mips64": "mips64", "mips64el": "mips64el",
    "sparc64": "sparc64", "sun4u": "sparc64", "sun4v": "sparc64", "sparc": "sparc",
    "ia64": "ia64", "wasm32": "wasm32", "wasm64": "wasm64",
}


# --------------------------------------------------------------------------
# Independent readings of this machine
# --------------------------------------------------------------------------


def _uname_m() -> str:
    return subprocess.run(["uname", "-m"], capture_output=True, text=True, check=True).stdout.strip()


def _expected_arch() -> str:
    """This machine's arch, from ``uname -m`` and the interpreter's pointer size (``struct``)."""
    import struct

    raw = _uname_m()
    name = TABLE[raw]
    if struct.calcsize("P") == 4:
        name = {"x86_64": "x86", "arm64": "armv7"}.get(name, name)
    return name


def _expected_libc() -> tuple[str, str]:
    """Read ``ldd --version`` (glibc prints ``ldd (...) 2.36`` on stdout; musl prints its version on stderr)."""
    if not sys.platform.startswith("linux") or shutil.which("ldd") is None:
        return "unknown", "unknown"
    done = subprocess.run(["ldd", "--version"], capture_output=True, text=True, check=False)
    text = done.stdout + done.stderr
    if "musl" in text.lower():
        found = re.search(r"Version ([0-9.]+)", text)
        return "musl", found[1] if found else "unknown"
    first = done.stdout.splitlines()[0]
    assert "GLIBC" in first.upper() or "GNU libc" in first, first
    return "glibc", first.split()[-1]


def _expected_container(env: dict[str, str]) -> str:
    if env.get("KUBERNETES_SERVICE_HOST"):
        return "kubernetes"
    if Path("/run/.containerenv").exists():
        return "podman"
    if Path("/.dockerenv").exists():
        return "docker"
    release = Path("/proc/sys/kernel/osrelease")
    if (env.get("WSL_DISTRO_NAME") or Path("/proc/sys/fs/binfmt_misc/WSLInterop").exists()
            or (release.exists() and "microsoft" in release.read_text().lower())):
        return "wsl"
    return "none"


def _expected_free_threaded() -> str:
    built = bool(sysconfig.get_config_var("Py_GIL_DISABLED")) or "t" in getattr(sys, "abiflags", "")
    return "true" if built else "false"


def expected(env: dict[str, str], interface: str) -> dict[str, str]:
    libc, libc_version = _expected_libc()
    return {
        "python_minor": f"{sys.version_info[0]}.{sys.version_info[1]}",
        "free_threaded": _expected_free_threaded(),
        "arch": _expected_arch(),
        "machine": _uname_m() if sys.platform != "win32" else platform.machine(),
        "libc": libc,
        "libc_version": libc_version,
        "container": _expected_container(env) if sys.platform.startswith("linux") else "none",
        "interface": interface,
    }


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


def test_facts_command_prints_the_new_variables():
    import json

    done = subprocess.run([SCRIPT, "facts", "--json"], env=child_env(), capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done
    values = json.loads(done.stdout)
    assert {name: values[name] for name in NEW} == expected(child_env(), "script")


def test_preview_fills_in_the_new_variables(site):
    from urllib.parse import unquote

    template = "https://x.example/n/{package}/" + "/".join(f"{{{name}}}" for name in NEW)
    env = child_env(site)
    done = subprocess.run([SCRIPT, "preview", template, "--package", "pkg-prev", "--version", "1.0"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done
    segments = [unquote(s) for s in done.stdout.strip().split("/")[5:]]
    assert dict(zip(NEW, segments)) == expected(env, "script")


# --------------------------------------------------------------------------
# End to end: a child process's ping at a loopback collector
# --------------------------------------------------------------------------

ALL_NEW = "{base}/n/{package}/" + "/".join(f"{{{name}}}" for name in NEW)


def _values(request) -> dict[str, str]:
    from urllib.parse import unquote

    segments = [unquote(s) for s in request.path.split("/")[3:]]
    return dict(zip(NEW, segments))


def test_a_scripts_ping_carries_every_new_fact(collector, site, tmp_path):
    autoping_package(site, "pkg_new", ALL_NEW.replace("{base}", collector.url))
    script = tmp_path / "main.py"
    script.write_text("import pkg_new\n", encoding="utf-8")
    env = child_env(site)
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60,
                          check=False, stdin=subprocess.DEVNULL)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    requests = collector.expect(1)  # handed to a detached sender as the script exits
    assert len(requests) == 1
    assert requests[0].path.split("/")[2] == "pkg-new"
    assert _values(requests[0]) == expected(env, "script")


@pytest.mark.parametrize("on_exit", ["handoff", "wait"])
def test_an_interactive_sessions_ping_says_interactive(collector, site, on_exit):
    """``python -i`` reading its commands from a pipe: the REPL, deterministically.

    ``handoff``: the detached sender builds the URL (the interface travels in the job);
    ``wait``: the host's own worker does.
    """
    autoping_package(site, "pkg_repl", ALL_NEW.replace("{base}", collector.url), args=f"on_exit={on_exit!r}")
    env = child_env(site)
    session = textwrap.dedent("""\
        import pkg_repl
        print("status", pkg_repl.PING.wait(10) if pkg_repl.PING.status != "disabled" else "disabled")
        """)
    done = subprocess.run([sys.executable, "-i", "-q"], input=session, env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done
    assert "status True" in done.stdout, done
    requests = collector.expect(1)
    assert len(requests) == 1
    assert _values(requests[0]) == expected(env, "interactive")


def test_python_dash_c_is_a_script(collector, site):
    autoping_package(site, "pkg_dashc", ALL_NEW.replace("{base}", collector.url))
    env = child_env(site)
    done = subprocess.run([sys.executable, "-c", "import pkg_dashc; pkg_dashc.PING.wait(10)"], env=env,
                          capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done
    assert _values(collector.expect(1)[0])["interface"] == "script"


def test_a_jupyter_kernels_ping_says_jupyter(collector, site):
    """A real kernel (``ipykernel``, started by ``jupyter_client`` as Jupyter starts it) imports the package.

    ipykernel is not among the test dependencies (it brings IPython, pyzmq, tornado and
    debugpy): this test runs where it is installed, and is skipped elsewhere.
    """
    pytest.importorskip("ipykernel")
    manager_module = pytest.importorskip("jupyter_client.manager")
    autoping_package(site, "pkg_nb", ALL_NEW.replace("{base}", collector.url))
    env = child_env(site, PYDEVD_DISABLE_FILE_VALIDATION="1")
    manager = manager_module.KernelManager(kernel_name="python3")
    manager.start_kernel(env=env)
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        outputs: list[str] = []
        reply = client.execute_interactive(
            "import pkg_nb\nprint('delivered', pkg_nb.PING.wait(10))", timeout=60,
            output_hook=lambda msg: outputs.append(msg["content"].get("text", "")))
        assert reply["content"]["status"] == "ok", reply
        assert "delivered True" in "".join(outputs), outputs
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    requests = collector.expect(1)
    assert len(requests) == 1
    assert _values(requests[0]) == expected(env, "jupyter")


# --------------------------------------------------------------------------
# The report: names recorded before normalisation, Pythons by minor, Linux distributions
# --------------------------------------------------------------------------


@pytest.fixture
def old_and_new(tmp_path: Path) -> Path:
    """Pings as older versions sent them (raw arch, no python_minor) next to today's."""
    return make_db(tmp_path / "raw.sqlite", [
        ping("my-pkg", "1.0", python="3.12.1", platform="windows", os="Windows", arch="AMD64", distro="unknown"),
        ping("my-pkg", "1.0", python="3.12.7", platform="linux", os="Linux", arch="x86_64", distro="debian"),
        ping("my-pkg", "1.0", python="3.12.7", python_minor="3.12", platform="linux", arch="x86_64",
             distro="ubuntu"),
        ping("my-pkg", "1.0", python="3.11.9", platform="linux", arch="aarch64", distro="debian"),
        ping("my-pkg", "1.0", python="3.11.2", platform="macos", arch="arm64", distro="unknown"),
        ping("my-pkg", "1.0", python="3.13.0", os="Linux", arch="i686", distro="alpine"),  # no platform: os says Linux
        ping("my-pkg", "1.0", python="3.13.1", platform="windows", arch="ARM64", distro="unknown"),
        {"received_at": "2026-11-20T10:00:00.000Z", "path": "/q", "query": "package=my-pkg&arch=amd64&python=3.12.3"},
    ])


def _run(*args: str) -> list[list[str]]:
    done = subprocess.run([SCRIPT, "report", *args], env=child_env(), capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0 and done.stderr == "", done
    return [line.split() for line in done.stdout.splitlines()[2:-2]]


def test_the_text_report_merges_architecture_spellings(old_and_new):
    rows = {row[0]: int(row[1]) for row in _run("--db", str(old_and_new), "--by", "arch")}
    assert rows == {"x86_64": 4, "arm64": 3, "x86": 1}  # AMD64 + x86_64 + amd64; aarch64 + arm64 + ARM64


def test_the_text_report_groups_python_by_minor(old_and_new):
    rows = {row[0]: int(row[1]) for row in _run("--db", str(old_and_new), "--by", "python_minor")}
    assert rows == {"3.12": 4, "3.11": 2, "3.13": 2}  # 3.12.1, 3.12.7 (twice) and 3.12.3 in one row
    exact = {row[0]: int(row[1]) for row in _run("--db", str(old_and_new), "--by", "python")}
    assert exact["3.12.7"] == 2 and exact["3.12.1"] == 1  # --by python still means the whole version


def test_the_pure_grouping_agrees(old_and_new):
    from scarf_autoping.tools.report import load_rows

    rows = load_rows(old_and_new)
    assert {k[0]: n for k, n, _ in adoption(rows, ["arch"]).groups} == {"x86_64": 4, "arm64": 3, "x86": 1}
    assert {k[0]: n for k, n, _ in adoption(rows, ["python_minor"]).groups} == {"3.12": 4, "3.11": 2, "3.13": 2}
    assert sorted(adoption(rows, ["arch", "python_minor"]).groups) == sorted(report(old_and_new,
                                                                                   ["arch", "python_minor"]).groups)


def _section(page: str, chart: str) -> str:
    return page.split(f'<section id="{chart}-section">', 1)[1].split("</section>", 1)[0]


def _bars(section: str) -> dict[str, int]:
    return {m[0]: int(m[1]) for m in re.findall(r'<g class="bar" data-label="([^"]*)" data-count="([0-9]+)"', section)}


def test_the_page_charts_python_by_minor_merged_arches_and_linux_distributions(old_and_new):
    page, total = render(old_and_new)
    assert total == 8
    assert _bars(_section(page, "share-python")) == {"3.12": 4, "3.11": 2, "3.13": 2}
    assert _bars(_section(page, "share-arch")) == {"x86_64": 4, "arm64": 3, "x86": 1}
    distros = _section(page, "share-distro")
    # Linux: 3 by platform, 1 by os; 3 from Windows/macOS and the query ping (no platform) left out.
    assert _bars(distros) == {"debian": 2, "ubuntu": 1, "alpine": 1}
    assert "Share by Linux distribution (Linux pings only)" in distros
    assert "Linux pings only: 4 of 8 ping(s) came from Linux" in distros
    assert "3 from other platforms and 1 that carried neither platform nor os" in distros


def test_the_distribution_chart_counts_every_ping_when_none_says_its_platform(tmp_path):
    db = make_db(tmp_path / "d.sqlite", [ping("p", "1", distro="debian"), ping("p", "1", distro="fedora")])
    distros = _section(render(db)[0], "share-distro")
    assert _bars(distros) == {"debian": 1, "fedora": 1}
    assert "every ping is counted" in distros and "(Linux pings only)" not in distros
