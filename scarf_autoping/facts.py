"""What this machine is: the built-in template variables.

Everything here is read from the running interpreter and the OS release files; nothing
identifies a person (no host name, user name, path or hardware address). Every value is
a non-empty string: whatever cannot be read becomes ``"unknown"``, because Scarf drops
events with empty path segments.

The platform facts are collected once per process and cached. Collection imports
``platform``, ``distro`` and :mod:`.machine`, so it runs in the sender or on the background
worker, never on the thread that imports the host package, except :func:`interface`.
"""

__all__ = ["BUILTIN_NAMES", "INTERFACES", "UNKNOWN", "clean", "collect", "interface", "platform_facts",
           "scarf_platform", "variables"]

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable, Mapping

UNKNOWN = "unknown"

#: The built-in template variables, computed here (see docs/api.md for the table). The
#: author's template checks need them on the host's import path, so this module stays
#: cheap to import: no ``from __future__ import annotations``, nothing imported at the top.
BUILTIN_NAMES = (
    "package",
    "version",
    "os",
    "platform",
    "os_version",
    "python",
    "python_minor",
    "python_implementation",
    "free_threaded",
    "arch",
    "machine",
    "libc",
    "libc_version",
    "distro",
    "distro_version",
    "container",
    "interface",
    "ci",
    "autoping_version",
    "first_run",
)

#: The values of :func:`interface`.
INTERFACES = ("jupyter", "interactive", "script")

#: ``platform.system()`` -> Scarf's lowercase platform vocabulary.
_SCARF_PLATFORMS = {
    "linux": "linux",
    "darwin": "macos",
    "windows": "windows",
    "freebsd": "freebsd",
    "openbsd": "openbsd",
    "netbsd": "netbsd",
    "dragonfly": "dragonfly",
    "sunos": "solaris",
    "aix": "aix",
    "android": "android",
    "ios": "ios",
    "ipados": "ios",
    "emscripten": "emscripten",
    "wasi": "wasi",
    "haiku": "haiku",
    "java": "java",
}

_cache: "dict[str, str] | None" = None


def clean(value: object) -> str:
    """A fact as a non-empty string: ``None``, empty and whitespace become ``"unknown"``."""
    if value is None:
        return UNKNOWN
    text = str(value).strip()
    return text or UNKNOWN


def scarf_platform(system: str) -> str:
    """Map ``platform.system()`` to Scarf's vocabulary (``Darwin`` -> ``macos``, ...).

    Cygwin and MSYS report ``CYGWIN_NT-10.0`` and the like: they are Windows. Anything
    not in the table is lower-cased and kept, so new systems still show up.
    """
    key = system.strip().lower()
    if key.startswith(("cygwin", "msys", "mingw")):
        return "windows"
    if key in _SCARF_PLATFORMS:
        return _SCARF_PLATFORMS[key]
    return clean("".join(ch for ch in key if ch.isalnum()))


def _os_version(system: str) -> str:
    import platform  # already loaded by collect(): a dictionary look-up

    if system == "Darwin":
        return platform.mac_ver()[0]
    return platform.release()


def _distro_facts() -> tuple[str, str]:
    """``distro.id()`` and ``distro.version()``, without spawning any subprocess.

    ``lsb_release``, ``uname`` and ``oslevel`` are not run: a subprocess from a
    background thread of somebody else's program is a fork hazard, and the release
    files say enough.
    """
    import distro

    info = distro.LinuxDistribution(include_lsb=False, include_uname=False, include_oslevel=False)
    return clean(info.id()), clean(info.version(best=False))


def _safe(fn: "Callable[..., object]", *args: object) -> str:
    try:
        return clean(fn(*args))
    except Exception:  # noqa: BLE001 - an odd platform means 'unknown', never an error
        return UNKNOWN


def interface() -> str:
    """How this process runs Python (docs/api.md). On the host's import path: look-ups only."""
    import sys

    modules = sys.modules
    try:
        shell_class = getattr(modules.get("IPython.core.interactiveshell"), "InteractiveShell", None)
        shell = getattr(shell_class, "_instance", None)
        if shell is not None:
            for kind in type(shell).__mro__:  # a kernel's shell class is ipykernel's (or a subclass of it)
                if str(getattr(kind, "__module__", "")).startswith("ipykernel"):
                    return "jupyter"
            return "interactive"
        if "ipykernel" in modules and not hasattr(modules.get("__main__"), "__file__"):
            return "jupyter"
        if hasattr(sys, "ps1") or sys.flags.interactive:
            return "interactive"
    except Exception:  # noqa: BLE001 - an odd module in sys.modules: a script, as most are
        pass
    return "script"


def collect() -> dict[str, str]:
    """Read the platform facts (no ``package``/``version``/``ci``). Not cached; see :func:`platform_facts`."""
    import platform

    from . import __version__, machine

    system = _safe(platform.system)
    try:
        distro_id, distro_version = _distro_facts() if system != "Windows" else (UNKNOWN, UNKNOWN)
    except Exception:  # noqa: BLE001 - an odd platform means 'unknown', never an error
        distro_id, distro_version = UNKNOWN, UNKNOWN
    values = {
        "os": system,
        "platform": scarf_platform(system) if system != UNKNOWN else UNKNOWN,
        "os_version": _safe(_os_version, system),
        "python": _safe(platform.python_version),
        "python_implementation": _safe(platform.python_implementation),
        "distro": distro_id,
        "distro_version": distro_version,
        "interface": interface(),
        "autoping_version": __version__,
    }
    values.update(machine.collect(system, _safe(platform.machine), values["python"], values["os_version"]))
    return values


def platform_facts() -> dict[str, str]:
    """The platform facts, collected once per process (a copy, so callers may change it)."""
    global _cache
    if _cache is None:
        _cache = collect()
    return dict(_cache)


def variables(
    package: str,
    version: "str | None",
    ci: bool,
    extra: "Mapping[str, str] | None" = None,
    *,
    interface: "str | None" = None,
) -> "dict[str, str]":
    """Every template variable for one ping: platform facts, package, version, ci, author values.

    ``package`` is the installed distribution's normalised name (``acme-widgets`` for
    ``Acme.Widgets``, ``acme_widgets`` or an import name it ships); see
    :func:`scarf_autoping.naming.resolve`. ``interface``: the host's (see :func:`interface`);
    ``None``: this process's.
    """
    from . import naming

    resolved = naming.resolve(package)
    values = platform_facts()
    if interface is not None:
        values["interface"] = interface if interface in INTERFACES else UNKNOWN
    values["package"] = clean(resolved.name)
    values["version"] = clean(version) if version is not None else (resolved.version or UNKNOWN)
    values["ci"] = "true" if ci else "false"
    # Known only to the state (scarf_autoping.state.claim sets it just before the request).
    values.setdefault("first_run", UNKNOWN)
    if extra:
        values.update({k: clean(v) for k, v in extra.items()})
    return values
