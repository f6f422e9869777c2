"""Every command in README.md and docs/*.md runs, and prints what the page says it prints.

``console`` blocks: each ``$ `` line is run with bash in a fresh directory holding a
small project (``src/my_pkg``, distribution ``my-pkg``), with ``my-pkg`` 1.4.2 installed
on ``PYTHONPATH`` and a local collector (``scarf-autoping collect``) on a free loopback
port standing in for port 8750. Lines under a command are its expected output, compared
after machine-dependent values are blurred (numbers, versions, paths, this machine's
platform facts); a line ending in ``...`` matches any line that starts like it. Every
command must exit 0 unless the page shows an error line.

``bash`` blocks: the quick-start commands are the ones CI runs (``.ci/run``), and every
other command's program answers ``--help`` (benchmarks take minutes; they are run by hand).

``python`` blocks holding the one ``autoping`` line are run with ``DO_NOT_TRACK=1``: the
template on the front page passes the checks an author's import would make.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import child_env, free_port, make_package

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent
FENCE = re.compile(r"^( *)```(\w*)\s*$")


def blocks(page: Path) -> list[tuple[str, list[str]]]:
    """``(language, lines)`` of every fenced block on ``page`` (indentation removed)."""
    found: list[tuple[str, list[str]]] = []
    current: list[str] | None = None
    language, indent = "", 0
    for line in page.read_text(encoding="utf-8").splitlines():
        match = FENCE.match(line)
        if match and current is None:
            current, language, indent = [], match.group(2), len(match.group(1))
        elif match and current is not None:
            found.append((language, current))
            current = None
        elif current is not None:
            current.append(line[indent:])
    return found


def examples(page: Path) -> list[tuple[str, list[str]]]:
    """``(command, expected output lines)`` of every console block on ``page``."""
    out: list[tuple[str, list[str]]] = []
    for language, lines in blocks(page):
        if language != "console":
            continue
        for line in lines:
            if line.startswith("$ "):
                out.append((line[2:], []))
            elif out:
                out[-1][1].append(line)
    return out


def _facts() -> list[str]:
    """This machine's platform words, and the ones the pages show (numbers are blurred apart)."""
    from scarf_autoping import facts

    values = facts.variables("my-pkg", "1.4.2", False, None)
    words = {values[k] for k in ("platform", "os", "arch", "distro", "python_implementation")}
    words |= {"linux", "macos", "windows", "Linux", "x86_64", "arm64", "ubuntu", "debian"}
    return sorted((w for w in words if w and w != "unknown" and not w[0].isdigit()), key=len, reverse=True)


def blur(line: str, facts: list[str], port: int, cwd: Path) -> str:
    """``line`` with what differs between machines and runs replaced by placeholders."""
    line = line.replace(str(cwd), "/DIR").replace("/home/me/my-pkg", "/DIR").replace("/home/me", "/DIR")
    line = line.replace(str(cwd.parent), "/DIR")  # HOME: where the state directory is (issue 18)
    line = line.replace(str(port), "8750")
    for word in facts:
        line = re.sub(rf"(?<![\w.]){re.escape(word)}(?![\w])", "F", line)
    line = re.sub(r"\d+(\.\d+)*", "N", line)
    line = re.sub(r"-{2,}", "--", line)  # table rules follow the widths of the values
    return re.sub(r"\s+", " ", line).strip()


