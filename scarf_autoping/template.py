"""RFC 6570 URI Template expansion (all four levels), stdlib only.

A template such as ``"https://example.com/p{/name}{?version,os}"`` is parsed
once into a tuple of *parts*: literal strings (already validated and
percent-encoded where the RFC requires) and :class:`Expression` objects
(an operator plus its variable specifications).  The parse is cached, so
expanding the same template repeatedly only pays for the value encoding.

Public API:

* :func:`expand` -- expand a template with a mapping of variables.
* :func:`variable_names` -- the variable names a template uses.
* :class:`TemplateError` -- raised for malformed templates (a ``ValueError``).

The grammar follows RFC 6570 section 2 including verified erratum 6937
(``'`` is a legal literal character).  Values may be ``str``, ``int`` or
``float`` (stringified with ``str()``), ``list``/``tuple`` of those, or
mappings of those (expanded in iteration order).  ``None``, empty lists and
empty mappings are *undefined* and expand to nothing, as the RFC requires.

This module sits on a hot import path (it validates the author's template
while their package is being imported), so it uses plain string scanning
instead of ``re`` (whose import and compiles cost milliseconds in a fresh
interpreter), imports nothing at all at runtime (not even ``functools`` or
``collections.abc``, which pull in ``collections``: milliseconds for a host that
has opted out and never imports ``threading``).

On the host's import path: no ``from __future__ import annotations`` (importing
``__future__`` costs the host about 0.1 ms), so annotations that need it are strings.
"""

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - typing-only imports
    from collections.abc import Iterable, Mapping

    from typing_extensions import TypeGuard

__all__ = ["TemplateError", "expand", "reserved_names", "variable_names"]


class TemplateError(ValueError):
    """A URI template is malformed, or a value cannot be expanded by it.

    The message names what is wrong and where (offset and template), e.g.
    ``unclosed expression at offset 12 in template 'a{b'``.
    """


# --------------------------------------------------------------------------
# Character classes (RFC 3986 / RFC 3987 / RFC 6570 section 1.5 and 2)
# --------------------------------------------------------------------------

_UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
_RESERVED = ":/?#[]@" + "!$&'()*+,;="  # gen-delims + sub-delims

# Non-ASCII code points allowed in literals: ucschar and iprivate (RFC 3987).
_UCS_RANGES = (
    (0xA0, 0xD7FF), (0xE000, 0xF8FF), (0xF900, 0xFDCF), (0xFDF0, 0xFFEF),
    *((plane, plane + 0xFFFD) for plane in range(0x10000, 0xE0000, 0x10000)),
    (0xE1000, 0xEFFFD), (0xF0000, 0xFFFFD), (0x100000, 0x10FFFD),
)


def _is_ucschar(char: str) -> bool:
    """Return whether a non-ASCII character may appear in a literal."""
    code = ord(char)
    return any(lo <= code <= hi for lo, hi in _UCS_RANGES)


# RFC 6570 section 2.1 (with erratum 6937) allows in literals any character
# except CTL, SP, DQUOTE, "<", ">", "\\", "^", "`", "{", "|", "}" and a "%"
# that does not start a pct-encoded triplet.  Characters outside this
# always-allowed ASCII set are checked one by one ("%" and non-ASCII).
_LITERAL_OK = frozenset(
    "!#$&'()*+,-./0123456789:;=?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]_abcdefghijklmnopqrstuvwxyz~"
)
_HEXDIG = frozenset("0123456789ABCDEFabcdef")
# varchar = ALPHA / DIGIT / "_" / pct-encoded
_VARCHAR = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")


def _is_triplet(text: str, at: int) -> bool:
    """Whether ``text[at:at+3]`` is a pct-encoded triplet ``%XX``."""
    return (
        text[at:at + 1] == "%"
        and len(text) >= at + 3
        and text[at + 1] in _HEXDIG
        and text[at + 2] in _HEXDIG
    )


