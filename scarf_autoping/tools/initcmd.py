"""``scarf-autoping init``: add the ``autoping`` call to a package and write its notice.

**The name.** Unless ``--package`` is given, the distribution name is read statically
(nothing is executed) from the project that holds ``PACKAGE_DIR``: PEP 621
``[project] name``, then ``[tool.poetry] name`` in ``pyproject.toml``, then
``[metadata] name`` in ``setup.cfg``, then the ``name=`` of ``setup()`` in ``setup.py``
(read with :mod:`ast`). The project root is the first directory above ``PACKAGE_DIR``
with one of those files, or the repository root (``.git``/``.hg``), at any depth (a
namespace package in ``src/acme/tools/widgets`` finds ``pyproject.toml`` four levels up).
When the name cannot be told, ``init`` stops and asks for ``--package``.

**The code.** Three lines (more when long lines are wrapped) go after the module's
top-level imports, so a package that passes ``ruff check --select E,F,W,I`` and
``ruff format --check`` still does (no import to sort, no import after a statement,
formatted as the formatter would, at the project's ``line-length``)::

    # Anonymous adoption ping (scarf-autoping, see TELEMETRY.md).
    # Opt out: DO_NOT_TRACK=1 or ACME_WIDGETS_NO_ANALYTICS=1.
    __import__("scarf_autoping").autoping("acme-widgets", "https://...")

Every other byte of the file is kept, including its encoding and line endings. Running
it again with the same arguments changes nothing; with another endpoint or name it
updates the call (and a notice it generated) and says what changed.

**The notice.** ``TELEMETRY.md`` goes to the project root: what is collected, where it
goes and how to opt out, rendered from the text template shipped in
``scarf_autoping/templates`` (or the checkout's top-level ``templates/`` when running
from an editable install, which does not get hatch's force-include).
"""

from __future__ import annotations

import ast
import configparser
import difflib
import io
import os
import re
import string
import sys
import tempfile
import textwrap
import tokenize
from pathlib import Path
from urllib.parse import urlsplit

from .. import check_arguments, policy
from ..template import variable_names

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

NOTICE_TEMPLATE = "TELEMETRY.md.tmpl"
NOTICE_NAME = "TELEMETRY.md"
PROJECT_FILES = ("pyproject.toml", "setup.cfg", "setup.py")
#: A directory holding one of these is a repository root: the search for the project stops there.
REPOSITORY_MARKERS = (".git", ".hg")
#: The formatter's default line length (ruff and black) when the project sets none.
DEFAULT_LINE_LENGTH = 88
#: The first line of the comment above the call; ``init`` recognises its own code by it.
COMMENT_MARK = "# Anonymous adoption ping (scarf-autoping, see TELEMETRY.md)."

#: What each built-in variable tells the maintainers, for the notice.
DESCRIPTIONS = {
    "package": "the package name",
    "version": "the installed version of the package",
    "os": "the operating system name (e.g. `Linux`, `Darwin`, `Windows`)",
    "platform": "the platform (`linux`, `macos`, `windows`, ...)",
    "os_version": "the kernel release (the macOS version on macOS)",
    "python": "the Python version (e.g. `3.12.3`)",
    "python_minor": "the Python version without its patch level (e.g. `3.12`)",
    "python_implementation": "the Python implementation (e.g. `CPython`)",
    "free_threaded": "whether Python is a free-threaded build (`true`/`false`)",
    "arch": "the CPU architecture (e.g. `x86_64`, `arm64`)",
    "machine": "the CPU architecture as the operating system names it (e.g. `x86_64`, `AMD64`)",
    "libc": "the C library (`glibc`, `musl` or `unknown`)",
    "libc_version": "the C library's version (e.g. `2.36`)",
    "distro": "the Linux distribution (e.g. `ubuntu`)",
    "distro_version": "the Linux distribution's version (e.g. `24.04`)",
    "container": "the kind of container it runs in, if any (`docker`, `podman`, `kubernetes`, `wsl` or `none`; "
                 "never its name or ID)",
    "interface": "how Python runs: a Jupyter notebook, an interactive prompt or a script "
                 "(`jupyter`, `interactive`, `script`)",
    "ci": "whether it runs in continuous integration (`true`/`false`)",
    "autoping_version": "the version of scarf-autoping",
    "first_run": "whether this is the first ping of this version of the package from this environment "
                 "(`true`/`false`; remembered on this machine, in the state directory, never as an ID)",
}


