"""This library's one line against the other ways a package pings on import (issues 5 and 8).

Run it with the project installed (``pip install -e .``); the Scarf SDK row appears
only when ``scarf-sdk`` is installed in the same environment (``pip install scarf-sdk``;
it is never a dependency of this project)::

    python benchmarks/compare.py             # 21 interleaved rounds, ~2-3 minutes
    python benchmarks/compare.py --runs 41   # tighter figures
    python benchmarks/compare.py --quick     # smoke run, ~1 minute

Throwaway packages, each compiled to ``.pyc`` once, side by side in one run:

* ``plain``: nothing (the baseline); ``control``: the same again (noise);
* ``import threading`` only, the floor of every thread-starting design;
* this library's one line (deferral, then a detached sender; hand-over at exit), the same
  with ``DO_NOT_TRACK=1`` (the opt-out path) and with ``on_exit="wait"`` (no detached
  process: the host sends and exit waits, as the first engine did);
* the common synchronous pattern: ``requests.get(url, timeout=3)`` at import, inside
  ``try``/``except`` so a failure cannot break the import;
* a bare daemon thread doing ``requests.get(url, timeout=3)``, no exit handling;
* when installed, the Scarf SDK: ``ScarfEventLogger(url).log_event({...})`` at import
  (its default 3 s timeout), inside ``try``/``except`` (it raises on a timeout).

Three hosts, every variant once per round in a fresh random order:

* short-lived: ``python -c "import pkg"`` timing the import in-process, against a
  loopback collector answering after 50 ms; the collector counts, per child, whether its
  ping arrived (each child imports a package with its own name);
* CPU-bound: import, then a fixed pure-Python loop (~200 ms), timed together;
* dead collector (accepts, never answers): the wall time of the whole child, minus the
  plain package's child of the same round; the child also prints how long its ``atexit``
  handlers waited, which separates the library's exit wait from interpreter teardown.

Figures are medians and 90th percentiles of per-round paired differences. Last, the
detached sender itself: its lifetime from start to exit and its peak memory (max RSS),
run with exactly the command line the library uses, against both collectors.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
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
    machine_line,
    median,
    module_dir,
    ms,
    p90,
    table,
    verdict,
)

TEMPLATE = "/p/{package}/{version}/{platform}/{python}/{arch}/{distro}"
#: The timeout the synchronous and daemon-thread patterns use: the same as this
#: library's default ``timeout`` and the Scarf SDK's default, so rows compare like for like.
TIMEOUT = 3.0
#: The dead-collector host: ``python -c "import pkg"`` plus one ``atexit`` handler,
#: registered first so that it runs last, printing how long interpreter exit waited in
#: ``atexit`` after the import; the rest of the delay is in the wall time.
DEAD_CODE = (
    "import atexit, time\n"
    "atexit.register(lambda: print(time.perf_counter() - T))\n"
    "import {name}\n"
    "T = time.perf_counter()\n"
)
#: This library's default ``exit_timeout``: the bound on the dead-collector exit delay.
EXIT_TIMEOUT = 1.0


def autoping_body(name: str, url: str) -> str:
    return f"from scarf_autoping import autoping; autoping({name!r}, {url + TEMPLATE!r})\n"


def wait_body(name: str, url: str) -> str:
    return f"from scarf_autoping import autoping; autoping({name!r}, {url + TEMPLATE!r}, on_exit='wait')\n"


def sync_body(name: str, url: str) -> str:
    return (
        "import requests\n"
        "try:\n"
        f"    requests.get({url + '/p/' + name!r}, timeout={TIMEOUT})\n"
        "except Exception:\n"
        "    pass\n"
    )


def daemon_body(name: str, url: str) -> str:
    return (
        "import threading\n"
        "def _ping():\n"
        "    try:\n"
        "        import requests\n"
        f"        requests.get({url + '/p/' + name!r}, timeout={TIMEOUT})\n"
        "    except Exception:\n"
        "        pass\n"
        "threading.Thread(target=_ping, daemon=True).start()\n"
    )


def scarf_body(name: str, url: str) -> str:
    return (
        "try:\n"
        "    from scarf import ScarfEventLogger\n"
        f"    ScarfEventLogger({url + '/p/' + name!r}).log_event({{'event': 'import', 'package': {name!r}}})\n"
        "except Exception:\n"
        "    pass\n"
    )


def scarf_sdk_installed() -> bool:
    """True when the PyPI package ``scarf-sdk`` (import name ``scarf``) is importable."""
    found = module_dir("scarf")
    return found is not None and (found / "event_logger.py").exists()


def variants(with_scarf: bool) -> list[Variant]:
    out = [
        Variant("plain", "nothing (baseline)", lambda n, u: "", pings=False),
        Variant("control", "nothing again (control: noise)", lambda n, u: "", pings=False),
        Variant("threading", "only `import threading`", lambda n, u: "import threading\n", pings=False),
        Variant("autoping", "**scarf-autoping one line**", autoping_body),
        Variant("optout", "scarf-autoping, opted out (`DO_NOT_TRACK=1`)", autoping_body, {"DO_NOT_TRACK": "1"},
                pings=False),
        Variant("wait", "scarf-autoping, `on_exit=\"wait\"` (no detached process)", wait_body),
        Variant("sync", f"`requests.get(url, timeout={TIMEOUT:g})` at import", sync_body),
        Variant("daemon", "bare daemon thread + `requests.get`", daemon_body),
    ]
    if with_scarf:
        out.append(Variant("scarf", "Scarf SDK `ScarfEventLogger.log_event` at import", scarf_body))
    return out


def delivery_cell(variant: Variant, arrived: int, total: int) -> str:
    """``15/15 (100%)`` for a pinging variant; what arrived for an opted-out one; else ``-``."""
    if variant.pings and total:
        return f"{arrived}/{total} ({100 * arrived / total:.0f}%)"
    if variant.env:
        return f"{arrived}/{total} (opted out)"
    return "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=21, help="interleaved rounds (default 21)")
    parser.add_argument("--dead-runs", type=int, default=5,
                        help="rounds against the dead collector (default 5; each costs seconds)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 5 rounds (2 dead), shorter loop")
    parser.add_argument("--delay", type=float, default=0.05, help="collector answer delay in seconds (0.05)")
    parser.add_argument("--loop-ms", type=float, default=200.0, help="CPU-bound host loop length (200 ms)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the per-round shuffles")
    parser.add_argument("--json", metavar="PATH", help="also write every child's raw figures (seconds) to PATH")
    args = parser.parse_args(argv)
    runs = 5 if args.quick else args.runs
    dead_runs = 2 if args.quick else min(args.dead_runs, runs)
    loop_ms = 100.0 if args.quick else args.loop_ms

    with_scarf = scarf_sdk_installed()
    live = Collector(args.delay)
    dead = Collector(hang=True)
    loop = calibrate_loop(loop_ms)
    kinds = [Kind("i", IMPORT_CODE, live, runs), Kind("c", CPU_CODE, live, runs), Kind("x", DEAD_CODE, dead, dead_runs)]
    bench = Bench(variants(with_scarf), kinds, loop, seed=args.seed)
    try:
        bench.prepare(("scarf_autoping", "scarf") if with_scarf else ("scarf_autoping",))
        print(f"compare: {runs} rounds ({dead_runs} against the dead collector), CPU loop {loop} iterations "
              f"(~{loop_ms:.0f} ms), collector answers after {args.delay * 1000:.0f} ms; {machine_line()}",
              file=sys.stderr)
        bench.run()
        failures = bench.failures()
        live.seen(3.0)  # pings handed over at exit land after their host has gone
        delivered = {v.key: bench.delivered(kinds[0], v) for v in bench.variants}
    finally:
        bench.cleanup()
        live.close()
        dead.close()

    if args.json:
        Path(args.json).write_text(json.dumps({"loop": loop, "runs": runs, "results": bench.raw()}, indent=1),
                                   encoding="utf-8")

    rows = []
    for v in bench.variants:
        d_plain = bench.paired("i", v.key, "plain")
        d_thr = bench.paired("i", v.key, "threading")
        d_cpu = bench.paired("c", v.key, "plain")
        d_wall = bench.paired("i", v.key, "plain", "wall")
        d_dead = bench.paired("x", v.key, "plain", "wall")
        atexit_wait = bench.values("x", v.key)
        arrived, total = delivered[v.key]
        rows.append([
            v.label,
            f"{ms(median(d_plain), 2)} / {ms(p90(d_plain), 2)}",
            ms(median(d_thr), 2),
            f"{ms(median(d_cpu))} / {ms(p90(d_cpu))}",
            delivery_cell(v, arrived, total),
            ms(median(d_wall), 0),
            ms(median(d_dead), 0),
            ms(median(atexit_wait), 0),
        ])
    headers = [
        "package does at import",
        "main-thread import overhead ms (median / p90)",
        "beyond `import threading` ms (median)",
        "CPU-bound host slowdown ms (median / p90)",
        "short-lived processes delivered",
        "short-lived process wall time +ms (median)",
        "exit delay, dead collector +ms (median)",
        "of which in `atexit` ms (median)",
    ]
    command = "python benchmarks/compare.py" + (" --quick" if args.quick else "")
    if not args.quick and (runs != 21 or dead_runs != 5):
        command += f" --runs {runs} --dead-runs {dead_runs}"
    print(f"\n`{command}`: {runs} interleaved rounds ({dead_runs} against the dead collector); collector answers "
          f"after {args.delay * 1000:.0f} ms; CPU loop ~{loop_ms:.0f} ms; {machine_line()}\n")
    print(table(headers, rows))
    if not with_scarf:
        print("\nScarf SDK row skipped: `scarf-sdk` is not installed (`pip install scarf-sdk` to include it).")

    def med(kind: str, key: str, field: str = "value") -> float | None:
        return median(bench.paired(kind, key, "plain", field))

    arrived, total = delivered["autoping"]
    targets = [
        ("short-lived process wall time, 50 ms endpoint: <= +10 ms", med("i", "autoping", "wall"), 0.010),
        ("short-lived process wall time, dead endpoint: <= +10 ms", med("x", "autoping", "wall"), 0.010),
        ("main thread beyond `import threading` <= 0.5 ms", median(bench.paired("i", "autoping", "threading")),
         0.0005),
        ("opted out, against a plain package <= 0.3 ms", med("i", "optout"), 0.0003),
        ("CPU-bound host slowdown <= 5 ms", med("c", "autoping"), 0.005),
    ]
    trows = [[t, ms(v, 2), verdict(v, limit)] for t, v, limit in targets]
    trows.append(["100% of short-lived processes delivered (50 ms endpoint)", f"{arrived}/{total}",
                  "met" if total and arrived == total else "MISSED"])
    trows.append(["hand-over cost on the exiting host (time in `atexit`, dead endpoint)",
                  ms(median(bench.values("x", "autoping")), 2), "reported"])
    print("\n" + table(["target (scarf-autoping, issue 8)", "measured (median ms)", "verdict"], trows))
    print_sender(args.delay, 3 if args.quick else 9)
    noise_i = bench.paired("i", "control", "plain")
    noise_c = bench.paired("c", "control", "plain")
    print(f"\nNoise (control vs plain): import median {ms(median(noise_i), 2)} / p90 {ms(p90(noise_i), 2)} ms; "
          f"CPU-bound host median {ms(median(noise_c))} / p90 {ms(p90(noise_c))} ms.")
    if failures:
        print(f"\n{len(failures)} child(ren) failed or wrote to stderr:")
        for line in failures[:10]:
            print("  " + line)
    return 0


def sender_run(settings: str) -> tuple[float, float]:
    """Run the detached sender's exact command line; (seconds alive, max RSS in MiB)."""
    from scarf_autoping import spawn

    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-I", "-S", spawn.SENDER, settings], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0
    return time.perf_counter() - started, usage.ru_maxrss / 1024


