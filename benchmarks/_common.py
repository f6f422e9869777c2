"""Shared machinery for the benchmark scripts (not tests: they print numbers).

What is here, and why:

* :func:`child_env` builds a child environment from scratch (no ``CI``, no
  ``DO_NOT_TRACK``, no proxies), like ``tests/helpers.py`` does, but *with* bytecode
  caches allowed: a real install has ``.pyc`` files, and this shell sets
  ``PYTHONDONTWRITEBYTECODE=1``, which would make every import look slower than it is.
* :func:`write_package` writes a throwaway package with real ``dist-info`` metadata.
* :func:`wall_time` times one command to its exit with a blocking wait (``subprocess``'s
  own wait with a timeout polls, and rounds every figure up to the end of a sleep).
* :class:`Collector` is the tests' loopback HTTP server (``tests/loopback.py``, put on
  ``sys.path`` here): ``Collector("delay:0.05")`` answers after 50 ms, ``Collector("hang")``
  accepts and never answers; it records every request and when it arrived.
* :class:`Reaper` makes this process the *child subreaper* of everything it starts
  (Linux ``prctl``): a detached process that a host started and left behind (the
  library's detached sender, handed a ping at exit) is re-parented here instead of to
  init, so it can be waited for and measured (lifetime after its host exited, peak
  memory). Waiting for it before the next child starts keeps its CPU burst (it imports
  ``requests``) out of the next child's figures on a 2-CPU machine.
* :class:`CpuGroup` runs a host in a cgroup (v2) of its own, which every process it starts
  (and every process those start, orphans included) joins and never leaves: once the
  group is empty, its ``cpu.stat`` is the CPU the host cost the machine, all included.
  Where no cgroup v2 can be made, the figure comes from ``getrusage(RUSAGE_CHILDREN)``
  around the host and the orphans the :class:`Reaper` waited for (the same sum when
  nothing outlives the wait).
* :class:`Bench` writes one package per (round, kind, variant) into a per-round site
  directory (children run in the benchmark's temporary directory: a ``python -c`` host
  puts its working directory first on its path, and a checkout's ``scarf_autoping``
  there would shadow the one under test), compiles them once, warms up once, then runs
  rounds in which the variants are interleaved in a random order; results are paired per
  round so that differences against the baseline cancel out the machine's slow drifts.

Only the standard library and the installed project are needed; from ``tests/`` the
benchmarks import ``loopback.py`` alone (standard library only), so that tests and
benchmarks share one loopback server.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from loopback import Collector  # tests/loopback.py, put on the path just above

from scarf_autoping.policy import normalize

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable, Iterable, Sequence

PYTHON = sys.executable

#: Variables every child keeps from the parent so that the interpreter can start at all.
_KEEP = ("PATH", "SYSTEMROOT", "LANG", "LC_ALL", "TMPDIR", "TEMP", "TMP")

#: ``python -c`` code of a short-lived host: time ``import pkg`` in-process, print seconds.
IMPORT_CODE = "import time\nt = time.perf_counter()\nimport {name}\nprint(time.perf_counter() - t)\n"

#: A CPU-bound host: import, then a fixed pure-Python loop; import + loop timed in-process.
#: The loop is a real bytecode loop (not ``sum(range(n))``, which never lets another
#: thread take the GIL), so it competes with any background thread as real code does.
CPU_CODE = (
    "import time\n"
    "def work(n):\n"
    "    s = 0\n"
    "    for i in range(n):\n"
    "        s += i\n"
    "    return s\n"
    "t = time.perf_counter()\n"
    "import {name}\n"
    "work({loop})\n"
    "print(time.perf_counter() - t)\n"
)


def child_env(site: Path | str | None = None, **extra: str) -> dict[str, str]:
    """A minimal environment built from scratch: no CI, no opt-outs, no proxies, bytecode on."""
    env = {k: os.environ[k] for k in _KEEP if k in os.environ}
    env["PYTHONIOENCODING"] = "utf-8"
    if site is not None:
        env["PYTHONPATH"] = str(site)
    env.update(extra)
    return env


def write_package(site: Path, name: str, body: str, version: str = "1.0.0") -> None:
    """Write ``site/<name>/__init__.py`` and a real ``<name>-<version>.dist-info``."""
    pkg = site / name
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text(textwrap.dedent(body), encoding="utf-8")
    info = site / f"{name}-{version}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8")
    (info / "top_level.txt").write_text(f"{name}\n", encoding="utf-8")
    (info / "RECORD").write_text(f"{name}/__init__.py,,\n", encoding="utf-8")


def module_dir(name: str) -> Path | None:
    """The directory of an installed package, or None when it is not installed."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent


