"""The ``scarf-autoping`` command line, run as the installed console script in a
subprocess with a clean environment, against real files and real loopback servers."""

from __future__ import annotations

import contextlib
import io
import json
import os
import platform
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import child_env, make_package, run_child
from hypothesis import given, settings
from hypothesis import strategies as st
from loopback import free_port
from machine_facts import NEW, expected

from scarf_autoping.facts import BUILTIN_NAMES
from scarf_autoping.machine import normalize_arch

SCRIPT = str(Path(sys.executable).parent / "scarf-autoping")


#: This machine's {arch}: platform.machine() normalised (unit/test_machine.py checks the table).
ARCH = normalize_arch(platform.machine(), 64 if sys.maxsize > 2**32 else 32)


COMMANDS = ("facts", "preview", "send", "status", "disable", "enable", "forget", "init", "collect", "report", "demo")


ROUTE = "/t/{package}/{version}/{platform}{?python,arch}"


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
        timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([SCRIPT, *args], env=env if env is not None else child_env(), cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL)


def assert_one_line_error(result: subprocess.CompletedProcess, code: int, *fragments: str) -> None:
    assert result.returncode == code, result
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert "error:" in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


# --------------------------------------------------------------------------
# help, errors, python -m
# --------------------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    result = cli(command, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith(f"usage: scarf-autoping {command}")


