"""``scarf-autoping init`` on real projects (issue 9): the name read statically from PEP 621,
Poetry, setup.cfg and setup.py at any depth; code the author's own ``ruff`` accepts; a re-run
that updates the call and the notice; and the package, once installed, pinging a loopback
collector under that name (and not when its opt-out variable, named in the comment, is set).

The first tests are pure-function checks of :mod:`scarf_autoping.tools.initcmd`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import child_env, run_child

from scarf_autoping.facts import BUILTIN_NAMES
from scarf_autoping.tools.initcmd import DESCRIPTIONS, render_notice


def test_every_builtin_variable_has_a_notice_description_and_nothing_else_does():
    assert set(DESCRIPTIONS) == set(BUILTIN_NAMES)


def test_the_notice_describes_each_variable_of_the_template():
    text = render_notice("p", "https://x.gateway.scarf.sh/t/{package}/{version}{?python,arch}")
    for name in ("package", "version", "python", "arch"):
        assert f"- `{name}`: {DESCRIPTIONS[name]}" in text


def test_a_failed_init_py_write_removes_the_notice_it_just_wrote(tmp_path, monkeypatch):
    """Both files or neither (the CLI test of this is skipped as root, who can write anywhere)."""
    from scarf_autoping.tools import initcmd

    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_bytes(b'"""doc"""\n')
    real_write = initcmd._write_atomic

    def failing(path, data):
        if path.name == "__init__.py":
            raise PermissionError(13, "Permission denied", str(path))
        real_write(path, data)

    monkeypatch.setattr(initcmd, "_write_atomic", failing)
    with pytest.raises(initcmd.InitError, match="Permission denied"):
        initcmd.init_package(package, "http://127.0.0.1:9/{package}", "pkg")
    assert not (tmp_path / "TELEMETRY.md").exists()
    assert (package / "__init__.py").read_bytes() == b'"""doc"""\n'


def test_a_bom_only_file_gets_the_code_after_the_bom():
    from scarf_autoping.tools.initcmd import code_lines, edit_source

    new, previous = edit_source(b"\xef\xbb\xbf", "p", "http://x/{package}")
    assert new == b"\xef\xbb\xbf" + "\n".join(code_lines("p", "http://x/{package}")).encode() + b"\n"
    assert previous is None


def test_the_code_is_formatted_for_the_line_length_and_names_the_opt_outs():
    from scarf_autoping.tools.initcmd import Style, code_lines

    short = code_lines("acme-widgets", "https://a.scarf.sh/t/{package}")
    assert short == [
        "# Anonymous adoption ping (scarf-autoping, see TELEMETRY.md).",
        "# Opt out: DO_NOT_TRACK=1 or ACME_WIDGETS_NO_ANALYTICS=1.",
        '__import__("scarf_autoping").autoping("acme-widgets", "https://a.scarf.sh/t/{package}")',
    ]
    long = "https://acme.gateway.scarf.sh/t/{package}/{version}/{platform}/{python}/{arch}/{distro}"
    assert code_lines("acme-widgets", long)[2:] == [
        '__import__("scarf_autoping").autoping(', '    "acme-widgets",', f'    "{long}",', ")"]
    assert code_lines("acme-widgets", long, Style(120))[2:] == [
        '__import__("scarf_autoping").autoping(', f'    "acme-widgets", "{long}"', ")"]
    assert code_lines("p", "http://x/{package}", Style(88, "'"))[2] == (
        "__import__('scarf_autoping').autoping('p', 'http://x/{package}')")
    narrow = code_lines("a-rather-long-distribution-name", "http://x/{package}", Style(50))
    assert all(len(line) <= 50 for line in narrow[1:3]), narrow  # the opt-out comment wraps


# --------------------------------------------------------------------------
# Real projects: the name, the notice, ruff before and after
# --------------------------------------------------------------------------

SCRIPT = str(Path(sys.executable).parent / "scarf-autoping")
ENDPOINT = "https://acme.gateway.scarf.sh/t/{package}/{version}/{platform}"
SHORT_ENDPOINT = "http://x/{package}"
LONG_ENDPOINT = "https://acme.gateway.scarf.sh/t/{package}/{version}/{platform}/{python}/{arch}/{distro}/{ci}"

#: A package that is clean under ruff's E, F, W and I rules and ruff's formatter.
LINT_CLEAN = '''"""Acme widgets: a lint-clean package."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import requests

