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

import ast
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import child_env, make_package
from loopback import free_port

ROOT = Path(__file__).resolve().parent.parent.parent
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
    ruff, mypy, pytest_command = tests.split(" && ")
    assert ruff.replace(".venv/bin/python", '"$VENV/bin/python"') in ci, ruff
    assert mypy.replace(".venv/bin/python", '"$VENV/bin/python"') in ci, mypy
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


# --- the docs against the code: one table of variables, the statuses, the links -------

#: A word that can be a status (``handed-over``), as opposed to a reason (``dropped at exit``).
STATUS_WORD = re.compile(r"[a-z]+(?:-[a-z]+)?")
#: The calls that settle a ping or report an outcome take its status as a literal argument.
SETTLING_CALLS = re.compile(r"settle|resolve|outcome|report|finish|retrying")
#: More distinct built-in names than this in one paragraph or table outside docs/api.md is a copy.
MOST_NAMES_ELSEWHERE = 7
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def prose(page: Path) -> list[list[str]]:
    """The page outside fenced blocks, as paragraphs and tables (runs of non-blank lines)."""
    chunks: list[list[str]] = [[]]
    fenced = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            continue
        if line.strip():
            chunks[-1].append(line)
        elif chunks[-1]:
            chunks.append([])
    return [chunk for chunk in chunks if chunk]


def tables(page: Path) -> list[list[list[str]]]:
    """Every Markdown table on ``page``: its rows (header first, the rule left out) as cells."""
    found = []
    for chunk in prose(page):
        rows = [line for line in chunk if line.lstrip().startswith("|")]
        if len(rows) < 2 or not re.fullmatch(r"\|?(\s*:?-+:?\s*\|)+\s*:?-*:?\s*", rows[1].strip()):
            continue
        found.append([[cell.strip() for cell in row.strip().strip("|").split("|")] for row in rows[:1] + rows[2:]])
    return found


def table_with_header(page: Path, first: str) -> list[list[str]]:
    """The one table on ``page`` whose first header cell is ``first`` (its body rows)."""
    matching = [table for table in tables(page) if table[0][0] == first]
    assert len(matching) == 1, f"{page.name}: {len(matching)} tables start with a {first!r} column, not one"
    return matching[0][1:]


def first_column(rows: list[list[str]]) -> list[str]:
    """The names in backticks in the first cell of each row (``"handoff"`` keeps no quotes)."""
    return [name.strip('"') for row in rows for name in re.findall(r"`([^`]+)`", row[0])]


def test_one_table_of_variables_in_api_md_with_every_builtin_name():
    from scarf_autoping.facts import BUILTIN_NAMES

    names = first_column(table_with_header(ROOT / "docs" / "api.md", "variable"))
    assert sorted(names) == sorted(BUILTIN_NAMES), (
        f"docs/api.md's table of variables lists {names}, the code has {list(BUILTIN_NAMES)}")


def _names_in(chunk: list[str], builtin: set[str]) -> set[str]:
    """The built-in names ``chunk`` spells out in backticks, alone or as a list (``a, b``)."""
    found: set[str] = set()
    for span in re.findall(r"`([^`]+)`", " ".join(chunk)):
        words = [word for word in re.split(r"[\s,]+", span.strip()) if word]
        if words and all(word in builtin for word in words):
            found.update(words)
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_no_other_copy_of_the_variables(page: Path):
    """A list of the variables anywhere else drifts (it did): link to the table instead."""
    from scarf_autoping.facts import BUILTIN_NAMES

    builtin = set(BUILTIN_NAMES)
    for table in tables(page):
        if page.name == "api.md" and table[0][0] == "variable":
            continue
        names = set(first_column(table[1:])) & builtin
        assert len(names) < 3, (f"{page.name}: a table of variables ({sorted(names)}); "
                                "the one table is in docs/api.md#template-variables")
    for chunk in prose(page):
        if page.name == "api.md" and chunk[0].lstrip().startswith("| variable |"):
            continue
        names = _names_in(chunk, builtin)
        assert len(names) <= MOST_NAMES_ELSEWHERE, (
            f"{page.name}: a list of {len(names)} variables ({', '.join(sorted(names))}) in:\n"
            f"{chunk[0]}\nlink to docs/api.md#template-variables instead")


def _status_literals(path: Path) -> set[str]:
    """The statuses ``path`` gives a ping: literals assigned to or compared with a ``.status``,
    or passed to the calls that settle a ping or report an outcome."""

    def strings(node: ast.AST) -> list[str]:
        return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]

    def is_status(node: ast.AST) -> bool:
        return isinstance(node, ast.Attribute) and node.attr == "status"

    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        values: list[str] = []
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if node.value is not None and any(is_status(target) for target in targets):
                values = strings(node.value)
        elif isinstance(node, ast.Compare) and any(is_status(n) for n in [node.left, *node.comparators]):
            values = [s for n in [node.left, *node.comparators] for s in strings(n)]
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if SETTLING_CALLS.search(name):
                values = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        found.update(value for value in values if STATUS_WORD.fullmatch(value))
    return found


def test_every_status_the_code_sets_is_in_the_table_of_statuses():
    runtime = sorted((ROOT / "scarf_autoping").glob("*.py"))
    in_code = set().union(*(_status_literals(path) for path in runtime))
    documented = set(first_column(table_with_header(ROOT / "docs" / "api.md", "status")))
    assert in_code - documented == set(), f"statuses set by the code, missing from docs/api.md: {in_code - documented}"
    assert documented - in_code == set(), (
        f"statuses in docs/api.md that no code sets: {documented - in_code} (or the code settles pings through "
        f"a call this test does not know: see SETTLING_CALLS)")


def test_every_on_exit_value_is_documented():
    from scarf_autoping import ON_EXIT

    documented = first_column(table_with_header(ROOT / "docs" / "api.md", "`on_exit`"))
    assert sorted(documented) == sorted(ON_EXIT), f"docs/api.md's on_exit table: {documented}, the code: {ON_EXIT}"


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for chunk in prose(page):
        for line in chunk:
            match = re.match(r"#{1,6}\s+(.*)", line)
            if match:
                base = slug(match.group(1))
                count = seen.get(base, 0)
                seen[base] = count + 1
                found.add(base if not count else f"{base}-{count}")
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_link_between_the_pages_resolves(page: Path):
    broken = []
    for chunk in prose(page):
        for target in LINK.findall(" ".join(chunk)):
            if re.match(r"[a-z]+:", target):
                continue  # https:, mailto:
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{target}: no such file")
            elif anchor and file.suffix == ".md" and anchor not in anchors(file):
                broken.append(f"{target}: no heading with that anchor in {file.name}")
    assert not broken, f"{page.name}: " + "; ".join(broken)