def test_top_level_help_lists_every_command_and_python_m_works():
    result = subprocess.run([sys.executable, "-m", "scarf_autoping", "--help"], env=child_env(),
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0
    for command in COMMANDS:
        assert f"    {command}" in result.stdout


@pytest.mark.parametrize("args", [(), ("bogus",), ("preview",), ("preview", "http://x/"), ("send", "--timeout", "0"),
                                  ("init",), ("report", "--by", ",")])
def test_bad_arguments_give_one_line_and_exit_2(args):
    assert_one_line_error(cli(*args), 2)


def test_importing_the_library_does_not_import_the_cli():
    child = run_child("import sys, scarf_autoping; print('scarf_autoping.tools.cli' in sys.modules, 'argparse' in sys.modules)",
                      child_env())
    assert child.stdout.split() == ["False", "False"], child


#: What only some commands need (issue 20): ``--help``, ``status`` and ``send --detach`` load none of it.
HEAVY = frozenset({
    "subprocess", "tempfile", "threading", "pathlib", "json", "signal", "shutil", "sqlite3", "socket", "ssl",
    "http.client", "email", "importlib.metadata", "requests", "urllib3", "distro", "platform",
    "scarf_autoping.naming", "scarf_autoping.tools.collector",
    "scarf_autoping.tools.report", "scarf_autoping.tools.initcmd",
})


def _imports(argv: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run ``python -X importtime ARGV``; the modules it imported beyond a bare ``python -c pass``."""
    def names(args: list[str]) -> tuple[subprocess.CompletedProcess, set[str]]:
        proc = subprocess.run([sys.executable, "-X", "importtime", *args], env=env, capture_output=True, text=True,
                              timeout=30, check=False, stdin=subprocess.DEVNULL)
        found = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines()
                 if line.startswith("import time:") and line.count("|") == 2}
        return proc, found

    bare_code = "pass"
    if argv and argv[0] == SCRIPT:
        # The console-script wrapper's own imports are the installer's, not ours: an older
        # pip writes one that imports re (and so enum) before it calls us.
        with open(SCRIPT, encoding="utf-8") as wrapper:
            bare_code = "\n".join(line.strip() for line in wrapper
                                   if line.startswith(("import ", "from ")) and "scarf_autoping" not in line) or "pass"
    bare = names(["-c", bare_code])[1]
    assert "encodings" in bare or "site" in bare, "-X importtime printed nothing"
    proc, found = names(argv)
    return proc, found - bare


@pytest.mark.parametrize("args", [("--help",), ("status",), ("send", "--help")], ids=" ".join)
def test_help_and_status_load_only_what_they_use(args):
    proc, loaded = _imports([SCRIPT, *args], child_env())
    assert proc.returncode == 0, proc
    assert "argparse" in loaded  # they parse with argparse, as ever
    ours = loaded - _imports(["-c", "import argparse"], child_env())[1]  # not what argparse itself loads
    assert not ours & HEAVY, sorted(ours & HEAVY)


def test_send_detach_loads_neither_argparse_nor_what_the_sender_does(collector):
    template = collector.url + "/s/{package}/{platform}/{arch}"
    for env in (child_env(), child_env(DO_NOT_TRACK="1")):
        proc, loaded = _imports([SCRIPT, "send", template, "--package", "mytool", "--detach", "--quiet"], env)
        assert proc.returncode == 0 and proc.stdout == "", proc
        unwanted = loaded & (HEAVY | {"argparse", "enum", "gettext"})
        assert not unwanted, sorted(unwanted)
    assert len(collector.wait_for(1, timeout=10)) == 1  # handed over all the same (once: the second opted out)
    assert len(collector.settle(0.3)) == 1


def _parsed(parser, argv: list[str]) -> tuple[str, str, object]:
    """What parsing ``argv`` printed, and the exit code or the parsed arguments."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            result: object = vars(parser.parse_args(argv))
        except SystemExit as exc:
            result = exc.code
    return out.getvalue(), err.getvalue(), result


@pytest.mark.parametrize("argv", [
    ["--help"], ["-h"], ["--version"], *([command, "--help"] for command in COMMANDS),
    ["status"], ["status", "--package", "p"], ["status", "--bogus"], ["send", "x"], ["report", "--by"],
    ["collect", "--port", "99999"], ["init", "."], ["--he"], ["bogus"], [],
], ids=" ".join)
def test_the_part_of_the_parser_a_command_needs_says_what_the_whole_one_says(argv):
    from scarf_autoping.tools import cli as cli_module

    assert cli_module.COMMANDS == COMMANDS
    assert _parsed(cli_module._parser_for(argv), argv) == _parsed(cli_module.build_parser(), argv)


#: Words a shell script's ``send`` line may be made of, the odd ones included.
SEND_WORDS = ["--detach", "--detach", "--package", "p", "--package=q", "--package=", "--version", "1.0", "--version=2",
              "--var", "a=1", "--var=b=2", "--var=-x", "--timeout", "2", "--timeout=0.5", "--timeout=0", "--timeout",
              "nan", "--timeout=inf", "--method", "POST", "GET", "--method=PUT", "--body", "{}", "--body={\"a\": 1}",
              "--quiet", "-q", "-v", "--verbose", "-qv", "--", "-h", "--help", "--pack", "--det", "-1", "",
              "http://x/{package}", "http://x/{nope}", "-x", "--nope"]


def _argparse_fields(argv: list[str]) -> dict[str, object] | None:
    from scarf_autoping.tools import cli as cli_module

    try:
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            args = cli_module.build_parser().parse_args(argv)
    except SystemExit:
        return None
    return {k: v for k, v in vars(args).items() if k != "func"}


def _quick_fields(argv: list[str]) -> dict[str, object] | None:
    from scarf_autoping.tools import cli as cli_module

    args = cli_module.quick_send(argv)
    return None if args is None else {k: v for k, v in vars(args).items() if k != "func"} | {"command": "send"}


@pytest.mark.parametrize("argv", [
    ["send", "http://x/{package}", "--package", "p", "--detach"],
    ["send", "--detach", "--quiet", "--package", "mytool", "http://x/s/{package}/{platform}/{arch}"],
    ["send", "http://x/{package}{?exit_code}", "--package", "mytool", "--version", "1.4.2", "--var", "exit_code=3",
     "--var", "elapsed_time=0", "--method", "POST", "--detach", "--quiet", "--body", "{}", "--timeout=5"],
    ["send", "http://x/{package}", "--package=p", "--package", "q", "--detach", "-q", "-v"],
])
def test_the_hand_parser_takes_the_recipes_line(argv):
    assert _quick_fields(argv) is not None
    assert _quick_fields(argv) == _argparse_fields(argv)


@pytest.mark.parametrize("argv", [
    ["send", "http://x/{package}", "--package", "p"],  # no --detach: argparse
    ["send", "http://x/{package}", "--pack", "p", "--detach"],  # an abbreviation
    ["send", "http://x/{package}", "--package", "p", "--detach", "--help"],
    ["send", "http://x/{package}", "--package", "p", "--detach", "-qv"],
    ["send", "http://x/{package}", "--package", "--detach"],  # a missing value
    ["send", "http://x/{package}", "--package", "p", "--detach", "--timeout", "0"],
    # Beyond the one timeout rule's bound (3600 s): argparse's message, not another one.
    ["send", "http://x/{package}", "--package", "p", "--detach", "--timeout", "3601"],
    ["send", "http://x/{package}", "--package", "p", "--detach", "--timeout=inf"],
    ["send", "http://x/{package}", "--package", "p", "--detach", "--method", "PUT"],
    ["send", "http://x/{package}", "http://y/", "--package", "p", "--detach"],
    ["send", "--", "http://x/{package}", "--package", "p", "--detach"],
    ["--version", "send", "http://x/{package}", "--package", "p", "--detach"],
])
def test_the_hand_parser_leaves_anything_unusual_to_argparse(argv):
    assert _quick_fields(argv) is None


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(SEND_WORDS), max_size=9))
def test_whatever_the_hand_parser_takes_argparse_reads_the_same(words):
    argv = ["send", *words]
    quick = _quick_fields(argv)
    if quick is not None:
        assert quick == _argparse_fields(argv), argv