class InitError(Exception):
    """``init`` cannot proceed; the message says why and nothing was changed.

    ``code`` is the command line's exit code: 2 when an argument is missing or wrong
    (the name cannot be told: pass ``--package``), 1 for a failure.
    """

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class Style:
    """How the project's formatter writes code: line length and preferred quote."""

    def __init__(self, line_length: int = DEFAULT_LINE_LENGTH, quote: str = '"') -> None:
        self.line_length = line_length
        self.quote = quote


class InitResult:
    """What ``init`` did: the files, whether and how each changed, and the code added.

    Attributes:
        init_status: ``added``, ``updated`` (another endpoint or name) or ``unchanged``.
        notice_status: ``written``, ``updated`` (it was the notice generated for the
            previous call), ``unchanged`` or ``kept`` (an existing notice that differs and
            was not generated by ``init`` is never overwritten).
        previous: ``(package, template)`` of the call that was replaced, or None.
        diffs: unified diffs of the files that were updated (each a list of lines).
        declared: the name the project declares, when ``--package`` gave another one.
    """

    def __init__(self, init_path: Path, init_status: str, lines: list[str], notice_path: Path,
                 notice_status: str, package: str, previous: tuple[str, str] | None = None,
                 diffs: list[list[str]] | None = None, declared: str | None = None,
                 root: Path | None = None) -> None:
        self.init_path = init_path
        self.init_status = init_status
        self.lines = lines
        self.notice_path = notice_path
        self.notice_status = notice_status
        self.package = package
        self.previous = previous
        self.diffs = diffs or []
        self.declared = declared
        self.root = root

    @property
    def init_changed(self) -> bool:
        """True when ``__init__.py`` was written."""
        return self.init_status != "unchanged"

    @property
    def line(self) -> str:
        """The code added (comment and call), one string."""
        return "\n".join(self.lines)


def read_template(name: str) -> str:
    """The text of ``templates/<name>``: from the installed package, else from the checkout."""
    try:
        from importlib.resources import files

        resource = files("scarf_autoping").joinpath("templates").joinpath(name)
        if resource.is_file():
            return resource.read_text(encoding="utf-8")
    except (ImportError, OSError, TypeError, ValueError):
        pass
    checkout = Path(__file__).resolve().parents[2] / "templates" / name
    try:
        return checkout.read_text(encoding="utf-8")
    except OSError:
        raise InitError(f"the text template {name!r} is missing from this installation of scarf-autoping") from None


def _literal(text: str, quote: str) -> str:
    """``text`` as a Python string literal in the formatter's preferred quotes (``repr`` otherwise)."""
    literal = repr(text)
    other = "'" if quote == '"' else '"'
    if literal.startswith(other) and quote not in text:
        literal = quote + literal[1:-1].replace("\\" + other, other) + quote
    return literal


def code_lines(package: str, template: str, style: Style | None = None) -> list[str]:
    """The comment and the call for ``__init__.py``, formatted as ruff/black format them."""
    style = style or Style()
    width = style.line_length
    opt_out = f"Opt out: DO_NOT_TRACK=1 or {policy.package_variable(package)}=1."
    comment = [COMMENT_MARK, *textwrap.wrap(opt_out, max(20, width - 2), break_long_words=False,
                                              break_on_hyphens=False, initial_indent="# ", subsequent_indent="# ")]
    head = f"__import__({_literal('scarf_autoping', style.quote)}).autoping("
    args = [_literal(package, style.quote), _literal(template, style.quote)]
    one_line = head + ", ".join(args) + ")"
    if len(one_line) <= width:
        return [*comment, one_line]
    hugged = "    " + ", ".join(args)
    if len(hugged) <= width:
        return [*comment, head, hugged, ")"]
    return [*comment, head, *(f"    {arg}," for arg in args), ")"]


