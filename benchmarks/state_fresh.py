"""What the per-user state costs the host's import (issue 18), and what a fresh stamp saves.

Run it with the project installed (``pip install -e .``)::

    python benchmarks/state_fresh.py            # 21 interleaved rounds, ~1-2 minutes
    python benchmarks/state_fresh.py --quick    # smoke run

Throwaway packages, each compiled to ``.pyc`` once, imported by fresh child interpreters
(``HOME`` and ``XDG_STATE_HOME`` in a temporary directory), against a loopback collector:

* ``plain``: an empty package (the baseline); ``control``: the same again (the noise);
* ``fresh``: the one line with ``once_per="day"``, whose ping was delivered before the
  rounds start: the process finds the stamp and starts nothing;
* ``disabled``: the one line after ``scarf-autoping disable`` (the saved setting);
* ``optout`` and ``optout, no state``: the one line with ``DO_NOT_TRACK=1``, with the state
  directory and with ``SCARF_AUTOPING_STATE_DIR=`` (no state at all, as before issue 18);
* ``autoping`` and ``autoping, no state``: the one line (a ping per process), with and
  without the state directory: the difference is what the import path's look at the
  state costs (one ``open`` of a consent file and of a hold file that do not exist, two
  ``os.stat`` calls).

Each child prints its main-thread ``import pkg`` time; the parent takes the child's CPU
time (user + system) from ``os.wait4``. A ping's detached sender is not the child's, so
its CPU is not counted here (``benchmarks/compare.py`` counts it); after a child that
pings, the next one starts only once the collector has its ping (or a second has passed).
Every round runs every variant in a fresh random order; figures are medians of the
per-round differences against ``plain``.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    IMPORT_CODE,
    PYTHON,
    Collector,
    child_env,
    compile_tree,
    machine_line,
    median,
    ms,
    table,
    verdict,
    write_package,
)

TEMPLATE = "/p/{package}/{version}/{platform}/{python}/{arch}"


#: An empty package in a directory of its own on ``sys.path`` (as the editable
#: ``scarf_autoping`` is): what importing any one more package costs the host.
EMPTY_DEPENDENCY = "bench_state_empty_dependency"


def line(name: str, url: str, extra: str = "") -> str:
    return f"from scarf_autoping import autoping; autoping({name!r}, {url + TEMPLATE!r}{extra})\n"


#: key: (label, body(name, url), extra environment, pings)
VARIANTS = {
    "plain": ("plain package (baseline)", lambda n, u: "", {}, False),
    "control": ("plain package again (control: noise)", lambda n, u: "", {}, False),
    "emptydep": ("for scale: a package that imports an empty package (any dependency's least cost)",
                 lambda n, u: f"import {EMPTY_DEPENDENCY}\n", {}, False),
    "fresh": ('`once_per="day"`, fresh stamp: starts nothing', lambda n, u: line(n, u, ", once_per='day'"), {}, False),
    "disabled": ("after `scarf-autoping disable`", lambda n, u: line(n, u), {"@consent": "off"}, False),
    "optout": ("opted out (`DO_NOT_TRACK=1`)", lambda n, u: line(n, u), {"DO_NOT_TRACK": "1"}, False),
    "optout_nostate": ("opted out, no state (`SCARF_AUTOPING_STATE_DIR=`)", lambda n, u: line(n, u),
                       {"DO_NOT_TRACK": "1", "SCARF_AUTOPING_STATE_DIR": ""}, False),
    "autoping": ("the one line, a ping per process", lambda n, u: line(n, u), {}, True),
    "autoping_nostate": ("the one line, no state (`SCARF_AUTOPING_STATE_DIR=`)", lambda n, u: line(n, u),
                         {"SCARF_AUTOPING_STATE_DIR": ""}, True),
}


#: The same with ``scarf_autoping`` imported first (as by another package): what the line itself costs.
PRELOADED_CODE = "import scarf_autoping\n" + IMPORT_CODE


def run(name: str, env: dict[str, str], code: str = IMPORT_CODE) -> tuple[float | None, float | None]:
    """``(import seconds, child CPU seconds)`` of one ``python -c code``; Nones if it failed."""
    proc = subprocess.Popen([PYTHON, "-c", code.format(name=name)], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.stdout.read(), proc.stderr.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    proc.stdout.close()  # type: ignore[union-attr]
    proc.stderr.close()  # type: ignore[union-attr]
    if status or err.strip():
        print(f"  {name}: exit {status}, stderr {err[:200]!r}", file=sys.stderr)
        return None, None
    return float(out.split()[-1]), usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=21, help="interleaved rounds (default 21)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 5 rounds")
    parser.add_argument("--seed", type=int, default=0, help="seed of the per-round shuffles")
    args = parser.parse_args(argv)
    runs = 5 if args.quick else args.runs

    collector = Collector()
    root = Path(tempfile.mkdtemp(prefix="state-bench-"))
    try:
        site = root / "site"
        home = root / "home"
        home.mkdir()
        disabled_state = root / "disabled-state"
        disabled_state.mkdir()
        (disabled_state / "consent").write_text("off\n", encoding="utf-8")
        names = {}
        envs = {}
        deps = root / "deps"
        (deps / EMPTY_DEPENDENCY).mkdir(parents=True)
        (deps / EMPTY_DEPENDENCY / "__init__.py").write_text("", encoding="utf-8")
        for key, (_, body, extra, _) in VARIANTS.items():
            name = f"bench_state_{key}"
            names[key] = name
            write_package(site, name, body(name, collector.url))
            env = child_env(site, HOME=str(home), XDG_STATE_HOME=str(home / "state"))
            if key == "emptydep":  # only there: each sys.path entry costs every later import a look
                env["PYTHONPATH"] += os.pathsep + str(deps)
            env.update({k: v for k, v in extra.items() if not k.startswith("@")})
            if "@consent" in extra:
                env["SCARF_AUTOPING_STATE_DIR"] = str(disabled_state)
            envs[key] = env
        compile_tree([site, deps])
        # The fresh stamp: one process delivers the ping; then every later one finds it.
        before = len(collector.requests)
        run(names["fresh"], envs["fresh"])
        deadline = time.monotonic() + 10
        while len(collector.requests) == before and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        for key in VARIANTS:  # warm the page cache
            run(names[key], envs[key])
        time.sleep(1.0)
        print(f"state_fresh: {runs} rounds; {machine_line()}", file=sys.stderr)
        rng = random.Random(args.seed)
        results: dict[str, list[tuple[float | None, float | None]]] = {key: [] for key in VARIANTS}
        preloaded: dict[str, list[tuple[float | None, float | None]]] = {key: [] for key in VARIANTS}
        for _ in range(runs):
            order = [(key, kind) for key in VARIANTS for kind in (results, preloaded)]
            rng.shuffle(order)
            for key, kind in order:
                count = len(collector.requests)
                kind[key].append(run(names[key], envs[key], IMPORT_CODE if kind is results else PRELOADED_CODE))
                if VARIANTS[key][3]:  # its sender: out of the way before the next child
                    deadline = time.monotonic() + 1.0
                    while len(collector.requests) == count and time.monotonic() < deadline:
                        time.sleep(0.01)
                    time.sleep(0.05)
        stamped = len(collector.settle(0.3))
    finally:
        collector.close()
        shutil.rmtree(root, ignore_errors=True)

    def paired(key: str, field: int, ref: str = "plain", source: dict | None = None) -> list[float]:
        source = results if source is None else source
        return [a[field] - b[field] for a, b in zip(source[key], source[ref])  # type: ignore[operator]
                if a[field] is not None and b[field] is not None]

    rows = []
    for key, (label, *_rest) in VARIANTS.items():
        rows.append([label, ms(median([r[0] for r in results[key] if r[0] is not None]), 2),
                     ms(median(paired(key, 0)), 3), ms(median(paired(key, 1)), 2),
                     ms(median(paired(key, 0, source=preloaded)), 3)])
    print(f"\n`python benchmarks/state_fresh.py{' --quick' if args.quick else ''}`: {runs} interleaved rounds; "
          f"{machine_line()}\n")
    print(table(["package", "`import pkg` ms (median)", "main thread vs plain ms (median)",
                 "child CPU vs plain ms (median)",
                 "main thread vs plain, `scarf_autoping` already imported ms (median)"], rows))
    targets = [
        ("fresh stamp vs plain, main thread <= 0.1 ms (includes `import scarf_autoping`)",
         median(paired("fresh", 0)), 0.0001),
        ("for scale, not a target: an empty package vs plain, main thread <= 0.1 ms",
         median(paired("emptydep", 0)), 0.0001),
        ("fresh stamp, the line itself (scarf_autoping already imported) vs plain <= 0.1 ms",
         median(paired("fresh", 0, source=preloaded)), 0.0001),
        ("fresh stamp vs opted out, main thread <= 0.1 ms", median(
            [a[0] - b[0] for a, b in zip(results["fresh"], results["optout"]) if a[0] and b[0]]), 0.0001),
        ("fresh stamp vs opted out, child CPU <= 1 ms", median(
            [a[1] - b[1] for a, b in zip(results["fresh"], results["optout"]) if a[1] and b[1]]), 0.001),
        ("fresh stamp vs plain, child CPU <= 1 ms (includes `import scarf_autoping`)", median(paired("fresh", 1)),
         0.001),
        ("the state's look on the import path (autoping vs no state) <= 0.1 ms", median(
            [a[0] - b[0] for a, b in zip(results["autoping"], results["autoping_nostate"]) if a[0] and b[0]]), 0.0001),
        ("opted out: with state vs without <= 0.05 ms", median(
            [a[0] - b[0] for a, b in zip(results["optout"], results["optout_nostate"]) if a[0] and b[0]]), 0.00005),
    ]
    print("\n" + table(["target", "measured median ms", "verdict"], [[t, ms(v, 3), verdict(v, lim)]
                                                                       for t, v, lim in targets]))
    print(f"\nPings that reached the collector: {stamped} (the stamp's one, plus one per `autoping` child).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
