"""Which installed distribution a package name means: one name per package on every ping.

``{package}`` is always the PEP 503 normalised name of the installed distribution
(``acme-widgets``), whether the author passed the distribution name in any spelling
(``Acme.Widgets``, ``acme_widgets``) or an import name that belongs to it (``acme_w``).
When no distribution is installed under that name, the normalised spelling is used, the
version is ``"unknown"``, and :attr:`Resolved.note` says so, suggesting close names.

Looking distributions up reads metadata from every ``sys.path`` entry (an import name
even reads every distribution's file list), so this runs only where facts are collected:
in the detached sender, on the background worker, or in the command line. Never on the
thread that imports the host package. Nothing here raises: an odd environment means the
name as given and version ``"unknown"``.
"""

from __future__ import annotations

import os
import sys

from . import policy

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - typing only
    from collections.abc import Iterable, Mapping
    from typing import Protocol

    if sys.version_info >= (3, 10):
        from importlib.metadata import Distribution
        from importlib.metadata import PackageNotFoundError as _NotFound
    else:
        from importlib_metadata import Distribution
        from importlib_metadata import PackageNotFoundError as _NotFound

    class _Metadata(Protocol):
        """What is used here of ``importlib.metadata`` (3.10+) or its backport ``importlib_metadata`` (3.9)."""

        PackageNotFoundError: type[_NotFound]

        def distribution(self, distribution_name: str, /) -> Distribution: ...

        def distributions(self, *, name: str = ..., path: list[str] = ...) -> Iterable[Distribution]: ...

        def packages_distributions(self) -> Mapping[str, list[str]]: ...

__all__ = ["Resolved", "distribution_opt_out", "installed_names", "note", "resolve", "suggestions"]

#: How many close names a note suggests at most.
MAX_SUGGESTIONS = 3

_cache: dict[str, Resolved] = {}

#: The path distributions are looked up in: None for ``sys.path``. The detached sender
#: sets the host's whole path: its own import path leaves out the host's working and
#: script directories, where the host may have found the package.
search_path: list[str] | None = None


class Resolved:
    """What a package name resolved to.

    Attributes:
        given: the name the author passed.
        name: the normalised distribution name (the normalised ``given`` when none is installed).
        version: the installed version, or None when no distribution was found.
        problem: None when found; otherwise why not, in words (no distribution by that
            name, or an import name shipped by several distributions).
        suggestions: close installed distribution names (only when not found).
    """

    __slots__ = ("given", "name", "problem", "suggestions", "version")

    def __init__(self, given: str, name: str, version: str | None, problem: str | None = None,
                 suggestions: tuple[str, ...] = ()) -> None:
        self.given = given
        self.name = name
        self.version = version
        self.problem = problem
        self.suggestions = suggestions

    @property
    def found(self) -> bool:
        """True when an installed distribution was identified."""
        return self.version is not None

    def __repr__(self) -> str:
        return f"Resolved({self.given!r} -> {self.name!r} {self.version!r}, problem={self.problem!r})"


def _metadata_module() -> _Metadata:
    if sys.version_info >= (3, 10):
        import importlib.metadata as md
    else:  # pragma: no cover - exercised on 3.9 only
        import importlib_metadata as md
    return md


def _distribution(md: _Metadata, name: str) -> Distribution:
    """``md.distribution(name)``, looked up in :data:`search_path`."""
    if search_path is None:
        return md.distribution(name)
    if not name:
        raise ValueError("a distribution name is required")
    for dist in md.distributions(name=name, path=search_path):
        return dist
    raise md.PackageNotFoundError(name)


def _distributions(md: _Metadata) -> Iterable[Distribution]:
    """``md.distributions()``, looked up in :data:`search_path`."""
    if search_path is None:
        return md.distributions()
    return md.distributions(path=search_path)


def _shipping(md: _Metadata, top: str) -> list[str]:
    """The names of the distributions that ship the top-level module ``top``.

    ``md.packages_distributions()``, which has no path of its own to look in: with a
    :data:`search_path`, the same reading (``top_level.txt``, else the installed files).
    """
    if search_path is None:
        return list(md.packages_distributions().get(top, ()))
    names = []
    for dist in _distributions(md):
        tops = (dist.read_text("top_level.txt") or "").split()
        if not tops:
            tops = [path.parts[0] if len(path.parts) > 1 else path.name.split(".")[0]
                    for path in dist.files or () if path.suffix in (".py", ".pyc", ".so", ".pyd")]
        name = _field(dist, "Name")
        if top in tops and name:
            names.append(name)
    return names


