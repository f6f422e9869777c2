"""The facts an author decides on: architecture, Python minor, free-threading, libc, container.

Read by :func:`scarf_autoping.facts.collect` in the detached sender or the background
worker, never on the host's import path: this module is imported only there and by the
report, which merges names recorded before normalisation with :func:`normalize_arch`, the
one function and the one table both use.

Every value comes from a closed vocabulary or is a version number, except an
architecture missing from the table, which is the operating system's own name for it,
cleaned: no path, host name, user name, container ID or hardware serial number is ever
returned. Nothing here spawns a process or reads a whole binary.
"""

import os
import re
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable, Iterable, Mapping

UNKNOWN = "unknown"

#: ``platform.machine()`` (lower-cased) -> the one name per architecture. See the table in
#: docs/api.md; a name missing here is kept, lower-cased (see :func:`normalize_arch`).
ARCHES = {
    # x86, 64-bit: Linux/macOS, Windows (AMD64), BSDs (amd64), and other spellings.
    "x86_64": "x86_64",
    "amd64": "x86_64",
    "x64": "x86_64",
    "x86-64": "x86_64",
    "em64t": "x86_64",
    "intel64": "x86_64",
    # x86, 32-bit: Linux (i386...i686), Windows (x86).
    "i386": "x86",
    "i486": "x86",
    "i586": "x86",
    "i686": "x86",
    "x86": "x86",
    "ia32": "x86",
    # ARM, 64-bit: Linux (aarch64), macOS and Windows (arm64, ARM64); arm64e is an Apple ABI of it.
    "aarch64": "arm64",
    "arm64": "arm64",
    "arm64e": "arm64",
    # ARM, 32-bit. armv8l is a 32-bit userland on an ARMv8 CPU: it runs armv7 code (and
    # wheels); Windows on 32-bit ARM says ARM and needs ARMv7.
    "armv7l": "armv7",
    "armv7": "armv7",
    "armv7hl": "armv7",
    "armv7hf": "armv7",
    "armv7a": "armv7",
    "armv8l": "armv7",
    "arm": "armv7",
    "armv6l": "armv6",
    "armv6": "armv6",
    "armv6hl": "armv6",
    "armv5l": "armv5",
    "armv5tel": "armv5",
    "armv5tejl": "armv5",
    # POWER: little-endian 64-bit (ppc64le), big-endian 64-bit (ppc64), 32-bit (old Macs too).
    "ppc64le": "ppc64le",
    "powerpc64le": "ppc64le",
    "ppc64": "ppc64",
    "powerpc64": "ppc64",
    "ppc": "ppc",
    "powerpc": "ppc",
    "power macintosh": "ppc",
    # IBM Z.
    "s390x": "s390x",
    "s390": "s390",
    # RISC-V, LoongArch (loong64 is Debian's name), MIPS (uname says mips/mips64 for both endians).
    "riscv64": "riscv64",
    "riscv32": "riscv32",
    "loongarch64": "loongarch64",
    "loong64": "loongarch64",
    "mips": "mips",
    "mipsel": "mipsel",
    "mips64": "mips64",
    "mips64el": "mips64el",
    # SPARC (Solaris says sun4u/sun4v), Itanium, WebAssembly (Emscripten, WASI).
    "sparc64": "sparc64",
    "sun4u": "sparc64",
    "sun4v": "sparc64",
    "sparc": "sparc",
    "ia64": "ia64",
    "wasm32": "wasm32",
    "wasm64": "wasm64",
}

#: A 64-bit architecture and what a 32-bit interpreter on it runs (the wheels it needs).
_BITS32 = {
    "x86_64": "x86",
    "arm64": "armv7",
    "ppc64": "ppc",
    "s390x": "s390",
    "mips64": "mips",
    "mips64el": "mipsel",
    "sparc64": "sparc",
}

#: ``sysconfig.get_platform()`` on Windows: the interpreter's own build. Windows'
#: ``platform.machine()`` names the CPU (3.12 and later ask WMI), so an x64 or x86 Python
#: emulated on an ARM64 PC says ``ARM64`` while it needs x64 or x86 wheels.
_WINDOWS_BUILDS = {"win-amd64": "x86_64", "win32": "x86", "win-arm64": "arm64", "win-arm32": "armv7"}

#: iOS and iPadOS report the device model (``iPhone14,2``): all of them are 64-bit ARM.
_APPLE_DEVICES = ("iphone", "ipad", "ipod")

#: Hexadecimal of 8 or more digits: a machine ID (AIX's ``uname -m``), never an architecture.
_SERIAL = re.compile(r"(?=.*[0-9])[0-9a-f]{8,}")

#: A ``platform.machine()`` value that can be shown as it is.
_MACHINE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.,+ -]{0,39}")

#: A version number: ``2.36``, ``1.2.4``.
VERSION = re.compile(r"[0-9]+(?:\.[0-9]+)+")