def _is_varname(name: str) -> bool:
    """varname = varchar *( ["."] varchar ); varchar may be a pct-encoded triplet."""
    if not name:
        return False
    for label in name.split("."):
        if not label:  # leading, trailing or doubled "."
            return False
        i = 0
        while i < len(label):
            if label[i] in _VARCHAR:
                i += 1
            elif _is_triplet(label, i):
                i += 3
            else:
                return False
    return True


def _is_max_length(text: str) -> bool:
    """max-length = %x31-39 0*3DIGIT  (1..9999, no leading zero)."""
    return 1 <= len(text) <= 4 and text.isascii() and text.isdigit() and text[0] != "0"


_TABLES: "dict[str, tuple[str, ...]]" = {}


def _byte_table(safe: str) -> "tuple[str, ...]":
    """Map each byte value to itself if in *safe*, else to its ``%XX`` form.

    Built on first use (by the background worker), not at import: this module is
    imported on the host's import path.
    """
    table = _TABLES.get(safe)
    if table is None:
        table = _TABLES[safe] = tuple(chr(b) if chr(b) in safe else f"%{b:02X}" for b in range(256))
    return table


_SAFE_U = _UNRESERVED
_SAFE_UR = _UNRESERVED + _RESERVED
_ONLY_U = frozenset(_SAFE_U)
_ONLY_UR = frozenset(_SAFE_UR)


def _pct_encode(text: str, safe: str) -> str:
    """Percent-encode the UTF-8 bytes of *text* that are not in *safe*."""
    table = _byte_table(safe)
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates
        raise TemplateError(f"value {text!r} cannot be encoded as UTF-8") from exc
    return "".join([table[b] for b in data])


def _encode(text: str, allow_reserved: bool) -> str:
    """Encode a value string for the U (unreserved) or U+R allowed set.

    With *allow_reserved* (operators ``+`` and ``#``), reserved characters
    and existing pct-encoded triplets pass through unchanged; a ``%`` that
    does not start a triplet is still encoded as ``%25``.
    """
    if allow_reserved:
        if _ONLY_UR.issuperset(text):
            return text
        # Existing pct-encoded triplets pass through; everything else is encoded.
        out = []
        start = i = 0
        while i < len(text):
            if _is_triplet(text, i):
                out.append(_pct_encode(text[start:i], _SAFE_UR))
                out.append(text[i:i + 3])
                i += 3
                start = i
            else:
                i += 1
        out.append(_pct_encode(text[start:], _SAFE_UR))
        return "".join(out)
    if _ONLY_U.issuperset(text):
        return text
    return _pct_encode(text, _SAFE_U)


def _encode_literal(text: str) -> str:
    """Copy a validated literal, pct-encoding its non-ASCII characters."""
    if text.isascii():
        return text
    return "".join(ch if ch.isascii() else _pct_encode(ch, _SAFE_U) for ch in text)


# --------------------------------------------------------------------------
# Parsed representation
# --------------------------------------------------------------------------


class _Operator:
    """Expansion behaviour of one operator (RFC 6570 appendix A table).

    first: string emitted before the first defined value.
    sep: separator between values.
    named: whether values are emitted as ``name=value`` pairs.
    ifemp: what follows the name when the value is the empty string.
    allow_reserved: whether reserved characters pass unencoded (U+R).
    """

    __slots__ = ("allow_reserved", "first", "ifemp", "named", "sep")

    def __init__(
        self, first: str, sep: str, named: bool, ifemp: str, allow_reserved: bool
    ) -> None:
        self.first = first
        self.sep = sep
        self.named = named
        self.ifemp = ifemp
        self.allow_reserved = allow_reserved