def compile_tree(paths: Iterable[Path]) -> None:
    """``python -m compileall -q`` over ``paths``: imports are then timed with ``.pyc`` files,
    as after a real ``pip install``."""
    proc = subprocess.run([PYTHON, "-m", "compileall", "-q", *map(str, paths)], env=child_env(), check=False,
                          capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"compileall failed:\n{proc.stdout}{proc.stderr}")


class ChildRun:
    """One child: exit code, the number it printed last (seconds, or None), wall seconds,
    stdout lines, stderr; ``ended``: ``time.perf_counter()`` when it had exited; ``orphans``:
    what the processes it left behind did (see :class:`Reaper`)."""

    __slots__ = ("ended", "lines", "machine_cpu", "orphans", "returncode", "stderr", "value", "wall")

    def __init__(self, returncode: int, value: float | None, wall: float, stderr: str, lines: list[str] | None = None,
                 ended: float = 0.0) -> None:
        self.returncode = returncode
        self.value = value
        self.wall = wall
        self.stderr = stderr
        self.lines = lines or []
        self.ended = ended
        self.orphans: list[Orphan] = []
        #: CPU seconds of the host and every process it started (see :class:`CpuGroup`), when measured.
        self.machine_cpu: float | None = None

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.stderr.strip()


def run_child(code: str, env: dict[str, str], timeout: float = 60.0,
              preexec_fn: Callable[[], None] | None = None, cwd: Path | str | None = None) -> ChildRun:
    """Run ``python -c code`` with exactly ``env``; wall time measured around the process.

    The wall time ends when the child has exited *and* its stdout/stderr pipes are closed,
    as a caller reading its output sees it: a detached process that kept them open would
    show up here.
    """
    started = time.perf_counter()
    try:
        proc = subprocess.run([PYTHON, "-c", code], env=env, capture_output=True, text=True, timeout=timeout,
                              check=False, stdin=subprocess.DEVNULL, preexec_fn=preexec_fn, cwd=cwd)
    except subprocess.TimeoutExpired:
        ended = time.perf_counter()
        return ChildRun(-1, None, ended - started, "timed out", ended=ended)
    ended = time.perf_counter()
    value = None
    lines = proc.stdout.strip().splitlines()
    if lines:
        try:
            value = float(lines[-1])
        except ValueError:
            value = None
    return ChildRun(proc.returncode, value, ended - started, proc.stderr, lines, ended)


def wall_time(argv: Sequence[str], env: dict[str, str], cap: float = 60.0) -> float:
    """Seconds from starting ``argv`` (output to the null device) to its exit; ``inf`` past ``cap``.

    The wait blocks in ``waitpid``. ``subprocess.run(..., timeout=...)`` without pipes
    would poll instead, sleeping 0.5, 1, 2, 4 ... 50 ms between looks, and every figure
    would be rounded up to the end of a sleep (a 20 ms command measured as 31.5 ms, a
    35 ms one as 63.5 ms). ``cap`` is kept by a timer that kills the process.
    """
    killed: list[bool] = []

    def kill() -> None:
        killed.append(True)
        proc.kill()

    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    timer = threading.Timer(cap, kill)
    timer.start()
    try:
        proc.wait()
    finally:
        timer.cancel()
    ended = time.perf_counter()
    return float("inf") if killed else ended - started