def autoping_line(package: str, template: str) -> str:
    """The call alone on one line (for showing it; ``init`` writes :func:`code_lines`)."""
    return f"__import__('scarf_autoping').autoping({package!r}, {template!r})"


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


# --------------------------------------------------------------------------
# The project: its root, its declared name and its formatter settings
# --------------------------------------------------------------------------


def project_root(package_dir: Path) -> Path | None:
    """The first directory above ``package_dir`` with a project file, else the repository root.

    None when neither is found up to the file system's root.
    """
    for parent in package_dir.resolve().parents:
        if any((parent / name).is_file() for name in PROJECT_FILES):
            return parent
        if any((parent / marker).exists() for marker in REPOSITORY_MARKERS):
            return parent
    return None


def _read_toml(path: Path) -> dict[str, object] | None:
    """A TOML file as a dict (``tomllib``; on Python < 3.11 a reader of simple ``key = value`` lines)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if sys.version_info >= (3, 11):
        import tomllib

        try:
            return tomllib.loads(text)
        except ValueError:  # not valid TOML: read what the simple reader can
            pass
    return _simple_toml(text)


def _simple_toml(text: str) -> dict[str, Any]:
    """``[a.b]`` tables and ``key = "string" | integer`` lines; everything else is skipped."""
    data: dict[str, Any] = {}
    table = data
    for raw in text.splitlines():
        line = raw.strip()
        header = re.match(r"^\[([A-Za-z0-9_.\-\s\"]+)\]\s*(?:#.*)?$", line)
        if header:
            table = data
            for key in (k.strip().strip('"') for k in header.group(1).split(".")):
                table = table.setdefault(key, {})
            continue
        found = re.match(r"^([A-Za-z0-9_\-]+)\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|(-?\d+))\s*(?:#.*)?$", line)
        if found:
            key, double, single, number = found.groups()
            table[key] = int(number) if number is not None else double if double is not None else single
    return data


def _dig(data: object, *keys: str) -> object:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _setup_py_name(path: Path) -> str | None:
    """The literal ``name=`` of the ``setup()`` call in ``setup.py`` (never executed).

    A name given as a module-level constant (``NAME = "acme"; setup(name=NAME)``) is
    followed; anything computed is not (None).
    """
    try:
        tree = ast.parse(path.read_bytes())
    except (OSError, SyntaxError, ValueError):
        return None
    constants: dict[str, str] = {}
    for statement in tree.body:
        if (isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Constant)
                and isinstance(statement.value.value, str)):
            for target in statement.targets:
                if isinstance(target, ast.Name):
                    constants[target.id] = statement.value.value
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
        if called != "setup":
            continue
        for keyword in node.keywords:
            if keyword.arg != "name":
                continue
            value = keyword.value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                return value.value.strip() or None
            if isinstance(value, ast.Name):
                return constants.get(value.id)
    return None


def _setup_cfg_name(path: Path) -> str | None:
    parser = configparser.RawConfigParser()
    try:
        parser.read(path, encoding="utf-8")
        return parser.get("metadata", "name").strip() or None
    except (configparser.Error, OSError, UnicodeDecodeError):
        return None


def declared_name(root: Path | None) -> str | None:
    """The distribution name ``root`` declares, read without executing anything, or None.

    In this order: PEP 621 ``[project] name``, ``[tool.poetry] name``, ``setup.cfg``'s
    ``[metadata] name``, ``setup.py``'s ``setup(name=...)``.
    """
    if root is None:
        return None
    pyproject = _read_toml(root / "pyproject.toml") if (root / "pyproject.toml").is_file() else None
    for keys in (("project", "name"), ("tool", "poetry", "name")):
        value = _dig(pyproject, *keys)
        if isinstance(value, str) and value.strip():
            return value.strip()
    if (root / "setup.cfg").is_file():
        found = _setup_cfg_name(root / "setup.cfg")
        if found:
            return found
    if (root / "setup.py").is_file():
        return _setup_py_name(root / "setup.py")
    return None


def project_style(root: Path | None) -> Style:
    """The formatter's line length and quote style: ``ruff.toml``, ``.ruff.toml``, then
    ``[tool.ruff]`` and ``[tool.black]`` in ``pyproject.toml``; 88 and double quotes by default."""
    style = Style()
    if root is None:
        return style
    sources: list[tuple[dict[str, object] | None, tuple[str, ...]]]
    sources = [(_read_toml(root / name), ()) for name in ("ruff.toml", ".ruff.toml") if (root / name).is_file()]
    if (root / "pyproject.toml").is_file():
        pyproject = _read_toml(root / "pyproject.toml")
        sources += [(pyproject, ("tool", "ruff")), (pyproject, ("tool", "black"))]
    for data, prefix in sources:
        length = _dig(data, *prefix, "line-length")
        if isinstance(length, int) and not isinstance(length, bool) and 20 <= length <= 1000:
            style.line_length = length
            if prefix != ("tool", "black"):
                quote = _dig(data, *prefix, "format", "quote-style")
                style.quote = "'" if quote == "single" else '"'
            return style
        quote = _dig(data, *prefix, "format", "quote-style")
        if quote == "single":
            style.quote = "'"
    return style


# --------------------------------------------------------------------------
# Editing __init__.py
# --------------------------------------------------------------------------

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")
_COMPOUND = (ast.If, ast.Try, ast.With, ast.AsyncWith) + ((ast.Match,) if hasattr(ast, "Match") else ()) + (
    (ast.TryStar,) if hasattr(ast, "TryStar") else ())


class _Source:
    """A module's text as lines (with their endings), its encoding and BOM, and its syntax tree."""

    def __init__(self, source: bytes) -> None:
        try:
            self.encoding, _ = tokenize.detect_encoding(io.BytesIO(source).readline)
            self.bom = b"\xef\xbb\xbf" if source.startswith(b"\xef\xbb\xbf") else b""
            text = source[len(self.bom):].decode(self.encoding)
            self.tree = ast.parse(text)
        except (SyntaxError, UnicodeDecodeError, LookupError, ValueError) as exc:
            raise InitError(f"cannot parse it as Python: {exc}") from None
        self.lines = _LINE.findall(text)
        if self.encode(self.lines) != source:  # pragma: no cover - a codec that does not round-trip
            raise InitError(f"its encoding ({self.encoding}) cannot be written back byte for byte; add the call by hand")
        first = self.lines[0] if self.lines else "\n"
        self.newline = "\r\n" if first.endswith("\r\n") else "\r" if first.endswith("\r") else "\n"

    def encode(self, lines: list[str]) -> bytes:
        encoding = "utf-8" if self.encoding == "utf-8-sig" else self.encoding
        try:
            return self.bom + "".join(lines).encode(encoding)
        except UnicodeEncodeError:
            raise InitError(f"the call cannot be written in the file's encoding ({self.encoding})") from None