def _field(dist: Distribution, key: str) -> str | None:
    """One field of ``dist``'s metadata, None when missing.

    ``metadata.get``, not ``dist.version`` or ``metadata[key]``: a missing field warns on
    3.12+ under ``-X dev`` or raises. No metadata at all (a ``.dist-info`` without
    ``METADATA``, left by an interrupted install) is None with ``importlib_metadata`` 8
    (Python 3.9), an empty message with the standard library's.
    """
    metadata = dist.metadata
    return None if metadata is None else metadata.get(key)


def _version_of(dist: Distribution) -> str:
    from .facts import clean

    return clean(_field(dist, "Version"))


def _name_of(dist: Distribution, fallback: str) -> str:
    return policy.normalize(_field(dist, "Name") or fallback)


def _ships(dist: Distribution, parts: list[str]) -> bool:
    """True when ``dist`` installs the module or package ``parts`` (``["acme", "tools", "w"]``)."""
    try:
        files = dist.files or ()
    except Exception:  # noqa: BLE001 - unreadable RECORD: it does not tell
        return False
    depth = len(parts)
    for path in files:
        pieces = list(getattr(path, "parts", ()))
        if len(pieces) > depth and pieces[:depth] == parts:
            return True
        if len(pieces) == depth and pieces[:-1] == parts[:-1] and pieces[-1].split(".")[0] == parts[-1]:
            return True
    return False


def _prepared(name: str) -> str:
    """``importlib.metadata``'s ``Prepared.normalize``: runs of ``-_.`` as one ``_``, lower case."""
    return policy.normalize(name, strip=False).replace("-", "_")


def _path_finders_only() -> bool:
    """True when ``importlib.metadata`` finds distributions through the path finder only (no finder of
    a tool's own on ``sys.meta_path``), so that a look-up in the path's directories finds what it finds."""
    from importlib.machinery import PathFinder

    for finder in sys.meta_path:
        if getattr(finder, "find_distributions", None) is None or finder is PathFinder:
            continue
        module = finder.__module__ if isinstance(finder, type) else type(finder).__module__
        if not str(module).startswith("importlib_metadata"):  # 3.9's backport: the same directories
            return False
    return True