def print_sender(delay: float, runs: int) -> None:
    """The detached sender's lifetime and peak memory, against a live and a dead collector."""
    from scarf_autoping import spawn

    rows = []
    for label, collector in ((f"endpoint answering in {delay * 1000:.0f} ms", Collector(delay)),
                             (f"dead endpoint (timeout {TIMEOUT:g} s)", Collector(hang=True))):
        try:
            job = {"method": "GET", "template": collector.url + TEMPLATE, "package": "bench-sender", "version": None,
                   "variables": {}, "ci": False, "timeout": TIMEOUT}
            settings = spawn.encode({"jobs": [job], "path": spawn.search_path(), "delay": 0.0, "report": False,
                                     "loop": False, "host": os.getpid()})
            figures = [sender_run(settings) for _ in range(runs if "answering" in label else max(2, runs // 3))]
        finally:
            collector.close()
        alive = [f[0] for f in figures]
        rss = [f[1] for f in figures]
        rows.append([label, f"{median(alive) * 1000:.0f} / {max(alive) * 1000:.0f}",
                     f"{median(rss):.1f} / {max(rss):.1f}"])
    print("\nThe detached sender (`python -I -S sender.py SETTINGS`), started and reaped here:\n")
    print(table(["sender against", "lifetime ms (median / max)", "peak memory MiB (median / max)"], rows))


if __name__ == "__main__":
    sys.exit(main())