_OPERATORS: "dict[str, _Operator]" = {
    "": _Operator("", ",", False, "", False),    # simple string
    "+": _Operator("", ",", False, "", True),    # reserved
    "#": _Operator("#", ",", False, "", True),   # fragment
    ".": _Operator(".", ".", False, "", False),  # label
    "/": _Operator("/", "/", False, "", False),  # path segment
    ";": _Operator(";", ";", True, "", False),   # path-style parameter
    "?": _Operator("?", "&", True, "=", False),  # form-style query
    "&": _Operator("&", "&", True, "=", False),  # form-style continuation
}
# op-reserve: reserved by RFC 6570 for future extensions, always an error.
_RESERVED_OPERATORS = "=,!@|"


class _VarSpec:
    """One variable of an expression: name, optional prefix length, explode."""

    __slots__ = ("explode", "name", "prefix")

    def __init__(self, name: str, prefix: "int | None", explode: bool) -> None:
        self.name = name
        self.prefix = prefix
        self.explode = explode


class Expression:
    """A parsed ``{...}`` expression: an operator and its variable specs."""

    __slots__ = ("operator", "varspecs")

    def __init__(self, operator: "_Operator", varspecs: "tuple[_VarSpec, ...]") -> None:
        self.operator = operator
        self.varspecs = varspecs


# --------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------


def _fail(what: str, offset: int, template: str) -> "TemplateError":
    """Build a TemplateError locating *what* in *template*."""
    return TemplateError(f"{what} at offset {offset} in template {template!r}")


def _check_literal(template: str, start: int, end: int) -> str:
    """Validate ``template[start:end]`` as literal text and return it encoded."""
    text = template[start:end]
    for index, char in enumerate(text):
        if char in _LITERAL_OK:
            continue
        if char == "}":
            what = "unmatched '}'"
        elif char == "%":
            if _is_triplet(text, index):
                continue
            what = "'%' not followed by two hex digits"
        elif char > "\x7f" and _is_ucschar(char):
            continue
        else:
            what = f"character {char!r} not allowed in a template literal"
        raise _fail(what, start + index, template)
    return _encode_literal(text)


def _parse_varspec(spec: str, offset: int, template: str) -> "_VarSpec":
    """Parse ``varname [ ":" max-length / "*" ]``."""
    body, explode = (spec[:-1], True) if spec.endswith("*") else (spec, False)
    prefix = None
    if ":" in body:
        body, _, length = body.partition(":")
        if explode:
            raise _fail(
                f"prefix modifier and explode '*' cannot be combined in {spec!r}",
                offset, template,
            )
        if not _is_max_length(length):
            raise _fail(
                f"prefix modifier :n must be 1..9999 without leading zeros,"
                f" got {':' + length!r} in {spec!r}",
                offset, template,
            )
        prefix = int(length)
    if not _is_varname(body):
        raise _fail(f"invalid variable name {body!r}", offset, template)
    return _VarSpec(body, prefix, explode)


def _parse_expression(template: str, start: int, end: int) -> "Expression":
    """Parse the expression body ``template[start+1:end]`` (between braces)."""
    body = template[start + 1:end]
    if "{" in body:
        nested = start + 1 + body.index("{")
        raise _fail("unexpected '{' inside expression", nested, template)
    if not body:
        raise _fail("empty expression '{}'", start, template)
    op_char = body[0]
    if op_char in _OPERATORS:
        body = body[1:]
    elif op_char in _RESERVED_OPERATORS:
        raise _fail(f"reserved operator {op_char!r}", start + 1, template)
    elif not (op_char.isascii() and (op_char.isalnum() or op_char in "_%")):
        raise _fail(f"unknown operator {op_char!r}", start + 1, template)
    else:
        op_char = ""
    varspecs = tuple(
        _parse_varspec(spec, start, template) for spec in body.split(",")
    )
    return Expression(_OPERATORS[op_char], varspecs)


_PARSED: "dict[str, tuple[str | Expression, ...]]" = {}
_PARSED_MAX = 64


def parse(template: str) -> "tuple[str | Expression, ...]":
    """Parse *template* into literal strings and expressions, cached per template.

    The cache is a plain dict emptied when it reaches 64 entries (``functools`` would
    cost an opted-out host its import). Raises TemplateError on the first problem found.
    """
    parsed = _PARSED.get(template) if isinstance(template, str) else None
    if parsed is None:
        parsed = _parse_uncached(template)
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        _PARSED[template] = parsed
    return parsed