def same(expected: list[str], actual: list[str], facts: list[str], port: int, cwd: Path) -> bool:
    """Whether the output matches the page (a command shown without output is not checked)."""
    if not expected:
        return True
    want = [blur(line, facts, port, cwd) for line in expected if line.strip()]
    got = [blur(line, facts, port, cwd) for line in actual if line.strip()]
    if len(want) != len(got):
        return False
    for w, g in zip(want, got):
        if w.endswith("..."):
            if not g.startswith(w[:-3].rstrip()):
                return False
        elif w != g:
            return False
    return True


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project directory as the pages assume one: ``src/my_pkg``, distribution my-pkg."""
    root = tmp_path / "my-pkg"
    (root / "src" / "my_pkg").mkdir(parents=True)
    (root / "src" / "my_pkg" / "__init__.py").write_text('"""My package."""\n', encoding="utf-8")
    (root / "pyproject.toml").write_text('[project]\nname = "my-pkg"\nversion = "1.4.2"\n', encoding="utf-8")
    make_package(tmp_path / "site", "my_pkg", "", dist_name="my-pkg", version="1.4.2")
    return root


@pytest.mark.parametrize("page", [p for p in PAGES if examples(p)], ids=lambda p: p.name)
def test_every_console_example_runs_as_shown(page: Path, project: Path):
    port = free_port()
    env = child_env(project.parent / "site", HOME=str(project.parent), PATH=f"{BIN}{os.pathsep}/usr/bin:/bin")
    env.pop("PYTHONPATH", None)
    env["PYTHONPATH"] = str(project.parent / "site")
    collector = subprocess.Popen([str(BIN / "scarf-autoping"), "collect", "--port", str(port), "--db",
                                  str(project / "pings.sqlite"), "--route",
                                  "/t/{package}/{version}/{platform}/{python}/{arch}/{distro}"],
                                 cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert collector.stdout is not None
        assert collector.stdout.readline().startswith("collecting on"), "the collector did not start"
        facts = _facts()
        failures = []
        for command, expected in examples(page):
            if command.startswith("scarf-autoping collect"):
                continue  # running already, on the stand-in port
            # A documented command never reaches a real endpoint: only the loopback collector.
            assert not re.search(r"\bsend\b.*https?://(?!127\.0\.0\.1)", command), f"{page.name}: {command}"
            shell = command.replace("8750", str(port))
            proc = subprocess.run(["bash", "-c", shell], cwd=project, env=env, capture_output=True, text=True,
                                  timeout=60, check=False)
            shows_error = any("error" in line for line in expected)
            output = (proc.stdout + proc.stderr).splitlines()
            if (proc.returncode != 0) != shows_error or not same(expected, output, facts, port, project):
                failures.append(f"$ {command}\n  exit {proc.returncode}\n  expected: {expected}\n  got: {output}")
            time.sleep(0.05)
        assert not failures, "\n".join(failures)
    finally:
        collector.send_signal(signal.SIGINT)
        try:
            collector.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            collector.kill()
            collector.communicate()


def test_the_quick_start_commands_are_the_ones_ci_runs():
    bash = [line for page in PAGES for language, lines in blocks(page) if language == "bash" for line in lines]
    readme = [line for language, lines in blocks(ROOT / "README.md") if language == "bash" for line in lines]
    install, tests = readme[:2]
    assert install.endswith("scarf-autoping demo") and 'pip install -e ".[test]"' in install
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    ruff, pytest_command = tests.split(" && ")
    assert ruff.replace(".venv/bin/python", '"$VENV/bin/python"') in ci, ruff
    assert pytest_command.replace(".venv/bin/python", '"$venv/bin/python"') in ci, pytest_command
    assert bash, "no bash blocks found"


@pytest.mark.parametrize("line", sorted({
    line.split("#")[0].strip()
    for page in PAGES for language, lines in blocks(page) if language == "bash" for line in lines
    if line.strip() and not line.lstrip().startswith("#") and "benchmarks/" in line
}))
def test_every_benchmark_command_answers_help(line: str):
    argv = shlex.split(line)
    script = ROOT / argv[1]
    assert script.is_file(), line
    proc = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=60,
                          check=False, cwd=ROOT, env=child_env())
    assert proc.returncode == 0 and "usage" in proc.stdout, proc


def test_the_front_page_line_passes_the_authors_checks():
    lines = [line for language, lines in blocks(ROOT / "README.md") if language == "python" for line in lines
             if "autoping(" in line]
    assert lines, "the one line is on the front page"
    for line in lines:
        proc = subprocess.run([sys.executable, "-c", line], capture_output=True, text=True, timeout=60, check=False,
                              env=child_env(DO_NOT_TRACK="1"))
        assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", ""), proc
