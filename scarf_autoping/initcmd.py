"""``scarf-autoping init``: add the one ``autoping`` line to a package and write its notice.

The line goes after the module docstring and any ``from __future__`` imports of
``PACKAGE_DIR/__init__.py`` (after a leading comment block when there are neither);
every other byte of the file is kept, including its encoding and line endings. Running
it again changes nothing. The ``TELEMETRY.md`` notice says what is collected, where it
goes and how to opt out; it is rendered from the text templates shipped in
``scarf_autoping/templates`` (or the checkout's top-level ``templates/`` when running
from an editable install, which does not get hatch's force-include).
"""

from __future__ import annotations

import ast
import io
import os
import re
import string
import tempfile
import tokenize
from pathlib import Path
from urllib.parse import urlsplit

from . import _check_arguments, policy
from .template import variable_names

LINE_TEMPLATE = "init_line.py.tmpl"
NOTICE_TEMPLATE = "TELEMETRY.md.tmpl"
NOTICE_NAME = "TELEMETRY.md"
PROJECT_FILES = ("pyproject.toml", "setup.cfg", "setup.py")

#: What each built-in variable tells the maintainers, for the notice.
DESCRIPTIONS = {
    "package": "the package name",
    "version": "the installed version of the package",
    "os": "the operating system name (e.g. `Linux`, `Darwin`, `Windows`)",
    "platform": "the platform (`linux`, `macos`, `windows`, ...)",
    "os_version": "the kernel release (the macOS version on macOS)",
    "python": "the Python version (e.g. `3.12.3`)",
    "python_implementation": "the Python implementation (e.g. `CPython`)",
    "arch": "the CPU architecture (e.g. `x86_64`, `arm64`)",
    "distro": "the Linux distribution (e.g. `ubuntu`)",
    "distro_version": "the Linux distribution's version (e.g. `24.04`)",
    "ci": "whether it runs in continuous integration (`true`/`false`)",
    "autoping_version": "the version of scarf-autoping",
}


class InitError(Exception):
    """``init`` cannot proceed; the message says why and nothing was changed."""


class InitResult:
    """What ``init`` did: the files, whether each changed, and the line."""

    def __init__(self, init_path: Path, init_changed: bool, line: str, notice_path: Path, notice_status: str,
                 package: str) -> None:
        self.init_path = init_path
        self.init_changed = init_changed
        self.line = line
        self.notice_path = notice_path
        #: ``written``, ``unchanged`` or ``kept`` (an existing, different notice is never overwritten).
        self.notice_status = notice_status
        self.package = package


def read_template(name: str) -> str:
    """The text of ``templates/<name>``: from the installed package, else from the checkout."""
    try:
        from importlib.resources import files

        resource = files("scarf_autoping").joinpath("templates").joinpath(name)
        if resource.is_file():
            return resource.read_text(encoding="utf-8")
    except (ImportError, OSError, TypeError, ValueError):
        pass
    checkout = Path(__file__).resolve().parent.parent / "templates" / name
    try:
        return checkout.read_text(encoding="utf-8")
    except OSError:
        raise InitError(f"the text template {name!r} is missing from this installation of scarf-autoping") from None


def autoping_line(package: str, template: str) -> str:
    """The one line for ``__init__.py`` (without its line ending)."""
    text = read_template(LINE_TEMPLATE).strip("\r\n")
    return string.Template(text).substitute(package=repr(package), template=repr(template))


def render_notice(package: str, template: str) -> str:
    """The ``TELEMETRY.md`` text for ``package`` pinging ``template``."""
    names = variable_names(template)
    bullets = "\n".join(f"- `{n}`: {DESCRIPTIONS.get(n, 'a value set by the maintainers')}" for n in names)
    host = urlsplit(template.split("{", 1)[0]).hostname or template
    where = ""
    if host == "scarf.sh" or host.endswith(".scarf.sh"):
        where = (", a [Scarf](https://scarf.sh) gateway; Scarf does not give your IP address to the "
                 "maintainers")
    text = string.Template(read_template(NOTICE_TEMPLATE)).substitute(
        package=package,
        template=template,
        variables=bullets or "- (none: the address itself is the ping)",
        host=host,
        where_note=where,
        package_variable=policy.package_variable(package),
        ci_variables=", ".join(f"`{n}`" for n in policy.CI_VARIABLES),
    )
    return text if text.endswith("\n") else text + "\n"


def project_root(package_dir: Path) -> Path | None:
    """The nearest parent (at most three levels up) holding pyproject.toml, setup.cfg or setup.py."""
    for parent in list(package_dir.resolve().parents)[:3]:
        if any((parent / name).is_file() for name in PROJECT_FILES):
            return parent
    return None