def _read_metadata(info: str) -> str | None:
    """``METADATA``, else ``PKG-INFO``, of the directory ``info``; None when neither reads cleanly."""
    for name in ("METADATA", "PKG-INFO"):
        try:
            with open(os.path.join(info, name), encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            continue
        except (OSError, UnicodeError):  # importlib.metadata raises or says nothing: let it
            return None
        if text:
            return text
    return None


def _by_distribution_name(package: str) -> tuple[str | None, str | None] | None:
    """``(Name, Version)`` of the distribution ``importlib.metadata.distribution(package)`` finds,
    without importing ``importlib.metadata`` (tens of milliseconds) and reading only that one.

    Its search, done the same way: every directory of the path listed, and the one
    ``*.dist-info`` or ``*.egg-info`` directory whose name (before the first ``-``)
    normalises as ``package`` does, its ``METADATA`` (or ``PKG-INFO``) read as ``email``
    reads it. None whenever that might not be what ``importlib.metadata`` finds: no
    such entry or more than one (its order would decide), an entry of the path that is
    a zip archive or an ``.egg``, a finder of a tool's own, an unreadable file. The
    caller then asks ``importlib.metadata`` itself.
    """
    wanted = _prepared(package)
    if not package.strip() or not wanted or not _path_finders_only():
        return None
    found = []
    for entry in search_path if search_path is not None else sys.path:
        if not isinstance(entry, str):
            return None
        root = entry or "."
        try:
            children = os.listdir(root)
        except FileNotFoundError:
            continue
        except NotADirectoryError:
            return None  # a zip archive: importlib.metadata reads it
        if os.path.basename(root).lower().endswith(".egg"):
            return None
        for child in children:
            low = child.lower()
            if low.endswith((".dist-info", ".egg-info")) and _prepared(low.rpartition(".")[0].partition("-")[0]) == wanted:
                found.append(os.path.join(root, child))
    if len(found) != 1 or not os.path.isdir(found[0]):
        return None
    text = _read_metadata(found[0])
    if text is None:
        return None
    from .mailheaders import fields, first

    items = fields(text)
    return first(items, "Name"), first(items, "Version")


def _lookup(package: str) -> Resolved:
    normal = policy.normalize(package)
    dist: Distribution | None
    try:
        fast = _by_distribution_name(package)
    except (OSError, UnicodeError):
        fast = None
    if fast is not None:
        from .facts import clean

        name, version = fast
        return Resolved(package, policy.normalize(name or package), clean(version))
    md = _metadata_module()
    try:
        dist = _distribution(md, package)
    except md.PackageNotFoundError:
        dist = None
    except ValueError:  # an empty or odd name
        dist = None
    if dist is not None:
        return Resolved(package, _name_of(dist, package), _version_of(dist))
    # An import name: the distribution that ships its top-level package, when exactly one does.
    parts = package.strip().split(".")
    shipping = sorted(set(_shipping(md, parts[0])))
    candidates = []
    for dist_name in shipping:
        try:
            candidates.append(_distribution(md, dist_name))
        except md.PackageNotFoundError:
            continue
    if len(candidates) > 1 and len(parts) > 1:
        # A namespace package (``acme.tools.widgets``): the one distribution that ships the full path.
        candidates = [dist for dist in candidates if _ships(dist, parts)]
    if len(candidates) == 1:
        return Resolved(package, _name_of(candidates[0], package), _version_of(candidates[0]))
    if len(candidates) > 1:
        names = sorted({_name_of(dist, package) for dist in candidates})
        return Resolved(package, normal, None,
                        f"the module {package!r} is shipped by several distributions ({', '.join(names)})",
                        tuple(names[:MAX_SUGGESTIONS]))
    return Resolved(package, normal, None, f"no installed distribution is named {package!r}",
                    suggestions(package))


def resolve(package: str) -> Resolved:
    """The distribution ``package`` means, looked up once per process; never raises."""
    found = _cache.get(package)
    if found is not None:
        return found
    try:
        found = _lookup(package)
    except Exception:  # noqa: BLE001 - an odd environment means 'not found', never an error
        found = Resolved(package, policy.normalize(package), None, f"no installed distribution is named {package!r}")
    _cache[package] = found
    return found


def installed_names() -> list[str]:
    """The normalised names of every installed distribution (each once, sorted)."""
    try:
        md = _metadata_module()
        return sorted({policy.normalize(_field(d, "Name") or "") for d in _distributions(md)} - {""})
    except Exception:  # noqa: BLE001
        return []


def suggestions(package: str) -> tuple[str, ...]:
    """Installed distribution names close to ``package``: near spellings, or names it begins.

    ``acme-widget`` suggests ``acme-widgets`` (a near spelling, by :mod:`difflib`); ``acme``
    suggests ``acme-widgets`` and ``acme-tools`` (the name is their first part).
    """
    import difflib

    normal = policy.normalize(package)
    names = installed_names()
    close = difflib.get_close_matches(normal, names, n=MAX_SUGGESTIONS, cutoff=0.75)
    prefixed = [n for n in names if n.startswith(normal + "-") and n not in close]
    return tuple([*close, *prefixed][:MAX_SUGGESTIONS])


def note(resolved: Resolved, version_given: bool = False) -> str | None:
    """One sentence on a name that did not resolve (None when it did): for debug lines and the CLI."""
    if resolved.found:
        return None
    text = resolved.problem or f"no installed distribution is named {resolved.given!r}"
    if not version_given:
        text += ", so {version} is 'unknown'"
    if resolved.suggestions:
        text += "; did you mean " + " or ".join(repr(s) for s in resolved.suggestions) + "?"
    return text


def distribution_opt_out(env: Mapping[str, str], package: str) -> str | None:
    """The distribution's own ``<NAME>_NO_ANALYTICS`` variable, when set and not the one already checked.

    At import time only the variable of the name the author passed is checked (resolving a
    name is too slow for the host's thread). When that is an import name of a differently
    named distribution (``yaml`` for ``pyyaml``), the distribution's variable
    (``PYYAML_NO_ANALYTICS``) is honoured here, where the name is resolved: the ping is
    then not sent.
    """
    resolved = resolve(package)
    variable = policy.package_variable(resolved.name)
    if variable != policy.package_variable(package) and policy.is_set(env.get(variable)):
        return variable
    return None


def background(package: str, version_given: bool, env: Mapping[str, str]) -> tuple[str | None, str | None]:
    """What resolving the name adds to a ping, where it is resolved (sender or background worker).

    Returns ``(off, remark)``: ``off`` is the reason not to send (the distribution's own
    opt-out variable is set, see :func:`distribution_opt_out`), else None; ``remark`` is
    the :func:`note` to add to the outcome's reason (and so to the debug line), else None.
    """
    variable = distribution_opt_out(env, package)
    if variable is not None:
        return f"opted out by {variable} (the variable of the distribution {resolve(package).name!r})", None
    return None, note(resolve(package), version_given)


def with_remark(reason: str | None, remark: str | None) -> str | None:
    """``reason`` with the name's remark after it (``HTTP 204; no installed distribution ...``)."""
    if not remark:
        return reason
    return f"{reason}; {remark}" if reason else remark