def collect(system: str, raw_machine: str, python: str, os_version: str,
            names: "Iterable[str] | None" = None) -> "dict[str, str]":
    """The facts of this module for :func:`scarf_autoping.facts.collect`, each ``unknown`` on an error.

    ``python_minor``, ``free_threaded``, ``arch``, ``machine``, ``libc``, ``libc_version``
    and ``container``, from what ``facts`` already read (``platform.system()``,
    ``platform.machine()``, the Python version and the kernel release); only those in
    ``names`` when it is given (the others' arguments are then not looked at).
    """
    wanted = None if names is None else set(names)
    steps: "tuple[tuple[str, Callable[[], str]], ...]" = (
        ("python_minor", lambda: _safe(python_minor, python)),
        ("free_threaded", lambda: _safe(free_threaded)),
        ("arch", lambda: _safe(interpreter_arch, system, raw_machine)),
        ("machine", lambda: _safe(clean_machine, raw_machine)),
        ("container", lambda: _safe(container, system, os_version)),
    )
    values = {name: step() for name, step in steps if wanted is None or name in wanted}
    if wanted is None or "libc" in wanted or "libc_version" in wanted:
        try:
            pair = libc()
        except Exception:  # noqa: BLE001 - an odd platform means 'unknown', never an error
            pair = UNKNOWN, UNKNOWN
        for name, value in zip(("libc", "libc_version"), pair):
            if wanted is None or name in wanted:
                values[name] = value
    return values


def interpreter_arch(system: str, raw_machine: str, windows_build: "str | None" = None) -> str:
    """``{arch}``: the architecture whose code this interpreter runs, i.e. the wheels it needs.

    :func:`normalize_arch` of ``platform.machine()`` with the interpreter's pointer size,
    except on Windows, where the interpreter's build says it (``sysconfig.get_platform()``,
    or ``windows_build``), and on AIX, whose ``platform.machine()`` is the machine's ID
    (never sent) and which runs on POWER.
    """
    if system == "Windows":
        if windows_build is None:
            import sysconfig

            windows_build = sysconfig.get_platform()
        if windows_build in _WINDOWS_BUILDS:
            return _WINDOWS_BUILDS[windows_build]
    return normalize_arch("ppc64" if system == "AIX" else raw_machine, pointer_bits())


def _safe(fn: "Callable[..., object]", *args: object) -> str:
    try:
        return str(fn(*args)) or UNKNOWN
    except Exception:  # noqa: BLE001 - an odd platform means 'unknown', never an error
        return UNKNOWN


def normalize_arch(machine: "str | None", bits: "int | None" = None) -> str:
    """One name per architecture for a ``platform.machine()`` value (see :data:`ARCHES`).

    ``bits`` is the interpreter's pointer size (``None`` when unknown, as for a name read
    back from a database): a 32-bit interpreter on a 64-bit machine runs the 32-bit
    architecture's code (``AMD64`` with a 32-bit Python is ``x86``), and Solaris'
    ``i86pc`` is ``x86`` only when the interpreter is known to be 32-bit.

    A name not in the table is kept, lower-cased, with only letters, digits, ``.``,
    ``_`` and ``-`` (at most 32 characters); empty, or a machine ID (AIX), it is ``unknown``.
    """
    key = (machine or "").strip().lower()
    if key == "i86pc":
        name = "x86" if bits == 32 else "x86_64"
    elif key in ARCHES:
        name = ARCHES[key]
    elif key.startswith(_APPLE_DEVICES):
        name = "arm64"
    else:
        name = "".join(ch for ch in key if ch.isascii() and (ch.isalnum() or ch in "._-"))[:32]
        if not name or _SERIAL.fullmatch(name):
            return UNKNOWN
    if bits == 32:
        name = _BITS32.get(name, name)
    return name


def clean_machine(machine: "str | None") -> str:
    """``platform.machine()`` as it is, unless it could carry something else than an architecture.

    A value with unexpected characters or longer than 40 characters, or a machine ID (AIX
    puts one there), is ``unknown``.
    """
    text = (machine or "").strip()
    if not _MACHINE.fullmatch(text) or _SERIAL.fullmatch(text.lower()):
        return UNKNOWN
    return text


def pointer_bits() -> int:
    """The interpreter's pointer size: 64 or 32."""
    return 64 if sys.maxsize > 2**32 else 32


def python_minor(version: "str | None") -> str:
    """``3.12`` for ``3.12.1``, ``3.13.0rc1`` or ``3.12``; anything else is returned as it is."""
    text = (version or "").strip()
    found = re.match(r"([0-9]+)\.([0-9]+)(?![0-9])", text)
    if found is None:
        return text or UNKNOWN
    return f"{int(found[1])}.{int(found[2])}"


