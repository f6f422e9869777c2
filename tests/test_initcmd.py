"""Pure-function checks of ``scarf_autoping.initcmd`` (no files, no processes)."""

from __future__ import annotations

from scarf_autoping.facts import BUILTIN_NAMES
from scarf_autoping.initcmd import DESCRIPTIONS, render_notice


def test_every_builtin_variable_has_a_notice_description_and_nothing_else_does():
    assert set(DESCRIPTIONS) == set(BUILTIN_NAMES)


def test_the_notice_describes_each_variable_of_the_template():
    text = render_notice("p", "https://x.gateway.scarf.sh/t/{package}/{version}{?python,arch}")
    for name in ("package", "version", "python", "arch"):
        assert f"- `{name}`: {DESCRIPTIONS[name]}" in text


def test_a_failed_init_py_write_removes_the_notice_it_just_wrote(tmp_path, monkeypatch):
    """Both files or neither (the CLI test of this is skipped as root, who can write anywhere)."""
    import pytest

    from scarf_autoping import initcmd

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
        initcmd.init_package(package, "http://127.0.0.1:9/{package}")
    assert not (tmp_path / "TELEMETRY.md").exists()
    assert (package / "__init__.py").read_bytes() == b'"""doc"""\n'


def test_a_bom_only_file_gets_the_line_after_the_bom():
    from scarf_autoping.initcmd import insert_line

    assert insert_line(b"\xef\xbb\xbf", "X = 1") == b"\xef\xbb\xbfX = 1\n"
