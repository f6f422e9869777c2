"""What this machine is: the built-in template variables.

Everything here is read from the running interpreter and the OS release files; nothing
identifies a person (no host name, user name, path or hardware address). Every value is
a non-empty string: whatever cannot be read becomes ``"unknown"``, because Scarf drops
events with empty path segments.

Each platform fact is read once per process, when first needed, and cached: a template
that does not name ``{distro}`` never imports ``distro``. Reading imports ``platform``,
``distro`` and :mod:`.machine`, so it runs in the sender or on the background worker,
never on the thread that imports the host package, except :func:`interface`.
"""

__all__ = ["BUILTIN_NAMES", "INTERFACES", "PLATFORM_NAMES", "UNKNOWN", "clean", "collect", "interface",
           "platform_facts", "scarf_platform", "variables"]

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable, Iterable, Mapping

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

#: The platform facts read so far in this process (see :func:`platform_facts`).
_cache: "dict[str, str]" = {}


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


#: The modules ``distro`` imports at its top but uses only for its command line
#: (``argparse``, ``logging``) and to run ``lsb_release``, ``uname`` and ``oslevel``
#: (``subprocess``), which are never run here: 12 ms of its 19 on a small machine.
_DISTRO_UNUSED = ("argparse", "logging", "subprocess")
#: Set in the detached sender only (see :func:`lean`).
_lean = [False]


def lean() -> None:
    """Import ``distro`` without :data:`_DISTRO_UNUSED` from now on: for the detached sender only.

    The sender is a process of ours that imports nothing else and never calls what those
    modules serve. In a host, whose own code may use ``distro`` in full, ``distro`` is
    always imported as it is.
    """
    _lean[0] = True


def _lean_distro() -> object:
    """``import distro`` with empty stand-ins for :data:`_DISTRO_UNUSED` during its import only.

    The stand-ins leave ``sys.modules`` at once (a later ``import logging`` gets the real
    one); ``distro`` keeps them, which only its command line and its subprocesses would
    notice. A ``distro`` that needs them at import fails here, and is imported in full.
    """
    import sys

    if "distro" in sys.modules:
        return sys.modules["distro"]
    added = [name for name in _DISTRO_UNUSED if name not in sys.modules]
    for name in added:
        sys.modules[name] = type(sys)(name)
    try:
        import distro
    except Exception:  # it needs them after all: the caller imports it in full
        sys.modules.pop("distro", None)
        sys.modules.pop("distro.distro", None)
        raise
    finally:
        for name in added:
            sys.modules.pop(name, None)
    return distro


def _distro_facts() -> tuple[str, str]:
    """``distro.id()`` and ``distro.version()``, without spawning any subprocess.

    ``lsb_release``, ``uname`` and ``oslevel`` are not run: a subprocess from a
    background thread of somebody else's program is a fork hazard, and the release
    files say enough. In the detached sender (:func:`lean`), ``distro`` is imported
    without the modules only those need; should that fail in any way, it is imported
    and asked again in full, so the values are the same.
    """
    if _lean[0]:
        try:
            lean_distro = _lean_distro()
            info = lean_distro.LinuxDistribution(  # type: ignore[attr-defined]
                include_lsb=False, include_uname=False, include_oslevel=False)
            return clean(info.id()), clean(info.version(best=False))
        except Exception:  # noqa: BLE001 - anything at all: the full import, as everywhere else
            import sys

            for name in ("distro", "distro.distro"):
                sys.modules.pop(name, None)
            _lean[0] = False
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


#: The platform facts: every built-in variable but ``package``, ``version`` and ``ci``, in
#: the order :func:`collect` returns them.
PLATFORM_NAMES = (
    "os",
    "platform",
    "os_version",
    "python",
    "python_implementation",
    "distro",
    "distro_version",
    "interface",
    "autoping_version",
    "python_minor",
    "free_threaded",
    "arch",
    "machine",
    "container",
    "libc",
    "libc_version",
)
#: The facts :mod:`.machine` computes.
_MACHINE_NAMES = ("python_minor", "free_threaded", "arch", "machine", "container", "libc", "libc_version")