from .core import Widget
from .util import helper

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["Widget", "helper", "make"]
__version__ = "1.0"


def make(count: int) -> Iterator[Widget]:
    """Some widgets."""
    for _ in range(count):
        yield Widget(os.sep, sys.platform, requests.__name__)
'''


def init(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([SCRIPT, "init", *args], env=child_env(), cwd=cwd, capture_output=True, text=True,
                          timeout=30, check=False, stdin=subprocess.DEVNULL)


def ruff(*args: str) -> subprocess.CompletedProcess:
    """``ruff`` with its defaults only (``--isolated``: the repository's own config stays out)."""
    return subprocess.run([sys.executable, "-m", "ruff", *args, "--isolated"], capture_output=True, text=True,
                          timeout=60, check=False)


def assert_lint_clean(path: Path, *extra: str) -> None:
    checked = ruff("check", "--select", "E,F,W,I", "--no-cache", *extra, str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    formatted = ruff("format", "--check", "--diff", "--no-cache", *extra, str(path))
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr


def namespace_project(root: Path, pyproject: str) -> Path:
    """``root/src/acme/tools/widgets`` (a PEP 420 namespace package, lint-clean) four levels below ``root``."""
    package = root / "src" / "acme" / "tools" / "widgets"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(LINT_CLEAN, encoding="utf-8")
    (package / "core.py").write_text("class Widget:\n    def __init__(self, *args: str) -> None:\n        pass\n")
    (package / "util.py").write_text("def helper() -> None:\n    pass\n")
    (root / "pyproject.toml").write_text(pyproject, encoding="utf-8")
    return package


def test_a_namespace_src_layout_gets_the_project_name_and_the_notice_at_the_root(tmp_path):
    root = tmp_path / "acme-tools-widgets"
    package = namespace_project(root, '[project]\nname = "Acme.Tools_Widgets"\nversion = "1.0"\n')
    assert_lint_clean(root / "src")
    result = init(str(package), "--endpoint", LONG_ENDPOINT)
    assert result.returncode == 0, result
    text = (package / "__init__.py").read_text(encoding="utf-8")
    assert '__import__("scarf_autoping").autoping(\n    "acme-tools-widgets",\n' in text
    assert "# Opt out: DO_NOT_TRACK=1 or ACME_TOOLS_WIDGETS_NO_ANALYTICS=1." in text
    # After every import of the package (so no E402), before its first other statement.
    assert text.index("from collections.abc import Iterator") < text.index("__import__") < text.index("__all__")
    assert_lint_clean(root / "src")  # E, F, W, I and the formatter: the long endpoint needs no exception
    notice = root / "TELEMETRY.md"
    assert notice.is_file() and not (package / "TELEMETRY.md").exists()  # the root: not shipped in the wheel
    assert "ACME_TOOLS_WIDGETS_NO_ANALYTICS" in notice.read_text(encoding="utf-8")
    assert result.stdout.splitlines()[0] == f"added to {package / '__init__.py'}:"


def test_the_projects_line_length_is_followed(tmp_path):
    root = tmp_path / "proj"
    package = namespace_project(root, '[project]\nname = "acme-tools-widgets"\n\n[tool.ruff]\nline-length = 120\n')
    assert init(str(package), "--endpoint", LONG_ENDPOINT).returncode == 0
    text = (package / "__init__.py").read_text(encoding="utf-8")
    assert '__import__("scarf_autoping").autoping(\n    "acme-tools-widgets", "https://' in text
    assert_lint_clean(root / "src", "--line-length", "120")


@pytest.mark.parametrize(("files", "expected"), [
    ({"pyproject.toml": '[tool.poetry]\nname = "Poetry_Widgets"\nversion = "0.1.0"\n'}, "poetry-widgets"),
    ({"setup.py": 'from setuptools import setup\n\nNAME = "setup.py-widgets"\nsetup(name=NAME, version="1")\n'},
     "setup-py-widgets"),
    ({"setup.cfg": "[metadata]\nname = cfg_widgets\nversion = 1.0\n"}, "cfg-widgets"),
    # a pyproject.toml holding only tool settings: the name comes from setup.cfg next to it
    ({"pyproject.toml": "[tool.black]\nline-length = 100\n", "setup.cfg": "[metadata]\nname = Cfg.Two\n"}, "cfg-two"),
    # PEP 621 wins over the others
    ({"pyproject.toml": '[project]\nname = "pep621"\n[tool.poetry]\nname = "poetry"\n',
      "setup.py": "from setuptools import setup\nsetup(name='legacy')\n"}, "pep621"),
])
def test_the_name_is_read_from_every_kind_of_project(tmp_path, files, expected):
    root = tmp_path / "proj"
    package = root / "widgets"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('"""Widgets."""\n', encoding="utf-8")
    for name, content in files.items():
        (root / name).write_text(content, encoding="utf-8")
    result = init(str(package), "--endpoint", SHORT_ENDPOINT)
    assert result.returncode == 0, result
    assert f'autoping("{expected}", ' in (package / "__init__.py").read_text(encoding="utf-8")
    assert (root / "TELEMETRY.md").is_file()


def test_setup_py_is_read_never_run(tmp_path):
    root = tmp_path / "proj"
    (root / "widgets").mkdir(parents=True)
    (root / "widgets" / "__init__.py").write_text("", encoding="utf-8")
    marker = tmp_path / "setup-py-ran"
    (root / "setup.py").write_text(f"open({str(marker)!r}, 'w').close()\nfrom setuptools import setup\n"
                                   "setup(name='ran-' + 'not')\n", encoding="utf-8")
    result = init(str(root / "widgets"), "--endpoint", ENDPOINT)
    assert not marker.exists()
    # A computed name cannot be told without running it: init asks (exit 2), and writes nothing.
    assert result.returncode == 2 and result.stdout == "", result
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("scarf-autoping init: error: cannot tell the distribution name of ")
    assert "no name in setup.py" in result.stderr and "pass it with --package NAME" in result.stderr
    assert (root / "widgets" / "__init__.py").read_text(encoding="utf-8") == ""
    assert not (root / "TELEMETRY.md").exists()


def test_at_a_repository_root_without_project_files_init_asks_then_uses_the_root(tmp_path):
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    package = repo / "lib" / "widgets"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("", encoding="utf-8")
    asked = init(str(package), "--endpoint", ENDPOINT)
    assert asked.returncode == 2 and "pass it with --package NAME" in asked.stderr, asked
    given = init(str(package), "--endpoint", SHORT_ENDPOINT, "--package", "Widgets_Lib")
    assert given.returncode == 0, given
    assert 'autoping("widgets-lib", ' in (package / "__init__.py").read_text(encoding="utf-8")
    assert (repo / "TELEMETRY.md").is_file()


def test_a_package_name_other_than_the_declared_one_is_used_with_a_note(tmp_path):
    root = tmp_path / "proj"
    package = namespace_project(root, '[project]\nname = "acme-tools-widgets"\n')
    result = init(str(package), "--endpoint", ENDPOINT, "--package", "widgets")
    assert result.returncode == 0, result
    assert result.stdout.startswith("note: the project declares the distribution 'acme-tools-widgets'; using "
                                    "'widgets' as asked")


def test_rerunning_with_another_endpoint_updates_the_call_and_the_notice_and_shows_the_change(tmp_path):
    root = tmp_path / "proj"
    package = namespace_project(root, '[project]\nname = "acme-tools-widgets"\n')
    assert init(str(package), "--endpoint", ENDPOINT).returncode == 0
    again = init(str(package), "--endpoint", ENDPOINT)
    assert again.returncode == 0 and again.stdout.count("unchanged") == 2, again

    result = init(str(package), "--endpoint", LONG_ENDPOINT)
    assert result.returncode == 0, result
    out = result.stdout.splitlines()
    assert out[0] == f"updated {package / '__init__.py'} (endpoint changed):"
    assert f'  -    "{ENDPOINT}",' in out
    assert f'  +    "{LONG_ENDPOINT}",' in out
    assert f"  +{LONG_ENDPOINT}" in out and f"  -{ENDPOINT}" in out  # the notice's diff
    assert out[-1] == f"updated the notice {root / 'TELEMETRY.md'}"
    text = (package / "__init__.py").read_text(encoding="utf-8")
    assert text.count("scarf_autoping") == 1 and text.count("# Anonymous adoption ping") == 1
    assert LONG_ENDPOINT in (root / "TELEMETRY.md").read_text(encoding="utf-8")
    assert_lint_clean(root / "src")

    # An author who edited the notice keeps their words; init says to update the endpoint there.
    (root / "TELEMETRY.md").write_text("our own words\n", encoding="utf-8")
    edited = init(str(package), "--endpoint", ENDPOINT)
    assert edited.returncode == 0, edited
    assert edited.stdout.splitlines()[-1].endswith("not overwritten; update its endpoint by hand)")
    assert (root / "TELEMETRY.md").read_text(encoding="utf-8") == "our own words\n"
    assert f'    "{ENDPOINT}",\n' in (package / "__init__.py").read_text(encoding="utf-8")


def test_the_one_line_form_of_earlier_versions_is_replaced_and_moved_after_the_imports(tmp_path):
    root = tmp_path / "proj"
    package = namespace_project(root, '[project]\nname = "acme-tools-widgets"\n')
    old = ("from scarf_autoping import autoping; autoping('acme-tools-widgets', 'http://old/{package}')  "
           "# adoption ping; opt out: DO_NOT_TRACK=1 (see TELEMETRY.md)\n")
    source = LINT_CLEAN.replace("from __future__ import annotations\n", "from __future__ import annotations\n" + old)
    (package / "__init__.py").write_text(source, encoding="utf-8")
    result = init(str(package), "--endpoint", ENDPOINT)
    assert result.returncode == 0 and "(endpoint changed)" in result.stdout, result
    text = (package / "__init__.py").read_text(encoding="utf-8")
    assert "http://old/" not in text and "from scarf_autoping" not in text
    assert_lint_clean(root / "src")


def test_an_installed_package_pings_under_its_project_name_and_its_opt_out_works(tmp_path, collector):
    """End to end: init a namespace src layout, install it (dist-info), import it in children."""
    root = tmp_path / "proj"
    package = namespace_project(root, '[project]\nname = "Acme.Tools_Widgets"\n')
    assert init(str(package), "--endpoint", collector.url + "/t/{package}/{version}").returncode == 0
    site = root / "src"
    info = site / "acme_tools_widgets-3.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: Acme.Tools_Widgets\nVersion: 3.0\n")
    (info / "RECORD").write_text("acme/tools/widgets/__init__.py,,\n")
    env = child_env(site)
    child = run_child("import acme.tools.widgets", env)
    assert (child.returncode, child.stderr) == (0, ""), child
    assert [r.path for r in collector.expect(1)] == ["/t/acme-tools-widgets/3.0"]
    # The variable the comment names turns it off.
    off = run_child("import acme.tools.widgets", {**env, "ACME_TOOLS_WIDGETS_NO_ANALYTICS": "1"})
    assert (off.returncode, off.stderr) == (0, ""), off
    assert len(collector.settle(1.5)) == 1