# --------------------------------------------------------------------------
# facts, preview, send, status
# --------------------------------------------------------------------------


def test_facts_json_has_every_builtin_variable():
    result = cli("facts", "--json")
    assert result.returncode == 0, result
    values = json.loads(result.stdout)
    assert list(values) == list(BUILTIN_NAMES)
    assert values["python"] == platform.python_version()
    assert values["arch"] == ARCH and values["machine"] == platform.machine()
    assert values["ci"] == "false"
    assert values["package"] is None and values["version"] is None


def test_facts_table_and_package_version(site):
    make_package(site, "facts_pkg", version="4.5.6")
    result = cli("facts", "--package", "facts_pkg", env=child_env(site, CI="true"))
    assert result.returncode == 0
    table = dict(line.split(None, 1) for line in result.stdout.splitlines())
    assert list(table) == list(BUILTIN_NAMES)
    assert (table["package"], table["version"], table["ci"]) == ("facts-pkg", "4.5.6", "true")  # normalised
    assert result.stderr == ""  # an installed distribution: no note


def test_preview_prints_the_url_and_sends_nothing(collector, site):
    make_package(site, "prev_pkg", version="0.3")
    template = collector.url + ROUTE + "{&flavour}"
    result = cli("preview", template, "--package", "prev_pkg", "--var", "flavour=gpu", env=child_env(site))
    assert result.returncode == 0, result
    assert result.stdout == (f"{collector.url}/t/prev-pkg/0.3/{platform.system().lower()}"
                             f"?python={platform.python_version()}&arch={ARCH}&flavour=gpu\n")
    assert collector.settle(0.2) == []


def test_preview_version_override_and_opt_out_note(collector):
    result = cli("preview", collector.url + "/{package}/{version}", "--package", "p", "--version", "9.9",
                 env=child_env(DO_NOT_TRACK="1"))
    assert result.stdout == f"{collector.url}/p/9.9\n"
    assert "DO_NOT_TRACK is set" in result.stderr