def collect(names: "Iterable[str] | None" = None) -> "dict[str, str]":
    """Read the platform facts named in ``names`` (all of them by default). Not cached; see :func:`platform_facts`.

    Only what a name needs is read: ``distro`` (and its import) only for ``distro`` and
    ``distro_version``, :mod:`.machine` only for its facts, and so on. Each value is the
    one a collection of all of them gives.
    """
    wanted = set(PLATFORM_NAMES if names is None else names)
    import platform

    from . import __version__

    memo: dict[str, str] = {}

    def system() -> str:
        if "os" not in memo:
            memo["os"] = _safe(platform.system)
        return memo["os"]

    def os_version() -> str:
        if "os_version" not in memo:
            memo["os_version"] = _safe(_os_version, system())
        return memo["os_version"]

    def python() -> str:
        if "python" not in memo:
            memo["python"] = _safe(platform.python_version)
        return memo["python"]

    values: dict[str, str] = {}
    for name in PLATFORM_NAMES:
        if name not in wanted or name in values:
            continue
        if name == "os":
            values[name] = system()
        elif name == "platform":
            values[name] = scarf_platform(system()) if system() != UNKNOWN else UNKNOWN
        elif name == "os_version":
            values[name] = os_version()
        elif name == "python":
            values[name] = python()
        elif name == "python_implementation":
            values[name] = _safe(platform.python_implementation)
        elif name in ("distro", "distro_version"):
            try:
                pair = _distro_facts() if system() != "Windows" else (UNKNOWN, UNKNOWN)
            except Exception:  # noqa: BLE001 - an odd platform means 'unknown', never an error
                pair = UNKNOWN, UNKNOWN
            for key, value in zip(("distro", "distro_version"), pair):
                if key in wanted:
                    values[key] = value
        elif name == "interface":
            values[name] = interface()
        elif name == "autoping_version":
            values[name] = __version__
        elif name in _MACHINE_NAMES:
            from . import machine

            needed = [n for n in _MACHINE_NAMES if n in wanted]
            arch_or_machine = "arch" in wanted or "machine" in wanted
            values.update(machine.collect(
                system() if "arch" in wanted or "container" in wanted else UNKNOWN,
                _safe(platform.machine) if arch_or_machine else UNKNOWN,
                python() if "python_minor" in wanted else UNKNOWN,
                os_version() if "container" in wanted else UNKNOWN,
                names=needed,
            ))
    return {name: values[name] for name in PLATFORM_NAMES if name in values}


def platform_facts(names: "Iterable[str] | None" = None) -> "dict[str, str]":
    """The platform facts named in ``names`` (all by default), each read once per process (a copy).

    A fact is read the first time it is asked for: a ping whose template names only
    ``{platform}`` and ``{python}`` never imports ``distro``.
    """
    wanted = [n for n in PLATFORM_NAMES if names is None or n in set(names)]
    missing = [n for n in wanted if n not in _cache]
    if missing:
        _cache.update(collect(missing))
    return {name: _cache[name] for name in wanted}


def variables(
    package: str,
    version: "str | None",
    ci: bool,
    extra: "Mapping[str, str] | None" = None,
    *,
    interface: "str | None" = None,
    names: "Iterable[str] | None" = None,
) -> "dict[str, str]":
    """Every template variable for one ping: platform facts, package, version, ci, author values.

    ``package`` is the installed distribution's normalised name (``acme-widgets`` for
    ``Acme.Widgets``, ``acme_widgets`` or an import name it ships); see
    :func:`scarf_autoping.naming.resolve`. ``interface``: the host's (see :func:`interface`);
    ``None``: this process's. ``names``: the variables the template uses
    (:func:`scarf_autoping.template.variable_names`); then only those platform facts are
    read (computing the others would be waste), the rest as always.
    """
    from . import naming

    resolved = naming.resolve(package)
    values = platform_facts(names)
    if interface is not None and "interface" in values:
        values["interface"] = interface if interface in INTERFACES else UNKNOWN
    values["package"] = clean(resolved.name)
    values["version"] = clean(version) if version is not None else (resolved.version or UNKNOWN)
    values["ci"] = "true" if ci else "false"
    if names is None or "first_run" in names:
        # Known only to the state (scarf_autoping.state.claim sets it just before the request).
        values.setdefault("first_run", UNKNOWN)
    if extra:
        values.update({k: clean(v) for k, v in extra.items()})
    return values