def _parse_uncached(template: str) -> "tuple[str | Expression, ...]":
    """Parse *template* (see :func:`parse`)."""
    if not isinstance(template, str):
        raise TypeError(f"template must be a str, not {type(template).__name__}")
    parts: "list[str | Expression]" = []
    pos = 0
    while True:
        open_at = template.find("{", pos)
        literal_end = len(template) if open_at < 0 else open_at
        if literal_end > pos:
            parts.append(_check_literal(template, pos, literal_end))
        if open_at < 0:
            return tuple(parts)
        close_at = template.find("}", open_at)
        if close_at < 0:
            raise _fail("unclosed expression", open_at, template)
        parts.append(_parse_expression(template, open_at, close_at))
        pos = close_at + 1


# --------------------------------------------------------------------------
# Expander
# --------------------------------------------------------------------------


def _scalar(value: object, name: str) -> "str | None":
    """Stringify a scalar value; None stays None (undefined)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return str(value)
    raise TypeError(
        f"value of variable {name!r} must be str, int, float, list, tuple,"
        f" mapping or None, not {type(value).__name__}"
    )


def _is_mapping(value: object) -> "TypeGuard[Mapping[object, object]]":
    """Duck-typed mapping check (``collections.abc`` stays off the import path)."""
    return not isinstance(value, (str, list, tuple)) and hasattr(value, "items") and hasattr(value, "keys")


def _items(value: "Mapping[object, object]", name: str) -> "list[tuple[str, str]]":
    """Return the defined (key, value) pairs of a mapping, as strings."""
    pairs = []
    for key, item in value.items():
        text = _scalar(item, name)
        if text is not None:
            pairs.append((str(key), text))
    return pairs


def _members(value: "Iterable[object]", name: str) -> "list[str]":
    """Return the defined members of a list value, as strings."""
    return [text for text in (_scalar(v, name) for v in value) if text is not None]


def _named(key: str, encoded: str, ifemp: str) -> str:
    """``key=value`` for named operators, or ``key`` + ifemp when empty."""
    return key + "=" + encoded if encoded else key + ifemp


def _expand_composite(
    op: "_Operator",
    spec: "_VarSpec",
    value: "Mapping[object, object] | list[object] | tuple[object, ...]",
) -> "str | None":
    """Expand a list/tuple or mapping value; None when it has no members."""
    name = spec.name
    enc = op.allow_reserved
    if _is_mapping(value):
        is_map = True
        pairs = [(_encode(k, enc), _encode(v, enc)) for k, v in _items(value, name)]
    else:
        is_map = False
        pairs = [(name, _encode(m, enc)) for m in _members(value, name)]
    if not pairs:
        return None
    if spec.prefix is not None:
        kind = "mapping" if is_map else "list"
        raise TemplateError(
            f"prefix modifier :{spec.prefix} not allowed on composite"
            f" ({kind}) value of variable {name!r}"
        )
    if not spec.explode:
        joined = ",".join(f"{k},{v}" if is_map else v for k, v in pairs)
        return f"{name}={joined}" if op.named else joined
    if op.named:  # list keys are the variable name, mapping keys their own
        return op.sep.join(_named(k, v, op.ifemp) for k, v in pairs)
    return op.sep.join(f"{k}={v}" if is_map else v for k, v in pairs)


def _expand_varspec(op: "_Operator", spec: "_VarSpec", value: object) -> "str | None":
    """Expand one variable, or return None when it is undefined."""
    if isinstance(value, (list, tuple)) or _is_mapping(value):
        return _expand_composite(op, spec, value)
    text = _scalar(value, spec.name)
    if text is None:
        return None
    if spec.prefix is not None:
        text = text[:spec.prefix]  # counted in code points, before encoding
    encoded = _encode(text, op.allow_reserved)
    return _named(spec.name, encoded, op.ifemp) if op.named else encoded


def _expand_expression(expr: "Expression", variables: "Mapping[str, object]") -> str:
    """Expand one expression; undefined variables contribute nothing."""
    op = expr.operator
    expanded = []
    for spec in expr.varspecs:
        piece = _expand_varspec(op, spec, variables.get(spec.name))
        if piece is not None:
            expanded.append(piece)
    if not expanded:
        return ""
    return op.first + op.sep.join(expanded)


def expand(template: str, variables: "Mapping[str, object]") -> str:
    """Expand the RFC 6570 (level 4) URI *template* with *variables*.

    Variables missing from *variables* (or ``None``, empty lists, empty
    mappings) are undefined and expand to nothing.  Raises TemplateError
    for a malformed template or a prefix modifier on a list/mapping value,
    and TypeError for a value of an unsupported type.
    """
    out = []
    for part in parse(template):
        if isinstance(part, str):
            out.append(part)
        else:
            out.append(_expand_expression(part, variables))
    return "".join(out)


def variable_names(template: str) -> "list[str]":
    """Return the variable names *template* uses, in order, without duplicates.

    Raises TemplateError if the template is malformed.
    """
    names: dict[str, None] = {}
    for part in parse(template):
        if not isinstance(part, str):
            for spec in part.varspecs:
                names.setdefault(spec.name, None)
    return list(names)


def reserved_names(template: str) -> "list[str]":
    """The variables *template* expands with ``+`` or ``#``, in order, without duplicates.

    Those two operators pass reserved characters (``/``, ``?``, ``@``, ...) through
    unencoded, so their values can add path segments or query parameters. Raises
    TemplateError if the template is malformed.
    """
    names: dict[str, None] = {}
    for part in parse(template):
        if not isinstance(part, str) and part.operator.allow_reserved:
            for spec in part.varspecs:
                names.setdefault(spec.name, None)
    return list(names)


def split_userinfo(url: str) -> "tuple[str, str, str] | None":
    """``(scheme://, userinfo, host and the rest)`` of a URL with ``user[:password]@``, else None.

    >>> split_userinfo("https://me:pw@x.example/t?a=1")
    ('https://', 'me:pw', 'x.example/t?a=1')
    >>> split_userinfo("https://x.example/a@b") is None
    True
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return None
    end = next((i for i, ch in enumerate(rest) if ch in "/?#"), len(rest))
    userinfo, at, hostport = rest[:end].rpartition("@")
    if not at:
        return None
    return scheme + sep, userinfo, hostport + rest[end:]


def check_url(template: str) -> None:
    """The template must be an ``http://`` or ``https://`` URL whose host is written out.

    The host (and port) must be literal, so no value can change where pings go; user
    information (``user@``) is refused, since a ping never carries credentials.
    """
    scheme = next((s for s in ("https://", "http://") if template[: len(s)].lower() == s), None)
    if scheme is None:
        raise TemplateError(f"autoping: template must be an http:// or https:// URL, got {template!r}")
    rest = template[len(scheme):]
    end = next((i for i, ch in enumerate(rest) if ch in "/?#{"), len(rest))
    authority = rest[:end]
    if end < len(rest) and rest[end] == "{" and rest[end + 1: end + 2] not in ("/", "?", "&"):
        raise TemplateError(f"autoping: the host and port must be written out, not taken from a variable: {template!r}")
    if "@" in authority:
        raise TemplateError(f"autoping: no user name or password in the URL, please: {template!r}")
    host, port = authority, ""
    if authority.startswith("["):  # an IPv6 literal: [::1]:8080
        host, _, after = authority.partition("]")
        host += "]"
        port = after.removeprefix(":")
    elif ":" in authority:
        host, _, port = authority.rpartition(":")
    if host in ("", "[]") or (port and not (port.isdigit() and 0 < int(port) < 65536)):
        raise TemplateError(f"autoping: template must be an http:// or https:// URL with a host, got {template!r}")