@pytest.mark.parametrize(("template", "fragment"), [
    ("http://x/{nope}", "unknown variable {nope}"),
    ("http://x/{package", "unclosed expression"),
    ("ftp://x/{package}", "http:// or https://"),
    ("http://x/{package}{&version", "unclosed expression"),
])
def test_a_bad_template_is_one_line_naming_the_problem(template, fragment):
    assert_one_line_error(cli("preview", template, "--package", "p"), 2, fragment)
    assert_one_line_error(cli("send", template, "--package", "p"), 2, fragment)


@pytest.mark.parametrize(("var", "fragment"), [("novalue", "NAME=VALUE"), ("version=1", "clashes")])
def test_a_bad_var_is_one_line(var, fragment):
    assert_one_line_error(cli("preview", "http://x/{package}", "--package", "p", "--var", var), 2, fragment)


def test_send_delivers_synchronously_even_in_ci(collector):
    result = cli("send", collector.url + ROUTE, "--package", "send-pkg", "--version", "1.0",
                 env=child_env(CI="true", GITHUB_ACTIONS="true"))
    assert result.returncode == 0, result
    assert "HTTP 204 in " in result.stdout and result.stdout.rstrip().endswith("ms")
    reqs = collector.wait_for(1)
    assert len(reqs) == 1
    assert reqs[0].path == f"/t/send-pkg/1.0/{platform.system().lower()}"
    assert reqs[0].headers["User-Agent"].startswith("scarf-autoping/")


@pytest.mark.parametrize("env", [{"DO_NOT_TRACK": "1"}, {"SCARF_NO_ANALYTICS": "yes"}, {"SEND_PKG_NO_ANALYTICS": "1"},
                                 {"SCARF_ANALYTICS": "false"}])
def test_send_respects_opt_outs(collector, env):
    # Exit 0: a `set -e` script must not die because its user opted out (issue 10).
    result = cli("send", collector.url + ROUTE, "--package", "send-pkg", env=child_env(**env))
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    result = cli("send", collector.url + ROUTE, "--package", "send-pkg", "--verbose", env=child_env(**env))
    assert (result.returncode, result.stdout) == (0, "")
    assert result.stderr == f"scarf-autoping send: not sent: opted out by {next(iter(env))}\n"
    assert collector.settle(0.2) == []


def test_send_reports_failure_with_exit_1(make_collector):
    refused = cli("send", f"http://127.0.0.1:{free_port()}/{{package}}", "--package", "p", "--timeout", "2")
    assert refused.returncode == 1 and "Connection refused" in refused.stdout
    server_error = make_collector("status:500")
    failed = cli("send", server_error.url + "/{package}", "--package", "p")
    assert failed.returncode == 1 and "HTTP 500 in " in failed.stdout


@pytest.mark.parametrize(("env", "expected"), [
    ({}, "on for every package"),
    ({"DO_NOT_TRACK": "1"}, "off for stat-pkg: DO_NOT_TRACK is set"),
    ({"SCARF_NO_ANALYTICS": "true"}, "off for stat-pkg: SCARF_NO_ANALYTICS is set"),
    ({"STAT_PKG_NO_ANALYTICS": "1"}, "off for stat-pkg: STAT_PKG_NO_ANALYTICS is set"),
    ({"SCARF_ANALYTICS": "false"}, "off for stat-pkg: SCARF_ANALYTICS is set"),
    ({"GITLAB_CI": "true"}, "off for stat-pkg: CI detected (GITLAB_CI is set)"),
    ({"DO_NOT_TRACK": "0"}, "on for stat-pkg"),
])
def test_status_names_the_variable(env, expected):
    args = ("status",) if not env else ("status", "--package", "stat-pkg")
    result = cli(*args, env=child_env(**env))
    assert result.returncode == 0
    assert result.stdout.startswith(expected), result.stdout
    assert "DO_NOT_TRACK=1" in result.stdout


# --------------------------------------------------------------------------
# init
# --------------------------------------------------------------------------