def _is_ours(node: ast.stmt) -> tuple[str, str] | None:
    """``(package, template)`` when ``node`` is ``__import__("scarf_autoping").autoping(p, t)``."""
    if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)):
        return None
    call = node.value
    func = call.func
    if not (isinstance(func, ast.Attribute) and func.attr == "autoping" and isinstance(func.value, ast.Call)):
        return None
    inner = func.value
    if not (isinstance(inner.func, ast.Name) and inner.func.id == "__import__" and len(inner.args) == 1
            and isinstance(inner.args[0], ast.Constant) and inner.args[0].value == "scarf_autoping"):
        return None
    return _string_args(call)


def _string_args(call: ast.Call) -> tuple[str, str] | None:
    if len(call.args) != 2 or call.keywords:
        return None
    first, second = call.args
    if (isinstance(first, ast.Constant) and isinstance(first.value, str)
            and isinstance(second, ast.Constant) and isinstance(second.value, str)):
        return first.value, second.value
    return None


def _legacy(tree: ast.Module, lines: list[str]) -> tuple[int, tuple[str, str]] | None:
    """The one-line form earlier versions of ``init`` wrote:
    ``from scarf_autoping import autoping; autoping(p, t)  # ...``: ``(line index, (p, t))``."""
    body = tree.body
    for first, second in zip(body, body[1:]):
        if (isinstance(first, ast.ImportFrom) and first.module == "scarf_autoping"
                and [a.name for a in first.names] == ["autoping"] and first.names[0].asname is None
                and isinstance(second, ast.Expr) and isinstance(second.value, ast.Call)
                and isinstance(second.value.func, ast.Name) and second.value.func.id == "autoping"
                and first.lineno == first.end_lineno == second.lineno == second.end_lineno):
            args = _string_args(second.value)
            if args is not None:
                return first.lineno - 1, args
    return None


