"""Test helpers: throwaway packages with real metadata and child interpreters with a
controlled environment. The loopback HTTP server is in ``loopback.py``.

Child processes never inherit the test runner's environment (CI sets ``CI=true``, a
developer may have ``DO_NOT_TRACK`` set): :func:`child_env` builds one from scratch.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

#: Seconds to wait before concluding that *nothing* arrived from a short-lived child: longer
#: than a hand-over at exit takes (a detached sender starting and importing requests).
NOTHING_QUIET = 1.5

#: What a case needs of the platform, for the behaviour files that gather cases from
#: several suites (a file whose every case needs it says so in its ``pytestmark``).
needs_posix_spawn = pytest.mark.skipif(not hasattr(os, "posix_spawn"), reason="the detached sender needs posix_spawn")
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="Linux process semantics (/proc, fork, signals, PID namespaces, cgroups)")

#: Seconds a host run by :func:`run_host` may take before it counts as hung (each case
#: expects a few seconds).
HOST_HANG = 60.0

#: Variables every child keeps from the parent so the interpreter can start at all.
_KEEP = ("PATH", "SYSTEMROOT", "LANG", "LC_ALL", "TMPDIR", "TEMP", "TMP")


def child_env(site: Path | str | None = None, **extra: str) -> dict[str, str]:
    """A minimal environment: no CI, no opt-outs, no proxies, our site dir on PYTHONPATH."""
    env = {k: os.environ[k] for k in _KEEP if k in os.environ}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    if site is not None:
        env["PYTHONPATH"] = str(site)
    env.update(extra)
    return env


def make_package(
    site: Path,
    name: str,
    body: str = "",
    *,
    version: str | None = "1.2.3",
    dist_name: str | None = None,
) -> Path:
    """Write ``site/<name>/__init__.py`` (``body`` dedented) and, unless ``version`` is
    None, a real ``<dist>-<version>.dist-info`` with METADATA, RECORD and top_level.txt."""
    site.mkdir(parents=True, exist_ok=True)
    pkg = site / name
    pkg.mkdir(exist_ok=True)
    (pkg / "__init__.py").write_text(textwrap.dedent(body), encoding="utf-8")
    if version is not None:
        dist = dist_name or name
        info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir(exist_ok=True)
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n", encoding="utf-8"
        )
        (info / "top_level.txt").write_text(f"{name}\n", encoding="utf-8")
        (info / "RECORD").write_text(f"{name}/__init__.py,,\n", encoding="utf-8")
    return pkg


def autoping_package(site: Path, name: str, template: str, *, args: str = "", version: str | None = "1.2.3",
                     dist_name: str | None = None) -> Path:
    """A throwaway package whose ``__init__`` is the one ``autoping`` line."""
    call = f"autoping({(dist_name or name)!r}, {template!r}{', ' + args if args else ''})"
    return make_package(site, name, f"from scarf_autoping import autoping; PING = {call}\n",
                        version=version, dist_name=dist_name)


#: Makes the child look like an embedding program with no Python interpreter to be found
#: (as on Windows, in a frozen app, or inside an embedding binary with no python next to it).
NO_INTERPRETER = (
    "import sys\n"
    "sys.executable = '/nonexistent/bin/embedder'\n"
    "sys.exec_prefix = sys.base_exec_prefix = '/nonexistent'\n"
)

#: Templates of a ping in the path and in the query, for :func:`collector_template`.
PATH_T = "{base}/t/{package}/{version}/{os}/{python}/{arch}/{distro}"
QUERY_T = "{base}/q{?package,version,platform,python,arch,distro,ci}"


def collector_template(collector: object, shape: str) -> str:
    """``shape`` (:data:`PATH_T` or :data:`QUERY_T`) with the collector's URL as its base."""
    return shape.replace("{base}", collector.url)  # type: ignore[attr-defined]


class ChildResult:
    """What a child interpreter did: exit code, output and wall time in seconds."""

    def __init__(self, returncode: int, stdout: str, stderr: str, seconds: float) -> None:
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.seconds = seconds

    def __repr__(self) -> str:
        return f"<ChildResult rc={self.returncode} {self.seconds:.2f}s out={self.stdout!r} err={self.stderr!r}>"


def run_child(code: str, env: dict[str, str], *, args: tuple[str, ...] = (), timeout: float = 30.0,
              cwd: Path | str | None = None) -> ChildResult:
    """Run ``python [args] -c code`` with exactly ``env``; kill it after ``timeout`` seconds."""
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, *args, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )
    return ChildResult(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)


def run_host(code: str, env: dict[str, str], *, timeout: float = HOST_HANG,
             expected: str = "a few seconds") -> ChildResult:
    """``run_child``, with a hang reported as a test failure that says what was expected."""
    started = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True,
                              text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the host hung: still running after {timeout:.0f} s (expected {expected}); "
                    f"stdout={exc.stdout!r} stderr={exc.stderr!r}", pytrace=False)
    return ChildResult(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)