INIT_SOURCE = (
    '"""Ein Paket für Grüße: ünïcödé in the docstring.\n\nSecond paragraph.\n"""\n'
    "from __future__ import annotations\n"
    "from __future__ import division  # déjà\n"
    "\n"
    "GREETING = 'héllo wörld ✓'\n"
)


def _project(tmp_path: Path, source: bytes) -> Path:
    """A src-layout project: tmp/proj/pyproject.toml and tmp/proj/src/grt_pkg/__init__.py."""
    project = tmp_path / "proj"
    package = project / "src" / "grt_pkg"
    package.mkdir(parents=True)
    (project / "pyproject.toml").write_text('[project]\nname = "greet-pkg"\nversion = "3.1.4"\n', encoding="utf-8")
    (package / "__init__.py").write_bytes(source)
    return package


def test_init_adds_one_line_keeps_every_byte_and_is_idempotent(tmp_path):
    package = _project(tmp_path, INIT_SOURCE.encode("utf-8"))
    template = "https://greet.gateway.scarf.sh/t/{package}/{version}/{platform}"
    first = cli("init", str(package), "--endpoint", template)
    assert first.returncode == 0, first
    after_first = (package / "__init__.py").read_bytes()
    lines = after_first.decode("utf-8").splitlines(keepends=True)
    original = INIT_SOURCE.splitlines(keepends=True)
    assert lines[:6] == original[:6]  # docstring and both __future__ imports first
    assert lines[6:10] == [
        "\n",
        "# Anonymous adoption ping (scarf-autoping, see TELEMETRY.md).\n",
        "# Opt out: DO_NOT_TRACK=1 or GREET_PKG_NO_ANALYTICS=1.\n",
        '__import__("scarf_autoping").autoping(\n',
    ]
    assert lines[10:12] == ['    "greet-pkg", "https://greet.gateway.scarf.sh/t/{package}/{version}/{platform}"\n', ")\n"]
    assert lines[12:] == original[6:]  # the blank line and the code that followed
    notice = tmp_path / "proj" / "TELEMETRY.md"
    text = notice.read_text(encoding="utf-8")
    for needle in ("DO_NOT_TRACK", "SCARF_NO_ANALYTICS", "GREET_PKG_NO_ANALYTICS", "greet.gateway.scarf.sh",
                   "`version`", "`platform`", "GITHUB_ACTIONS"):
        assert needle in text
    assert "added to" in first.stdout and "wrote the notice" in first.stdout

    second = cli("init", str(package), "--endpoint", template)
    assert second.returncode == 0, second
    assert (package / "__init__.py").read_bytes() == after_first
    assert notice.read_text(encoding="utf-8") == text
    assert "unchanged" in second.stdout


