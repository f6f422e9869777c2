"""An independent reading of the machine facts (issue 19), made here without the library:
``uname -m``, ``ldd --version``, ``sysconfig``, the container marker files. The unit tests
of ``machine``, the CLI's ``facts``/``preview`` and the end-to-end pings compare against it.
"""

from __future__ import annotations

import platform
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

NEW = ("python_minor", "free_threaded", "arch", "machine", "libc", "libc_version", "container", "interface")


#: Every raw name the table maps, and its one name (written out here, not read from the table).
TABLE = {
    "x86_64": "x86_64", "AMD64": "x86_64", "amd64": "x86_64", "x64": "x86_64", "X64": "x86_64",
    "x86-64": "x86_64", "EM64T": "x86_64", "Intel64": "x86_64",
    "i386": "x86", "i486": "x86", "i586": "x86", "i686": "x86", "x86": "x86", "X86": "x86", "ia32": "x86",
    "aarch64": "arm64", "arm64": "arm64", "ARM64": "arm64", "arm64e": "arm64",
    "armv7l": "armv7", "armv7": "armv7", "armv7hl": "armv7", "armv7hf": "armv7", "armv7a": "armv7",
    "armv8l": "armv7", "ARM": "armv7",
    "armv6l": "armv6", "armv6": "armv6", "armv6hl": "armv6",
    "armv5l": "armv5", "armv5tel": "armv5", "armv5tejl": "armv5",
    "ppc64le": "ppc64le", "powerpc64le": "ppc64le", "ppc64": "ppc64", "powerpc64": "ppc64",
    "ppc": "ppc", "powerpc": "ppc", "Power Macintosh": "ppc",
    "s390x": "s390x", "s390": "s390",
    "riscv64": "riscv64", "riscv32": "riscv32", "loongarch64": "loongarch64", "loong64": "loongarch64",
    "mips": "mips", "mipsel": "mipsel", "mips64": "mips64", "mips64el": "mips64el",
    "sparc64": "sparc64", "sun4u": "sparc64", "sun4v": "sparc64", "sparc": "sparc",
    "ia64": "ia64", "wasm32": "wasm32", "wasm64": "wasm64",
}


# --------------------------------------------------------------------------
# Independent readings of this machine
# --------------------------------------------------------------------------


def _uname_m() -> str:
    return subprocess.run(["uname", "-m"], capture_output=True, text=True, check=True).stdout.strip()


def _expected_arch() -> str:
    """This machine's arch, from ``uname -m`` and the interpreter's pointer size (``struct``)."""
    import struct

    raw = _uname_m()
    name = TABLE[raw]
    if struct.calcsize("P") == 4:
        name = {"x86_64": "x86", "arm64": "armv7"}.get(name, name)
    return name


def _expected_libc() -> tuple[str, str]:
    """Read ``ldd --version`` (glibc prints ``ldd (...) 2.36`` on stdout; musl prints its version on stderr)."""
    if not sys.platform.startswith("linux") or shutil.which("ldd") is None:
        return "unknown", "unknown"
    done = subprocess.run(["ldd", "--version"], capture_output=True, text=True, check=False)
    text = done.stdout + done.stderr
    if "musl" in text.lower():
        found = re.search(r"Version ([0-9.]+)", text)
        return "musl", found[1] if found else "unknown"
    first = done.stdout.splitlines()[0]
    assert "GLIBC" in first.upper() or "GNU libc" in first, first
    return "glibc", first.split()[-1]


def _expected_container(env: dict[str, str]) -> str:
    if env.get("KUBERNETES_SERVICE_HOST"):
        return "kubernetes"
    if Path("/run/.containerenv").exists():
        return "podman"
    if Path("/.dockerenv").exists():
        return "docker"
    release = Path("/proc/sys/kernel/osrelease")
    if (env.get("WSL_DISTRO_NAME") or Path("/proc/sys/fs/binfmt_misc/WSLInterop").exists()
            or (release.exists() and "microsoft" in release.read_text().lower())):
        return "wsl"
    return "none"


def _expected_free_threaded() -> str:
    built = bool(sysconfig.get_config_var("Py_GIL_DISABLED")) or "t" in getattr(sys, "abiflags", "")
    return "true" if built else "false"


def expected(env: dict[str, str], interface: str) -> dict[str, str]:
    libc, libc_version = _expected_libc()
    return {
        "python_minor": f"{sys.version_info[0]}.{sys.version_info[1]}",
        "free_threaded": _expected_free_threaded(),
        "arch": _expected_arch(),
        "machine": _uname_m() if sys.platform != "win32" else platform.machine(),
        "libc": libc,
        "libc_version": libc_version,
        "container": _expected_container(env) if sys.platform.startswith("linux") else "none",
        "interface": interface,
    }