def project_name(root: Path | None) -> str | None:
    """The distribution name declared in ``root``'s pyproject.toml or setup.cfg, if any."""
    if root is None:
        return None
    for name, section in (("pyproject.toml", "project"), ("setup.cfg", "metadata")):
        try:
            text = (root / name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        found = _ini_like_value(text, section, "name")
        if found:
            return found
    return None


def _ini_like_value(text: str, section: str, key: str) -> str | None:
    """``key`` in ``[section]`` of a TOML or INI file (the simple ``key = "value"`` form only)."""
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("["):
            current = line.strip("[] \t")
            continue
        if current == section:
            found = re.match(rf"{key}\s*[=:]\s*(.+)$", line)
            if found:
                value = found.group(1).split("#")[0].strip().strip("'\"").strip()
                return value or None
    return None


def insert_line(source: bytes, line: str) -> bytes | None:
    """``source`` with ``line`` added after its docstring and ``__future__`` imports.

    Returns None when the exact line is already there. Raises :class:`InitError` when the
    file cannot be parsed or already calls ``autoping`` some other way.
    """
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(source).readline)
        text = source.decode(encoding)
        tree = ast.parse(text)
    except (SyntaxError, UnicodeDecodeError, LookupError) as exc:
        raise InitError(f"cannot parse it as Python: {exc}") from None
    lines = source.splitlines(keepends=True)
    bom = b"\xef\xbb\xbf" if source.startswith(b"\xef\xbb\xbf") else b""
    if bom:  # the BOM stays the file's first bytes, even when the line goes on line 1
        lines[0] = lines[0][len(bom):]
        if not lines[0]:
            del lines[0]
    if any(raw.rstrip(b"\r\n").decode(encoding, "replace").strip() == line for raw in lines):
        return None
    existing = _existing_autoping(tree)
    if existing is not None:
        raise InitError(f"it already uses scarf_autoping (line {existing}); edit that line by hand instead")

    after = 0
    for index, node in enumerate(tree.body):
        is_docstring = (index == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
                        and isinstance(node.value.value, str))
        is_future = isinstance(node, ast.ImportFrom) and node.module == "__future__"
        if not (is_docstring or is_future):
            break
        after = node.end_lineno or node.lineno
    if after == 0:  # keep a shebang, coding cookie or licence header on top
        while after < len(lines):
            stripped = lines[after].strip()
            # The first two lines may be blank: a coding cookie on line 2 must stay there.
            if not (stripped.startswith(b"#") or (after < 2 and not stripped)):
                break
            after += 1

    newline = b"\r\n" if lines and lines[0].endswith(b"\r\n") else b"\n"
    try:
        # utf-8-sig would put a second BOM in front of the line: the file's BOM is kept as is.
        added = line.encode("utf-8" if encoding == "utf-8-sig" else encoding) + newline
    except UnicodeEncodeError:
        raise InitError(f"the line cannot be written in the file's encoding ({encoding})") from None
    head = lines[:after]
    if head and not head[-1].endswith((b"\n", b"\r")):
        head[-1] += newline
    result = bom + b"".join([*head, added, *lines[after:]])
    # A safety net: never write a file Python would read differently (lost cookie) or not at all.
    try:
        same_encoding = tokenize.detect_encoding(io.BytesIO(result).readline)[0] == encoding
        ast.parse(result)
    except (SyntaxError, UnicodeDecodeError, LookupError, ValueError) as exc:  # pragma: no cover
        raise InitError(f"adding the line would break the file ({exc}); add it by hand") from None
    if not same_encoding:  # pragma: no cover
        raise InitError("adding the line would change the file's encoding declaration; add it by hand")
    return result


def _existing_autoping(tree: ast.Module) -> int | None:
    """The line of an existing ``scarf_autoping`` import, if the module has one."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "scarf_autoping":
            return node.lineno
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "scarf_autoping" for a in node.names):
            return node.lineno
    return None


def _write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one step, keeping its permission bits (a new file
    gets the usual ``0o666`` minus the umask, not ``mkstemp``'s private ``0o600``)."""
    if path.exists():
        mode = path.stat().st_mode & 0o7777
    else:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=str(path.parent))
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def notice_path(package_dir: Path, notice: str | Path | None) -> Path:
    """Where the notice goes: ``notice`` (a file, or a directory to put it in), the project
    root, or the package directory's parent."""
    if notice is not None:
        path = Path(notice)
        return path / NOTICE_NAME if path.is_dir() else path
    root = project_root(package_dir)
    return (root if root is not None else package_dir.resolve().parent) / NOTICE_NAME


def init_package(package_dir: str | Path, template: str, package: str | None = None,
                 notice: str | Path | None = None) -> InitResult:
    """Add the ``autoping`` line to ``package_dir/__init__.py`` and write the notice.

    The template and package name are validated before anything is touched.
    """
    directory = Path(package_dir)
    if not directory.is_dir():
        raise InitError(f"{str(directory)!r} is not a directory")
    init = directory / "__init__.py"
    if not init.is_file():
        raise InitError(f"{str(init)!r} does not exist: PACKAGE_DIR must be a package directory")
    name = package or project_name(project_root(directory)) or directory.resolve().name
    _check_arguments(name, template, None, None, 3.0, 1.0)

    line = autoping_line(name, template)
    try:
        source = init.read_bytes()
    except OSError as exc:
        raise InitError(f"cannot read {str(init)!r}: {exc.strerror}") from None
    try:
        updated = insert_line(source, line)
    except InitError as exc:
        raise InitError(f"{str(init)!r}: {exc}") from None

    target = notice_path(directory, notice)
    text = render_notice(name, template).encode("utf-8")
    try:
        existing = target.read_bytes() if target.is_file() else None
    except OSError as exc:
        raise InitError(f"cannot read {str(target)!r}: {exc.strerror}") from None
    status = "written" if existing is None else "unchanged" if existing == text else "kept"
    # Both files or neither: the new notice first, then __init__.py; if that fails, the
    # notice just written is removed again. A symlinked file is written through its link.
    written: Path | None = None
    try:
        if status == "written":
            target.parent.mkdir(parents=True, exist_ok=True)
            written = target.resolve()
            _write_atomic(written, text)
        if updated is not None:
            _write_atomic(init.resolve(), updated)
    except OSError as exc:
        if written is not None and updated is not None:
            try:
                written.unlink()
            except OSError:
                pass
        raise InitError(f"cannot write {exc.filename or init}: {exc.strerror}; nothing was changed") from None
    return InitResult(init, updated is not None, line, target, status, name)