@pytest.mark.parametrize(("source", "expected"), [
    (b"", b"BLOCK\n"),
    (b'"""doc"""', b'"""doc"""\n\nBLOCK\n'),
    # after the module's imports, one blank line before the code after it
    (b'"""doc"""\r\nimport os\r\n', b'"""doc"""\r\nimport os\r\n\r\nBLOCK\r\n'),
    (b"#!/usr/bin/env python\n# -*- coding: latin-1 -*-\nX = '\xe9'\n",
     b"#!/usr/bin/env python\n# -*- coding: latin-1 -*-\n\nBLOCK\n\nX = '\xe9'\n"),
    (b"import os\n", b"import os\n\nBLOCK\n"),
    (b"import os\n\n\ndef f():\n    pass\n", b"import os\n\nBLOCK\n\n\ndef f():\n    pass\n"),
    (b"import os\n\nclass C:\n    pass\n", b"import os\n\nBLOCK\n\n\nclass C:\n    pass\n"),
    (b"import os\n__all__ = []\nimport sys\nX = 1\n", b"import os\n__all__ = []\nimport sys\n\nBLOCK\n\nX = 1\n"),
    (b"try:\n    import a\nexcept ImportError:\n    a = None\nX = 1\n",
     b"try:\n    import a\nexcept ImportError:\n    a = None\n\nBLOCK\n\nX = 1\n"),
    # review regressions: a UTF-8 BOM is kept once; a cookie on line 2 after a blank line stays on line 2
    (b'\xef\xbb\xbf"""d"""\n', b'\xef\xbb\xbf"""d"""\n\nBLOCK\n'),
    (b"\xef\xbb\xbfimport os\n", b"\xef\xbb\xbfimport os\n\nBLOCK\n"),
    (b'\n# -*- coding: latin-1 -*-\nx = "\xe9"\n', b'\n# -*- coding: latin-1 -*-\n\nBLOCK\n\nx = "\xe9"\n'),
])
def test_init_placement(tmp_path, source, expected):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_bytes(source)
    result = cli("init", str(package), "--endpoint", "http://127.0.0.1:9/{package}", "--package", "pkg")
    assert result.returncode == 0, result
    written = (package / "__init__.py").read_bytes()
    block = (rb"# Anonymous adoption ping \(scarf-autoping, see TELEMETRY.md\)\.(\r?\n)"
             rb"# Opt out: DO_NOT_TRACK=1 or PKG_NO_ANALYTICS=1\.\1"
             rb'__import__\("scarf_autoping"\)\.autoping\("pkg", "http://127.0.0.1:9/\{package\}"\)')
    assert re.sub(block, b"BLOCK", written) == expected
    compile(written, "__init__.py", "exec")  # Python still reads it (with its encoding)
    assert (tmp_path / "TELEMETRY.md").is_file()  # no project file: the package dir's parent