def _uses_autoping(tree: ast.Module) -> int | None:
    """The line of any other use of ``scarf_autoping`` in the module, if there is one."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "scarf_autoping":
            return node.lineno
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "scarf_autoping" for a in node.names):
            return node.lineno
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "__import__"
                and node.args and isinstance(node.args[0], ast.Constant) and node.args[0].value == "scarf_autoping"):
            return node.lineno
    return None


def _has_import(node: ast.stmt) -> bool:
    return any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in ast.walk(node))


def _before_imports_allowed(node: ast.stmt) -> bool:
    """Statements after which an import is still "at the top" (pycodestyle/ruff E402):
    ``__dunder__`` assignments, ``sys.path``/``os.environ`` changes, ``if``/``try``/``with`` blocks."""
    if isinstance(node, _COMPOUND):
        return True
    if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if all(isinstance(t, ast.Name) and t.id.startswith("__") and t.id.endswith("__") for t in targets):
            return True
        return any(ast.unparse(t).startswith("os.environ") for t in targets)
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        called = ast.unparse(node.value.func)
        return called.startswith(("sys.path.", "os.environ."))
    return False


def _anchor(tree: ast.Module) -> tuple[int, ast.stmt | None]:
    """Where the code goes: after the line returned (0: the top), and the statement after it.

    After the last top-level import (or ``if``/``try`` block holding one) that comes before
    the first statement an import may not follow; with no import, after the docstring and
    ``__future__`` imports.
    """
    after = 0
    body = tree.body
    index = 0
    while index < len(body):
        node = body[index]
        is_docstring = (index == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
                        and isinstance(node.value.value, str))
        if not (is_docstring or (isinstance(node, ast.ImportFrom) and node.module == "__future__")):
            break
        after = node.end_lineno or node.lineno
        index += 1
    anchor_index = index - 1
    for position in range(index, len(body)):
        node = body[position]
        if isinstance(node, (ast.Import, ast.ImportFrom)) or (isinstance(node, _COMPOUND) and _has_import(node)):
            after = node.end_lineno or node.lineno
            anchor_index = position
        elif not _before_imports_allowed(node):
            break
    following = body[anchor_index + 1] if anchor_index + 1 < len(body) else None
    return after, following


def _insert(lines: list[str], block: list[str], tree: ast.Module, newline: str) -> list[str]:
    """``lines`` with ``block`` (lines without endings) inserted where :func:`_anchor` says."""
    after, following = _anchor(tree)
    if after == 0:  # keep a shebang, coding cookie or licence header on top
        while after < len(lines):
            stripped = lines[after].strip()
            # The first two lines may be blank: a coding cookie on line 2 must stay there.
            if not (stripped.startswith("#") or (after < 2 and not stripped)):
                break
            after += 1
    head = list(lines[:after])
    tail = list(lines[after:])
    if head and not head[-1].endswith(("\n", "\r")):
        head[-1] += newline
    added = [line + newline for line in block]
    if head and head[-1].strip():
        added.insert(0, newline)  # one blank line before: after imports, a docstring or a header
    blank_after = 0
    while blank_after < len(tail) and not tail[blank_after].strip():
        blank_after += 1
    if blank_after < len(tail):  # code follows: a function or class needs two blank lines before it
        wanted = 2 if isinstance(following, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else 1
        added += [newline] * max(0, wanted - blank_after)
    return head + added + tail


def _replace(lines: list[str], node: ast.stmt, block: list[str], newline: str) -> list[str]:
    """``lines`` with the call ``node`` (and the comment ``init`` put above it) replaced by ``block``."""
    start = node.lineno - 1
    end = node.end_lineno or node.lineno
    top = start
    while top > 0 and lines[top - 1].lstrip().startswith("#"):
        top -= 1
        if lines[top].strip() == COMMENT_MARK:
            start = top
            break
    ending = lines[end - 1][len(lines[end - 1].rstrip("\r\n")):] or newline
    replaced = [line + newline for line in block[:-1]] + [block[-1] + ending]
    return lines[:start] + replaced + lines[end:]


def edit_source(source: bytes, package: str, template: str,
                style: Style | None = None) -> tuple[bytes | None, tuple[str, str] | None]:
    """``source`` with the ``autoping`` call added or updated; and the call it replaced.

    Returns ``(None, previous)`` when the file already has exactly this code. Raises
    :class:`InitError` when the file cannot be parsed, or calls ``scarf_autoping`` in a
    form ``init`` did not write (that is the author's code: edit it by hand).
    """
    parsed = _Source(source)
    block = code_lines(package, template, style)
    tree, lines = parsed.tree, parsed.lines
    previous: tuple[str, str] | None = None
    ours = [(node, args) for node in tree.body if (args := _is_ours(node)) is not None]
    legacy = _legacy(tree, lines)
    if ours:
        node, previous = ours[0]
        result = _replace(lines, node, block, parsed.newline)
    elif legacy is not None:
        index, previous = legacy
        without = lines[:index] + lines[index + 1:]
        result = _insert(without, block, ast.parse("".join(without)), parsed.newline)
    else:
        existing = _uses_autoping(tree)
        if existing is not None:
            raise InitError(f"it already uses scarf_autoping (line {existing}) in a form init did not write; "
                            f"edit that line by hand to call autoping({package!r}, {template!r})")
        result = _insert(lines, block, tree, parsed.newline)
    if result == lines:
        return None, previous
    data = parsed.encode(result)
    # A safety net: never write a file Python would read differently (lost cookie) or not at all.
    try:
        same_encoding = tokenize.detect_encoding(io.BytesIO(data).readline)[0] == parsed.encoding
        ast.parse(data)
    except (SyntaxError, UnicodeDecodeError, LookupError, ValueError) as exc:  # pragma: no cover
        raise InitError(f"adding the call would break the file ({exc}); add it by hand") from None
    if not same_encoding:  # pragma: no cover
        raise InitError("adding the call would change the file's encoding declaration; add it by hand")
    return data, previous


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


def notice_path(package_dir: Path, notice: str | Path | None, root: Path | None = None) -> Path:
    """Where the notice goes: ``notice`` (a file, or a directory to put it in), the project
    root, or (no project found) the package directory's parent."""
    if notice is not None:
        path = Path(notice)
        return path / NOTICE_NAME if path.is_dir() else path
    if root is None:
        root = project_root(package_dir)
    return (root if root is not None else package_dir.resolve().parent) / NOTICE_NAME


def _diff(path: Path, old: bytes, new: bytes) -> list[str]:
    before = old.decode("utf-8", "replace").splitlines()
    after = new.decode("utf-8", "replace").splitlines()
    return [line for line in difflib.unified_diff(before, after, str(path), str(path), n=0, lineterm="")]


def choose_name(directory: Path, package: str | None, root: Path | None) -> tuple[str, str | None]:
    """The normalised distribution name to use, and the declared one when ``--package`` differs."""
    declared = declared_name(root)
    if package is not None:
        name = policy.normalize(package)
        other = policy.normalize(declared) if declared else None
        return name, declared if other and other != name else None
    if declared:
        return policy.normalize(declared), None
    where = (f"no name in {', '.join(f for f in PROJECT_FILES if (root / f).is_file()) or 'a project file'} "
             f"at {str(root)!r}") if root is not None else "no pyproject.toml, setup.cfg or setup.py above it"
    raise InitError(f"cannot tell the distribution name of {str(directory)!r} ({where}); "
                    "pass it with --package NAME (the name you publish on PyPI)", 2)


def init_package(package_dir: str | Path, template: str, package: str | None = None,
                 notice: str | Path | None = None) -> InitResult:
    """Add (or update) the ``autoping`` call in ``package_dir/__init__.py`` and write the notice.

    The template and package name are validated before anything is touched.
    """
    directory = Path(package_dir)
    if not directory.is_dir():
        raise InitError(f"{str(directory)!r} is not a directory")
    init = directory / "__init__.py"
    if not init.is_file():
        raise InitError(f"{str(init)!r} does not exist: PACKAGE_DIR must be a package directory")
    check_arguments(package if package is not None else "x", template, None, None, 3.0, 1.0)
    root = project_root(directory)
    name, declared = choose_name(directory, package, root)
    check_arguments(name, template, None, None, 3.0, 1.0)

    try:
        source = init.read_bytes()
    except OSError as exc:
        raise InitError(f"cannot read {str(init)!r}: {exc.strerror}") from None
    try:
        updated, previous = edit_source(source, name, template, project_style(root))
    except InitError as exc:
        raise InitError(f"{str(init)!r}: {exc}", exc.code) from None

    target = notice_path(directory, notice, root)
    text = render_notice(name, template).encode("utf-8")
    try:
        existing = target.read_bytes() if target.is_file() else None
    except OSError as exc:
        raise InitError(f"cannot read {str(target)!r}: {exc.strerror}") from None
    if existing is None:
        status = "written"
    elif existing == text:
        status = "unchanged"
    elif previous is not None and existing == render_notice(*previous).encode("utf-8"):
        status = "updated"  # the notice init generated for the call it replaces
    else:
        status = "kept"
    diffs = []
    if updated is not None and previous is not None:
        diffs.append(_diff(init, source, updated))
    if status == "updated":
        diffs.append(_diff(target, existing or b"", text))
    # Both files or neither: the notice first, then __init__.py; if that fails, the notice
    # just written is put back as it was. A symlinked file is written through its link.
    written: Path | None = None
    try:
        if status in ("written", "updated"):
            target.parent.mkdir(parents=True, exist_ok=True)
            written = target.resolve()
            _write_atomic(written, text)
        if updated is not None:
            _write_atomic(init.resolve(), updated)
    except OSError as exc:
        if written is not None and updated is not None:
            try:
                if existing is None:
                    written.unlink()
                else:
                    _write_atomic(written, existing)
            except OSError:
                pass
        raise InitError(f"cannot write {exc.filename or init}: {exc.strerror}; nothing was changed") from None
    init_status = "unchanged" if updated is None else "updated" if previous is not None else "added"
    return InitResult(init, init_status, code_lines(name, template, project_style(root)), target, status, name,
                      previous if updated is not None else None, diffs, declared, root)