def free_threaded() -> str:
    """``true`` for a free-threaded build of CPython (3.13t and later), else ``false``.

    It is about the build, not whether the GIL happens to be on right now (a free-threaded
    build re-enables it for an extension that is not ready, or with ``PYTHON_GIL=1``):
    ``sys._is_gil_enabled`` exists on every 3.13, so it says nothing about the build.
    The build says it in ``Py_GIL_DISABLED``, which on POSIX also puts ``t`` in
    ``sys.abiflags``: that is read first, since importing ``sysconfig`` costs the sender
    (started with ``-S``, so without it) some milliseconds. Before 3.13 there is no such build.
    """
    if sys.version_info < (3, 13):
        return "false"
    abiflags = getattr(sys, "abiflags", None)
    if abiflags is not None:
        return "true" if "t" in abiflags else "false"
    import sysconfig  # Windows: no ABI flags before 3.14

    return "true" if sysconfig.get_config_var("Py_GIL_DISABLED") else "false"


def libc() -> "tuple[str, str]":
    """``(libc, version)``: ``("glibc", "2.36")``, ``("musl", "1.2.4")``, else ``unknown``.

    glibc answers ``confstr(CS_GNU_LIBC_VERSION)``. A musl interpreter has no such name; it
    is told by its build (``sys.implementation._multiarch`` ends in ``-musl``) or by musl's
    loader (``/lib/ld-musl-<arch>.so.1``); its version is read from Alpine's package
    database, line by line up to musl's entry, since musl offers no call for it (the loader
    prints it only when run, and a process is not started for it). Elsewhere (macOS,
    Windows, the BSDs, Android) both are ``unknown``.
    """
    if not sys.platform.startswith("linux"):
        return UNKNOWN, UNKNOWN
    try:
        text = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError, AttributeError):  # not glibc: the name is not known
        text = ""
    name, _, version = text.strip().partition(" ")
    if name.lower() == "glibc":
        return "glibc", version if VERSION.fullmatch(version) else UNKNOWN
    if _musl():
        return "musl", _musl_version()
    return UNKNOWN, UNKNOWN


def _musl() -> bool:
    multiarch = str(getattr(sys.implementation, "_multiarch", "") or "")
    if "-musl" in multiarch:  # x86_64-linux-musl, arm-linux-musleabihf
        return True
    if "-gnu" in multiarch:  # x86_64-linux-gnu, arm-linux-gnueabihf: a glibc build
        return False
    try:
        return any(n.startswith("ld-musl-") and n.endswith(".so.1") for n in os.listdir("/lib"))
    except OSError:
        return False


#: Alpine's database of installed packages, and the most of it read to find musl's entry.
APK_DB = "/lib/apk/db/installed"
_APK_LIMIT = 4 << 20


def _musl_version(database: "str | None" = None) -> str:
    """musl's version from Alpine's package database (``P:musl`` then ``V:1.2.4-r2``), else ``unknown``."""
    try:
        with open(database or APK_DB, "rb") as f:
            read = 0
            in_musl = False
            for line in f:
                read += len(line)
                if read > _APK_LIMIT:
                    break
                if not line.strip():
                    in_musl = False
                elif line.startswith(b"P:"):
                    in_musl = line[2:].strip() == b"musl"
                elif in_musl and line.startswith(b"V:"):
                    version = line[2:].strip().decode("ascii", "replace").split("-r", 1)[0]
                    return version if VERSION.fullmatch(version) else UNKNOWN
    except OSError:
        pass
    return UNKNOWN


#: The values of :func:`container`.
CONTAINERS = ("docker", "podman", "kubernetes", "wsl", "none")


def container(system: str, release: str = "", environ: "Mapping[str, str] | None" = None) -> str:
    """``kubernetes``, ``podman``, ``docker``, ``wsl`` or ``none``, from well-known markers only.

    In that order, the first that holds: ``KUBERNETES_SERVICE_HOST`` in the environment (a
    pod, whatever its runtime), ``/run/.containerenv`` (Podman, Buildah), ``/.dockerenv``
    (Docker), then Windows Subsystem for Linux (``WSL_DISTRO_NAME`` or ``WSL_INTEROP`` in
    the environment, ``/proc/sys/fs/binfmt_misc/WSLInterop``, or ``microsoft`` in the
    kernel release). Only whether a marker exists is looked at, never what it holds: no
    container ID, name or path is ever read. Not on Linux: ``none``.
    """
    if system != "Linux":
        return "none"
    env = os.environ if environ is None else environ
    if env.get("KUBERNETES_SERVICE_HOST"):
        return "kubernetes"
    if os.path.exists("/run/.containerenv"):
        return "podman"
    if os.path.exists("/.dockerenv"):
        return "docker"
    if (env.get("WSL_DISTRO_NAME") or env.get("WSL_INTEROP") or "microsoft" in release.lower()
            or os.path.exists("/proc/sys/fs/binfmt_misc/WSLInterop")):
        return "wsl"
    return "none"