def figure(run: ChildRun, field: str | int) -> float | None:
    """One figure of a child: ``"value"`` (the number it printed last), ``"wall"``, or the
    number on stdout line ``field`` when ``field`` is an int (None when there is none)."""
    if not isinstance(field, int):
        return getattr(run, field)
    try:
        return float(run.lines[field])
    except (IndexError, ValueError):
        return None


def calibrate_loop(target_ms: float) -> int:
    """The loop size for which :data:`CPU_CODE`'s loop takes about ``target_ms`` in a child."""
    probe = 1_000_000
    code = CPU_CODE.replace("import {name}\n", "").format(loop=probe)
    times = [run_child(code, child_env()).value or 0.0 for _ in range(3)]
    per_iter = statistics.median(times) / probe
    return max(10_000, int(target_ms / 1000 / per_iter)) if per_iter > 0 else probe


def first_arrivals(collector: Collector) -> dict[str, float]:
    """Package name (a path's second segment: ``/p/<name>/...``) -> when its first request
    arrived at the collector (``time.perf_counter()``)."""
    out: dict[str, float] = {}
    for request in list(collector.requests):
        name = path_name(request.target)
        if name is not None and name not in out:
            out[name] = request.perf
    return out


def path_name(path: str) -> str | None:
    """The package name in a request path ``/<prefix>/<name>/...``, PEP 503 normalised, or None.

    ``{package}`` is the distribution's normalised name (``bench_x_i3`` arrives as
    ``bench-x-i3``); the other variants send the name as it is. Both sides of a look-up
    are normalised, so every variant's requests are attributed.
    """
    parts = path.split("?")[0].split("/")
    return normalize(parts[2]) if len(parts) > 2 else None


class Orphan:
    """A process a child left behind, re-parented to us: its pid, when its host had exited
    (``since``), seconds from then to its exit (``lifetime``, None while unknown or when it
    was only seen late), peak memory in MiB and CPU seconds (from ``wait4``)."""

    __slots__ = ("cpu", "lifetime", "maxrss", "pid", "since")

    def __init__(self, pid: int, since: float) -> None:
        self.pid = pid
        self.since = since
        self.lifetime: float | None = None
        self.maxrss: float | None = None
        self.cpu: float | None = None


class Reaper:
    """This process as the child subreaper of everything it starts (Linux only).

    :meth:`settle` is called after each child: it finds the processes the child left
    behind (now ours), and polls them every 2 ms until they exit or ``cap`` seconds have
    passed; those still alive are polled again at each later call and by :meth:`drain`.
    Where there is no subreaper (not Linux), every method is a no-op and figures that need
    it say ``n/a``.
    """

    POLL = 0.002

    def __init__(self) -> None:
        self.enabled = False
        self.pending: list[Orphan] = []
        self.done: list[Orphan] = []
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                self.enabled = libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
            except (OSError, AttributeError):
                self.enabled = False

    def _adopted(self) -> list[int]:
        """Our children that we did not start ourselves: /proc is scanned for them (~2 ms)."""
        me, out, known = os.getpid(), [], {o.pid for o in self.pending}
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) in known:
                continue
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                    stat = f.read()
                if int(stat.rsplit(")", 1)[1].split()[1]) == me:
                    out.append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
        return out

    def _poll(self, precise: Sequence[Orphan] = ()) -> None:
        """Reap the orphans that have exited; a lifetime is recorded for those in ``precise``
        only (being polled every few ms since their host exited), else it is left None."""
        for orphan in self.pending[:]:
            try:
                pid, _, usage = os.wait4(orphan.pid, os.WNOHANG)
            except ChildProcessError:
                pid, usage = orphan.pid, None
            if not pid:
                continue
            if orphan in precise:
                orphan.lifetime = time.perf_counter() - orphan.since
            if usage is not None:
                orphan.maxrss = usage.ru_maxrss / 1024
                orphan.cpu = usage.ru_utime + usage.ru_stime
            self.pending.remove(orphan)
            self.done.append(orphan)

    def settle(self, since: float, cap: float) -> list[Orphan]:
        """The processes the child that exited at ``since`` left behind, waited for at most ``cap`` s."""
        if not self.enabled:
            return []
        self._poll()  # stragglers of earlier children
        new = [Orphan(pid, since) for pid in self._adopted()]
        self.pending.extend(new)
        deadline = time.perf_counter() + cap
        while any(o in self.pending for o in new) and time.perf_counter() < deadline:
            time.sleep(self.POLL)
            self._poll(new)
        return new

    def drain(self, timeout: float) -> bool:
        """Wait until every orphan has exited (at most ``timeout`` s); True when none is left."""
        deadline = time.perf_counter() + timeout
        self._poll()
        while self.pending and time.perf_counter() < deadline:
            time.sleep(0.02)
            self._poll()
        return not self.pending