def test_init_notice_option_and_existing_notice_is_kept(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("", encoding="utf-8")
    custom = tmp_path / "docs" / "PRIVACY.md"
    custom.parent.mkdir()
    custom.write_text("my own words\n", encoding="utf-8")
    result = cli("init", str(package), "--endpoint", "http://127.0.0.1:9/{package}", "--notice", str(custom),
                 "--package", "pkg")
    assert result.returncode == 0, result
    assert custom.read_text(encoding="utf-8") == "my own words\n"
    assert "kept" in result.stdout
    fresh = cli("init", str(package), "--endpoint", "http://127.0.0.1:9/{package}", "--notice", str(tmp_path / "docs"),
                "--package", "pkg")
    assert fresh.returncode == 0 and (tmp_path / "docs" / "TELEMETRY.md").is_file()


def test_init_errors_are_one_line_and_change_nothing(tmp_path):
    assert_one_line_error(cli("init", str(tmp_path / "missing"), "--endpoint", "http://x/{package}"), 1,
                          "is not a directory")
    empty_dir = tmp_path / "nopkg"
    empty_dir.mkdir()
    assert_one_line_error(cli("init", str(empty_dir), "--endpoint", "http://x/{package}"), 1, "__init__.py")
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_bytes(b'"""doc"""\n')
    assert_one_line_error(cli("init", str(package), "--endpoint", "http://x/{bogus}"), 2, "unknown variable {bogus}")
    (package / "__init__.py").write_bytes(b"def broken(:\n")
    assert_one_line_error(cli("init", str(package), "--endpoint", "http://x/{package}", "--package", "pkg"), 1,
                          "cannot parse")
    other = b"from scarf_autoping import autoping\nautoping('pkg', 'http://elsewhere/{package}')\n"
    (package / "__init__.py").write_bytes(other)
    assert_one_line_error(cli("init", str(package), "--endpoint", "http://x/{package}", "--package", "pkg"), 1,
                          "already uses")
    assert (package / "__init__.py").read_bytes() == other
    assert not (tmp_path / "TELEMETRY.md").exists()


def _stored(db: Path) -> int:
    """How many pings the collector's database holds (0 while it cannot be read)."""
    try:
        with contextlib.closing(sqlite3.connect(db)) as conn:
            return conn.execute("SELECT count(*) FROM pings").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_init_package_pings_the_collector_and_shows_in_report(tmp_path):
    """End to end: init a package, run a real collector, import the package, report."""
    db = tmp_path / "pings.sqlite"
    collect = subprocess.Popen([SCRIPT, "collect", "--port", "0", "--db", str(db), "--route", ROUTE],
                               env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = collect.stdout.readline().split()[2]
        package = _project(tmp_path, INIT_SOURCE.encode("utf-8"))
        site = tmp_path / "proj" / "src"
        info = site / "greet_pkg-3.1.4.dist-info"
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: greet-pkg\nVersion: 3.1.4\n", encoding="utf-8")
        (info / "top_level.txt").write_text("grt_pkg\n", encoding="utf-8")
        assert cli("init", str(package), "--endpoint", url + ROUTE).returncode == 0
        child = run_child("import grt_pkg; print(grt_pkg.GREETING)", child_env(site))
        assert (child.returncode, child.stdout, child.stderr) == (0, "héllo wörld ✓\n", "")
        # The child exited at once; its ping was handed to a detached sender: wait for it.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not _stored(db):
            time.sleep(0.05)
    finally:
        collect.send_signal(signal.SIGTERM)
        out, err = collect.communicate(timeout=10)
    assert collect.returncode == 0, err
    assert "GET /t/greet-pkg/3.1.4/" in out
    report = cli("report", "--db", str(db), "--by", "version,platform,python,arch")
    assert report.returncode == 0, report
    row = report.stdout.splitlines()[2].split()
    assert row == ["3.1.4", platform.system().lower(), platform.python_version(), ARCH, "1", "100.0%"]


# --------------------------------------------------------------------------
# demo
# --------------------------------------------------------------------------


def test_demo_shows_the_ping_and_the_report_even_with_opt_outs_set():
    result = cli("demo", env=child_env(CI="true", DO_NOT_TRACK="1", SCARF_AUTOPING_PINGED="demo-pkg",
                                       DEMO_PKG_NO_ANALYTICS="1"), timeout=30)
    assert result.returncode == 0, result
    assert result.stderr == ""
    out = result.stdout
    assert ("removed CI, DO_NOT_TRACK, SCARF_AUTOPING_PINGED, DEMO_PKG_NO_ANALYTICS from the child's environment"
            in out)
    assert f"GET /telemetry/demo-pkg/1.0.0/{platform.system().lower()}/{platform.python_version()}/" in out
    assert "user agent: scarf-autoping/" in out
    assert any(line.split()[:2] == ["1.0.0", platform.system().lower()] and line.split()[-2:] == ["1", "100.0%"]
               for line in out.splitlines())


def test_demo_child_timeout_is_one_line(tmp_path, monkeypatch, capsys):
    """The child hangs (a sitecustomize that sleeps): one error line, exit 1, no traceback."""
    from scarf_autoping.tools import cli as cli_module

    hang = tmp_path / "hang"
    hang.mkdir()
    (hang / "sitecustomize.py").write_text("import time\ntime.sleep(30)\n", encoding="utf-8")
    monkeypatch.setenv("PYTHONPATH", str(hang))
    monkeypatch.setattr(cli_module, "DEMO_TIMEOUT", 0.5)
    assert cli_module.main(["demo"]) == 1
    err = capsys.readouterr().err
    assert err == "scarf-autoping demo: error: the child process importing demo_pkg did not finish within 0.5 s; " \
                  "it was stopped\n"


def test_demo_child_that_cannot_start_is_one_line(tmp_path, monkeypatch, capsys):
    from scarf_autoping.tools import cli as cli_module

    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-such-python"))
    assert cli_module.main(["demo"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("scarf-autoping demo: error: cannot start the child process") and err.count("\n") == 1


def test_a_closed_stdout_exits_1_quietly():
    """``scarf-autoping demo | head -1``: the reader is gone; no 'Exception ignored' noise."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run([SCRIPT, "demo"], env=child_env(), stdout=write_end, stderr=subprocess.PIPE,
                                text=True, timeout=30, check=False, stdin=subprocess.DEVNULL)
    finally:
        os.close(write_end)
    assert (result.returncode, result.stderr) == (1, "")


def test_init_writes_nothing_when_the_notice_cannot_be_written(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_bytes(b'"""doc"""\n')
    result = cli("init", str(package), "--endpoint", "http://127.0.0.1:9/{package}", "--notice",
                 "/proc/scarf-autoping-nope/TELEMETRY.md", "--package", "pkg")
    assert_one_line_error(result, 1, "cannot write")
    assert (package / "__init__.py").read_bytes() == b'"""doc"""\n'


def test_init_rolls_back_the_new_notice_when_init_py_cannot_be_written(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root can write into read-only directories")
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_bytes(b'"""doc"""\n')
    package.chmod(0o555)  # __init__.py cannot be replaced
    try:
        result = cli("init", str(package), "--endpoint", "http://127.0.0.1:9/{package}", "--package", "pkg")
    finally:
        package.chmod(0o755)
    assert_one_line_error(result, 1, "cannot write")
    assert not (tmp_path / "TELEMETRY.md").exists()


def test_init_writes_through_a_symlinked_init_py(tmp_path):
    real = tmp_path / "real_init.py"
    real.write_bytes(b'"""doc"""\n')
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").symlink_to(real)
    result = cli("init", str(package), "--endpoint", "http://127.0.0.1:9/{package}", "--package", "pkg")
    assert result.returncode == 0, result
    assert (package / "__init__.py").is_symlink()
    assert b'autoping("pkg", "http://127.0.0.1:9/{package}")' in real.read_bytes()
    assert (tmp_path / "TELEMETRY.md").stat().st_mode & 0o777 == 0o644 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_init_output_in_an_ascii_terminal_is_escaped_not_a_traceback(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_bytes(b"")
    result = cli("init", str(package), "--endpoint", "http://127.0.0.1:9/{package}/caf\u00e9", "--package", "pkg",
                 env=child_env(PYTHONIOENCODING="ascii"))
    assert result.returncode == 0, result
    assert "Traceback" not in result.stderr
    assert "caf\\xe9" in result.stdout


def test_status_follows_the_library_order_already_pinged_before_ci():
    result = cli("status", "--package", "stat-pkg", env=child_env(CI="true", SCARF_AUTOPING_PINGED="stat-pkg"))
    assert result.returncode == 0
    assert result.stdout.startswith("off for stat-pkg in this process tree: a parent process already pinged it")


# --------------------------------------------------------------------------
# One convention for errors (issue 9): one line, the command's prefix, 2 for a bad argument
# --------------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ("collect", "--port", "0", "--route", "/t/{package"),
    ("preview", "http://x/t/{package", "--package", "p"),
    ("init", ".", "--endpoint", "http://x/t/{package", "--package", "p"),
])
def test_the_same_bad_template_is_exit_2_with_the_commands_prefix_everywhere(args, tmp_path):
    (tmp_path / "__init__.py").write_text("", encoding="utf-8")
    result = cli(*args, cwd=tmp_path)
    assert_one_line_error(result, 2, "unclosed expression")
    assert result.stderr.startswith(f"scarf-autoping {args[0]}: error: "), result.stderr
    assert (tmp_path / "__init__.py").read_text(encoding="utf-8") == ""  # init changed nothing


def test_collect_on_a_port_in_use_is_a_failure_exit_1(collector, tmp_path):
    result = cli("collect", "--port", str(collector.port), "--db", str(tmp_path / "p.sqlite"))
    assert_one_line_error(result, 1, f"cannot listen on 127.0.0.1:{collector.port}")
    assert result.stderr.startswith("scarf-autoping collect: error: ")


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
