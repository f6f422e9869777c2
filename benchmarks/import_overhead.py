"""What the one ``autoping`` line costs the program that imports a package (issues 2 and 8).

Run it with the project installed (``pip install -e .``)::

    python benchmarks/import_overhead.py            # 31 interleaved rounds, ~1-2 minutes
    python benchmarks/import_overhead.py --runs 61  # tighter figures
    python benchmarks/import_overhead.py --quick    # smoke run

Throwaway packages, each compiled to ``.pyc`` once and imported by fresh child
interpreters against a loopback collector that answers after ``--delay`` seconds:

* ``plain``: an empty package (the baseline); ``control``: the same again, so the noise
  of a paired difference is visible;
* ``import threading``: a package that only imports ``threading``, which every
  thread-starting design pays and most real hosts already have loaded;
* ``autoping``: the one line; ``autoping, opted out``: the same with ``DO_NOT_TRACK=1``;
* diagnostics that say what the CPU-bound host pays for: a daemon thread that only
  imports ``requests``; one that runs the worker's warm-up (``requests``, ``urllib3``,
  ``distro`` and the platform facts) without any network; and, for contrast, a package
  that hands the same ping to a detached child process (its CPU is spent outside the
  host's GIL, on another core when there is one).

Two hosts: a short-lived one that times ``import pkg`` in-process, and a CPU-bound one
that imports, then runs a fixed pure-Python loop (~``--loop-ms`` milliseconds), timing
both together. Every round runs every variant in a fresh random order; figures are
medians and 90th percentiles of the per-round differences against ``plain`` (and
against ``import threading``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    CPU_CODE,
    IMPORT_CODE,
    Bench,
    Collector,
    Kind,
    Variant,
    calibrate_loop,
    child_env,
    machine_line,
    median,
    ms,
    p90,
    table,
    verdict,
)

TEMPLATE = "/p/{package}/{version}/{platform}/{python}/{arch}/{distro}"


def autoping_body(name: str, url: str) -> str:
    """The one line, as a library author writes it."""
    return f"from scarf_autoping import autoping; autoping({name!r}, {url + TEMPLATE!r})\n"


def process_body(name: str, url: str) -> str:
    """Diagnostic: the same ping handed to a detached child interpreter."""
    code = f"import requests; requests.get({url + '/p/' + name!r}, timeout=3)"
    return (
        "import subprocess, sys\n"
        f"subprocess.Popen([sys.executable, '-c', {code!r}], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,\n"
        "                 stderr=subprocess.DEVNULL, start_new_session=True)\n"
    )


def variants() -> list[Variant]:
    """The packages compared; ``plain`` is the baseline every difference is taken against."""
    return [
        Variant("plain", "plain package (baseline)", lambda n, u: "", pings=False),
        Variant("control", "plain package again (control: noise)", lambda n, u: "", pings=False),
        Variant("threading", "only `import threading`", lambda n, u: "import threading\n", pings=False),
        Variant("autoping", "the one `autoping` line", autoping_body),
        Variant("optout", "the one line, opted out (`DO_NOT_TRACK=1`)", autoping_body, {"DO_NOT_TRACK": "1"},
                pings=False),
        Variant("bgrequests", "diagnostic: daemon thread that only imports `requests`",
                lambda n, u: "import threading\nthreading.Thread(target=__import__, args=('requests',), "
                             "daemon=True).start()\n", pings=False),
        Variant("bgwarm", "diagnostic: daemon thread running the worker's warm-up, no network",
                lambda n, u: "import threading\n"
                             "def _warm():\n"
                             "    from scarf_autoping import facts, transport\n"
                             "    transport.warm_up()\n"
                             "    facts.platform_facts()\n"
                             "threading.Thread(target=_warm, daemon=True).start()\n", pings=False),
        Variant("process", "diagnostic: detached child process sends the same ping with `requests`",
                process_body,
                pings=False),
    ]


#: Where the one line's main-thread time goes, step by step, in one fresh interpreter.
BREAKDOWN_CODE = """import time
p = time.perf_counter
t0 = p(); import threading
t1 = p(); import scarf_autoping
t2 = p(); from scarf_autoping import engine
t3 = p(); scarf_autoping.autoping({name!r}, {template!r})
t4 = p()
print(' '.join(repr(b - a) for a, b in ((t0, t1), (t1, t2), (t2, t3), (t3, t4))))
"""
BREAKDOWN_STEPS = ("`import threading`", "`import scarf_autoping`", "`from scarf_autoping import engine`",
                   "the `autoping(...)` call (checks, policy, thread start)")


def breakdown(collector: Collector, runs: int) -> list[float | None]:
    """Median milliseconds of each step of :data:`BREAKDOWN_CODE` over ``runs`` children."""
    code = BREAKDOWN_CODE.format(name="breakdown-pkg", template=collector.url + TEMPLATE)
    samples: list[list[float]] = [[] for _ in BREAKDOWN_STEPS]
    env = child_env()
    for i in range(runs + 1):  # the first one warms up
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
        if i == 0 or proc.returncode:
            continue
        for step, value in zip(samples, proc.stdout.split()):
            step.append(float(value))
    return [median(step) for step in samples]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=31, help="interleaved rounds (default 31)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 5 rounds, shorter loop")
    parser.add_argument("--delay", type=float, default=0.05, help="collector answer delay in seconds (0.05)")
    parser.add_argument("--loop-ms", type=float, default=200.0, help="CPU-bound host loop length (200 ms)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the per-round shuffles")
    parser.add_argument("--json", metavar="PATH", help="also write every child's raw figures (seconds) to PATH")
    args = parser.parse_args(argv)
    runs = 5 if args.quick else args.runs
    loop_ms = 100.0 if args.quick else args.loop_ms

    collector = Collector(f"delay:{args.delay}")
    loop = calibrate_loop(loop_ms)
    kinds = [Kind("i", IMPORT_CODE, collector, runs), Kind("c", CPU_CODE, collector, runs)]
    bench = Bench(variants(), kinds, loop, seed=args.seed)
    try:
        bench.prepare()
        print(f"import_overhead: {runs} rounds, CPU loop {loop} iterations (~{loop_ms:.0f} ms), collector answers "
              f"after {args.delay * 1000:.0f} ms; {machine_line()}", file=sys.stderr)
        bench.run()
        failures = bench.failures()
        steps = breakdown(collector, runs)
    finally:
        bench.cleanup()
        collector.close()

    if args.json:
        Path(args.json).write_text(json.dumps({"loop": loop, "runs": runs, "results": bench.raw()}, indent=1),
                                   encoding="utf-8")

    rows = []
    for v in bench.variants:
        imp = bench.values("i", v.key)
        d_plain = bench.paired("i", v.key, "plain")
        d_thr = bench.paired("i", v.key, "threading")
        d_cpu = bench.paired("c", v.key, "plain")
        rows.append([
            v.label,
            ms(median(imp), 2),
            f"{ms(median(d_plain), 2)} / {ms(p90(d_plain), 2)}",
            f"{ms(median(d_thr), 2)} / {ms(p90(d_thr), 2)}",
            f"{ms(median(d_cpu))} / {ms(p90(d_cpu))}",
        ])
    headers = ["package", "`import pkg` ms (median)", "vs plain ms (median / p90)",
               "vs `import threading` ms (median / p90)", "CPU-bound host slowdown ms (median / p90)"]
    print(f"\n`python benchmarks/import_overhead.py{' --quick' if args.quick else ''}"
          f"{f' --runs {runs}' if runs != 31 and not args.quick else ''}`: {runs} interleaved rounds; "
          f"{machine_line()}; CPU loop ~{loop_ms:.0f} ms\n")
    print(table(headers, rows))

    def med(kind: str, key: str, ref: str) -> float | None:
        return median(bench.paired(kind, key, ref))

    targets = [
        ("autoping beyond `import threading` <= 0.5 ms", med("i", "autoping", "threading"), 0.0005),
        ("autoping against a plain package <= 4 ms", med("i", "autoping", "plain"), 0.004),
        ("opted out, against a plain package <= 0.3 ms", med("i", "optout", "plain"), 0.0003),
        ("CPU-bound host slowdown <= 5 ms", med("c", "autoping", "plain"), 0.005),
    ]
    print("\n" + table(["target", "measured median ms", "verdict"],
                       [[t, ms(v, 2), verdict(v, limit)] for t, v, limit in targets]))
    noise = bench.paired("i", "control", "plain")
    print(f"\nNoise (control vs plain, import): median {ms(median(noise), 2)} ms, p90 {ms(p90(noise), 2)} ms; "
          f"CPU-bound host: median {ms(median(bench.paired('c', 'control', 'plain')))} ms.")
    print("\nWhere the one line's main-thread time goes (medians, each step in a fresh interpreter):\n")
    print(table(["step", "ms (median)"], [[name, ms(v, 2)] for name, v in zip(BREAKDOWN_STEPS, steps)]))
    if failures:
        print(f"\n{len(failures)} child(ren) failed or wrote to stderr:")
        for line in failures[:10]:
            print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