def wait_for_arrivals(collector: Collector, names: Iterable[str], reaper: Reaper, timeout: float = 20.0,
                      quiet: float = 1.0) -> None:
    """Wait until a request for every name in ``names`` has arrived, or nothing more can come.

    Pings handed over at exit arrive after their host has gone, sent by a detached process.
    With a subreaper, "nothing more can come" is: every such process has exited, then
    ``quiet`` seconds without a new arrival; without one, ``quiet`` is stretched to 3 s.
    """
    wanted = {normalize(name) for name in names}
    deadline = time.perf_counter() + timeout
    quiet = quiet if reaper.enabled else max(quiet, 3.0)
    last, count = time.perf_counter(), -1
    while time.perf_counter() < deadline:
        arrived = first_arrivals(collector)
        if wanted <= arrived.keys():
            return
        if len(arrived) != count:
            last, count = time.perf_counter(), len(arrived)
        reaper.drain(0.0)
        if not reaper.pending and time.perf_counter() - last >= quiet:
            return
        time.sleep(0.05)


class CpuGroup:
    """Cgroups (v2) of our own, one per host, to count the CPU of everything it starts (Linux).

    A process joins its parent's cgroup when it is forked and stays there, re-parented or
    not, so a host started in an empty group of its own takes the shell and the detached
    sender it starts with it. :meth:`measure` waits until the group is empty (every such
    process has exited) and returns its ``cpu.stat`` ``usage_usec`` in seconds. No
    controller needs to be enabled: ``cpu.stat`` is kept for every cgroup. ``enabled`` is
    False where none can be made (no cgroup v2 mounted, not allowed): callers fall back.
    """

    def __init__(self) -> None:
        self.root: Path | None = None
        self.enabled = False
        self._count = 0
        if not sys.platform.startswith("linux"):
            return
        try:
            mount = None
            with open("/proc/self/mountinfo", encoding="utf-8") as f:
                for line in f:
                    left, _, right = line.partition(" - ")
                    if right.split(" ")[0] == "cgroup2":
                        mount = left.split(" ")[4]
                        break
            with open("/proc/self/cgroup", encoding="utf-8") as f:
                own = next((line.strip()[3:] for line in f if line.startswith("0::")), None)
            if mount is None or own is None:
                return
            root = Path(mount + own.rstrip("/")) / f"scarf-autoping-bench-{os.getpid()}"
            root.mkdir()
            self.root = root
            probe = self.make()
            self.enabled = (probe / "cpu.stat").exists() and (probe / "cgroup.procs").exists()
            self.remove(probe)
        except OSError:
            self.enabled = False

    def make(self) -> Path:
        """A new, empty group."""
        assert self.root is not None
        self._count += 1
        group = self.root / f"host-{self._count}"
        group.mkdir()
        return group

    @staticmethod
    def joiner(group: Path) -> Callable[[], None]:
        """A ``preexec_fn`` that puts the child into ``group`` before it ``exec``s (system calls only)."""
        path = os.fsencode(str(group / "cgroup.procs"))

        def join() -> None:
            fd = os.open(path, os.O_WRONLY)
            try:
                os.write(fd, b"0")  # "0": the writing process itself
            finally:
                os.close(fd)

        return join

    @staticmethod
    def populated(group: Path) -> bool:
        with open(group / "cgroup.events", encoding="ascii") as f:
            return any(line.split() == ["populated", "1"] for line in f)

    def measure(self, group: Path, cap: float, reaper: Reaper | None = None) -> float | None:
        """CPU seconds of everything that ran in ``group``, once it is empty; None if it is not within ``cap`` s."""
        deadline = time.perf_counter() + cap
        while self.populated(group):
            if reaper is not None:
                reaper.drain(0.0)  # re-parented orphans exit as zombies: ours to reap
            if time.perf_counter() > deadline:
                return None
            time.sleep(0.005)
        with open(group / "cpu.stat", encoding="ascii") as f:
            usage = next(int(line.split()[1]) for line in f if line.startswith("usage_usec "))
        return usage / 1e6

    @staticmethod
    def remove(group: Path) -> None:
        try:
            group.rmdir()
        except OSError:
            pass

    def close(self) -> None:
        if self.root is not None:
            for group in self.root.glob("host-*"):
                self.remove(group)
            self.remove(self.root)


def children_cpu() -> float:
    """CPU seconds of every child this process has waited for (``RUSAGE_CHILDREN``)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Variant:
    """One throwaway package: ``body(name, collector_url)`` is its ``__init__`` source;
    ``env`` is added to the child's environment (e.g. an opt-out variable; ``{site}`` in a
    value is the round's site directory, which is otherwise ``PYTHONPATH``)."""

    def __init__(self, key: str, label: str, body: Callable[[str, str], str], env: dict[str, str] | None = None,
                 pings: bool = True, prime: bool = False) -> None:
        self.key = key
        self.label = label
        self.body = body
        self.env = env or {}
        self.pings = pings
        #: Run each package once, unmeasured, before its measured run (a state left behind,
        #: such as a fresh ``once_per`` stamp, is then what the measured run finds).
        self.prime = prime


class Kind:
    """One way of running a host: ``code`` (with ``{name}`` and ``{loop}``), the collector
    its packages talk to, how many rounds it takes part in, how long to wait after each
    child for the processes it left behind (``settle``, seconds; see :class:`Reaper`), and
    whether the warm-up pass runs it (``warm``; slow kinds need not: their packages are
    compiled like the others), and whether each host runs in a cgroup of its own to count
    the CPU of everything it starts (``machine``; see :class:`CpuGroup`)."""

    def __init__(self, key: str, code: str, collector: Collector, rounds: int, settle: float = 2.0,
                 warm: bool = True, machine: bool = False) -> None:
        self.key = key
        self.code = code
        self.collector = collector
        self.rounds = rounds
        self.settle = settle
        self.warm = warm
        self.machine = machine


def package_name(variant: Variant, kind: Kind, rnd: str) -> str:
    """Unique per (variant, kind, round), so the collector can attribute every request."""
    return f"bench_{variant.key}_{kind.key}{rnd}"


class Bench:
    """Interleaved, paired measurements of ``variants`` under each of ``kinds``.

    ``results[kind][variant][round]`` is a :class:`ChildRun`.
    """

    def __init__(self, variants: Sequence[Variant], kinds: Sequence[Kind], loop: int, seed: int = 0,
                 progress: bool = True, reaper: Reaper | None = None, settle: bool = True) -> None:
        self.reaper = reaper or Reaper()
        self.settle = settle
        self.groups = CpuGroup() if any(k.machine for k in kinds) else None
        self.variants = list(variants)
        self.kinds = list(kinds)
        self.loop = loop
        self.rng = random.Random(seed)
        self.progress = progress
        self.root = Path(tempfile.mkdtemp(prefix="scarf-autoping-bench-"))
        self.results: dict[str, dict[str, dict[int, ChildRun]]] = {
            k.key: {v.key: {} for v in self.variants} for k in self.kinds
        }

    def _site(self, rnd: str) -> Path:
        return self.root / f"site_{rnd}"

    def prepare(self, extra_compile: Iterable[str] = ("scarf_autoping",)) -> None:
        """Write every package, compile them (and the installed libraries they use) once."""
        rounds = max(k.rounds for k in self.kinds)
        for rnd in ["w", *map(str, range(rounds))]:
            site = self._site(rnd)
            for kind in self.kinds:
                for variant in self.variants:
                    name = package_name(variant, kind, rnd)
                    write_package(site, name, variant.body(name, kind.collector.url))
        dirs = [self.root]
        for mod in extra_compile:
            found = module_dir(mod)
            if found is not None:
                dirs.append(found)
        compile_tree(dirs)

    def _run(self, kind: Kind, variant: Variant, rnd: str) -> ChildRun:
        name = package_name(variant, kind, rnd)
        site = str(self._site(rnd))
        env = child_env(site, **{k: v.replace("{site}", site) for k, v in variant.env.items()})
        code = kind.code.format(name=name, loop=self.loop)
        if variant.prime:
            primer = run_child(code, env, cwd=self.root)
            self.reaper.settle(primer.ended, kind.settle)
            self.reaper.drain(kind.settle)
        if not kind.machine:
            run = run_child(code, env, cwd=self.root)
            run.orphans = self.reaper.settle(run.ended, kind.settle if self.settle else 0.0)
            return run
        groups = self.groups
        if groups is not None and groups.enabled:
            group = groups.make()
            try:
                run = run_child(code, env, preexec_fn=groups.joiner(group), cwd=self.root)
                run.orphans = self.reaper.settle(run.ended, kind.settle)
                run.machine_cpu = groups.measure(group, kind.settle + 10.0, self.reaper)
            finally:
                groups.remove(group)
            return run
        before = children_cpu()  # no cgroup: what we waited for, the host and the orphans it left us
        run = run_child(code, env, cwd=self.root)
        run.orphans = self.reaper.settle(run.ended, kind.settle)
        complete = self.reaper.enabled and all(o.cpu is not None for o in run.orphans)
        run.machine_cpu = children_cpu() - before if complete else None
        return run

    def run(self) -> None:
        """One warm-up pass (not recorded), then the rounds, variants shuffled in each."""
        for kind in self.kinds:
            if kind.rounds and kind.warm:
                for variant in self.variants:
                    self._run(kind, variant, "w")
        rounds = max(k.rounds for k in self.kinds)
        started = time.monotonic()
        for rnd in range(rounds):
            for kind in self.kinds:
                if rnd >= kind.rounds:
                    continue
                order = list(self.variants)
                self.rng.shuffle(order)
                for variant in order:
                    self.results[kind.key][variant.key][rnd] = self._run(kind, variant, str(rnd))
            if self.progress:
                print(f"  round {rnd + 1}/{rounds} done ({time.monotonic() - started:.0f} s)", file=sys.stderr)

    def failures(self) -> list[str]:
        """One line per child that exited non-zero or wrote to stderr."""
        out = []
        for kind, by_variant in self.results.items():
            for variant, runs in by_variant.items():
                for rnd, run in sorted(runs.items()):
                    if not run.ok:
                        out.append(f"{kind}/{variant}/round {rnd}: rc={run.returncode} {run.stderr.strip()[-300:]}")
        return out

    def values(self, kind: str, variant: str, field: str | int = "value") -> list[float]:
        """The raw per-round measurements (seconds) of one variant (see :func:`figure` for ``field``)."""
        runs = self.results[kind][variant]
        return [f for f in (figure(r, field) for _, r in sorted(runs.items())) if f is not None]

    def paired(self, kind: str, variant: str, reference: str, field: str | int = "value") -> list[float]:
        """Per-round differences ``variant - reference`` (seconds), rounds where both ran."""
        mine, ref = self.results[kind][variant], self.results[kind][reference]
        out = []
        for rnd in sorted(set(mine) & set(ref)):
            a, b = figure(mine[rnd], field), figure(ref[rnd], field)
            if a is not None and b is not None:
                out.append(a - b)
        return out

    def names(self, kind: Kind, variants: Iterable[Variant]) -> list[str]:
        """The package names of every recorded child of ``variants`` under ``kind``."""
        return [package_name(v, kind, str(rnd)) for v in variants for rnd in self.results[kind.key][v.key]]

    def arrivals(self, kind: Kind, variant: Variant) -> list[float | None]:
        """Per recorded child: seconds from its exit to its first request's arrival at the
        collector (negative: it arrived while the child lived), None if none arrived.

        Call it once the collector has settled (see :func:`wait_for_arrivals`)."""
        first = first_arrivals(kind.collector)
        out: list[float | None] = []
        for rnd, run in sorted(self.results[kind.key][variant.key].items()):
            when = first.get(normalize(package_name(variant, kind, str(rnd))))
            out.append(None if when is None else when - run.ended)
        return out

    def delivered(self, kind: Kind, variant: Variant) -> tuple[int, int]:
        """(children whose request reached the collector, children run) for one variant."""
        got = self.arrivals(kind, variant)
        return sum(1 for a in got if a is not None), len(got)

    def orphans(self, kind: str, variant: str) -> list[Orphan]:
        """The processes the children of one variant left behind (see :class:`Reaper`)."""
        return [o for _, r in sorted(self.results[kind][variant].items()) for o in r.orphans]

    def raw(self) -> dict[str, dict[str, list[dict[str, object]]]]:
        """Every child's figures (seconds), for ``--json``: kind -> variant -> rounds."""
        return {
            kind: {
                variant: [{"round": rnd, "value": r.value, "wall": r.wall, "returncode": r.returncode,
                           "machine_cpu": r.machine_cpu,
                           "stdout": r.lines,
                           "orphans": [{"lifetime": o.lifetime, "maxrss_mib": o.maxrss, "cpu": o.cpu}
                                       for o in r.orphans]}
                          for rnd, r in sorted(runs.items())]
                for variant, runs in by_variant.items()
            }
            for kind, by_variant in self.results.items()
        }

    def cleanup(self) -> None:
        self.reaper.drain(10.0)
        if self.groups is not None:
            self.groups.close()
        shutil.rmtree(self.root, ignore_errors=True)


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def p90(values: Sequence[float]) -> float | None:
    """90th percentile, linear interpolation between the closest ranks."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=10, method="inclusive")[-1]


def ms(seconds: float | None, digits: int = 1) -> str:
    """Seconds as a millisecond string with a sign for differences; ``n/a`` for None."""
    if seconds is None:
        return "n/a"
    return f"{seconds * 1000:.{digits}f}"


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def verdict(value: float | None, limit: float, p90: float | None = None) -> str:
    """``met`` / ``MISSED`` for a measured median (seconds) against a limit (seconds); when the
    90th percentile is given and over the limit, a met median says so."""
    if value is None:
        return "not measured"
    if value > limit:
        return "MISSED"
    return "met" if p90 is None or p90 <= limit else "met (median; p90 over)"


def median_p90(values: Sequence[float], digits: int = 1) -> str:
    """``median / p90`` in milliseconds."""
    return f"{ms(median(values), digits)} / {ms(p90(values), digits)}"


def machine_line() -> str:
    """One line saying where the figures come from (the load average shows a busy machine)."""
    import platform

    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    return (f"Python {platform.python_version()} ({platform.python_implementation()}) on {platform.system()} "
            f"{platform.machine()}, {os.cpu_count()} CPUs{load}")
