"""This library's one line against the other ways a package pings on import (issues 5 and 8).

Run it with the project installed (``pip install -e .``); the Scarf SDK row appears
only when ``scarf-sdk`` is installed in the same environment (``pip install scarf-sdk``;
it is never a dependency of this project)::

    python benchmarks/compare.py             # 21 interleaved rounds, ~5 minutes
    python benchmarks/compare.py --runs 41   # tighter figures
    python benchmarks/compare.py --quick     # smoke run, ~1 minute

Throwaway packages, each compiled to ``.pyc`` once, side by side in one run:

* ``plain``: nothing (the baseline); ``control``: the same again (noise);
* ``import threading`` only, the floor of every thread-starting design;
* this library's one line (a 1 s deferral on a raw ``_thread`` thread, then a detached
  sender process; at exit, an unsent ping is handed to a detached sender), the same with
  ``DO_NOT_TRACK=1`` (the opt-out path) and with ``on_exit="wait"`` (no detached process:
  the host sends it itself and exit waits for it, at most ``exit_timeout``);
* the common synchronous pattern: ``requests.get(url, timeout=3)`` at import, inside
  ``try``/``except`` so a failure cannot break the import;
* a bare daemon thread doing ``requests.get(url, timeout=3)``, no exit handling;
* when installed, the Scarf SDK: ``ScarfEventLogger(url).log_event({...})`` at import
  (its default 3 s timeout), inside ``try``/``except`` (it raises on a timeout).

Four hosts, every variant once per round in a fresh random order:

* short-lived: ``python -c "import pkg"``, against a loopback collector answering after
  50 ms. The child times the import in-process, and its first-registered ``atexit``
  handler (so the last to run) prints how long exit spent in ``atexit`` after the main
  code: against the plain package's, that is the library's exit hand-over. The wall time
  is the caller's view: until the child has exited and its pipes are closed. The
  collector counts, per child (each imports a package with its own name), whether its
  ping arrived, and when, also after the child has exited: the run waits at the end until
  every detached sender has exited and the collector has been quiet for a second;
* CPU-bound: import, then a fixed pure-Python loop (~200 ms), timed together;
* dead collector (accepts, never answers): the short-lived host again, fewer rounds;
* long-lived: import, then ``time.sleep(1.5)``: the ping goes out *during* the host's
  life (the in-life detached sender path); the host prints its ``Ping.status`` at the end;
* the machine's CPU (issue 18): the short-lived host again, each in a cgroup of its own
  (Linux, cgroup v2; see ``_common.CpuGroup``), so that the CPU of every process it starts
  is counted, the detached sender included, however long it outlives its host: the total
  once the group is empty. Where no cgroup can be made, ``getrusage(RUSAGE_CHILDREN)``
  around the host and the orphans waited for gives the same sum.

This process is the child subreaper of everything it starts (Linux): the detached
senders a host leaves behind are re-parented here, waited for before the next child
starts (so their start-up CPU does not land in the next child's figures; ``--no-settle``
runs children back to back instead) and measured: lifetime after their host exited, peak
memory, CPU time.

Figures are medians and 90th percentiles of per-round paired differences. Last, the
detached sender on its own: started with the library's own ``spawn.spawn()`` (its exact
command line, ``python -I -S -c BOOTSTRAP``, an orphan through ``/bin/sh`` as at a host's
exit), its lifetime from spawn to exit, its peak memory (max RSS) and CPU, from ``wait4``
as its subreaper, against both collectors.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    CPU_CODE,
    Bench,
    Collector,
    Kind,
    Orphan,
    Reaper,
    Variant,
    calibrate_loop,
    compile_tree,
    machine_line,
    median,
    median_p90,
    module_dir,
    ms,
    p90,
    table,
    verdict,
    wait_for_arrivals,
)

TEMPLATE = "/p/{package}/{version}/{platform}/{python}/{arch}/{distro}"
#: The timeout the synchronous and daemon-thread patterns use: the same as this
#: library's default ``timeout`` and the Scarf SDK's default, so rows compare like for like.
TIMEOUT = 3.0
#: The short-lived host (also against the dead collector): ``python -c "import pkg"`` that
#: prints the import's seconds (line 0), and one ``atexit`` handler, registered first so
#: that it runs last, printing the seconds exit spent in ``atexit`` after the main code
#: (line 1): the library's hand-over, or its wait with ``on_exit="wait"``.
SHORT_CODE = (
    "import atexit, time\n"
    "atexit.register(lambda: print(time.perf_counter() - T))\n"
    "t = time.perf_counter()\n"
    "import {name}\n"
    "T = time.perf_counter()\n"
    "print(T - t)\n"
)
IMPORT_LINE, ATEXIT_LINE = 0, 1
#: Seconds the long-lived host lives after its import: past the 1 s deferral and the
#: detached sender's ~0.2 s, so the ping goes out while it lives.
LONG_SLEEP = 1.5
#: The long-lived host: import, sleep, then print the package's ``Ping.status`` (``-``
#: for packages without one) and the seconds since before the import.
LONG_CODE = (
    "import sys, time\n"
    "t = time.perf_counter()\n"
    "import {name}\n"
    f"time.sleep({LONG_SLEEP})\n"
    "print(getattr(getattr(sys.modules[{name!r}], 'PING', None), 'status', '-'))\n"
    "print(time.perf_counter() - t)\n"
)
#: This library's default ``exit_timeout``: the bound on the ``on_exit="wait"`` exit delay.
EXIT_TIMEOUT = 1.0


def autoping_body(name: str, url: str) -> str:
    return f"from scarf_autoping import autoping; PING = autoping({name!r}, {url + TEMPLATE!r})\n"


def wait_body(name: str, url: str) -> str:
    return f"from scarf_autoping import autoping; PING = autoping({name!r}, {url + TEMPLATE!r}, on_exit='wait')\n"


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


# --- issue 18 item 3 (once_per), built on another branch: a slot, measured once it exists ---------


def once_per_supported() -> bool:
    """Whether this build's ``autoping()`` takes ``once_per`` (issue 18 item 3)."""
    import inspect

    import scarf_autoping

    try:
        return "once_per" in inspect.signature(scarf_autoping.autoping).parameters
    except (TypeError, ValueError):
        return False


def day_body(name: str, url: str) -> str:
    return (f"from scarf_autoping import autoping; PING = autoping({name!r}, {url + TEMPLATE!r}, "
            "once_per='day')\n")


def scarf_sdk_installed() -> bool:
    """True when the PyPI package ``scarf-sdk`` (import name ``scarf``) is importable."""
    found = module_dir("scarf")
    return found is not None and (found / "event_logger.py").exists()


def variants(with_scarf: bool, state_dir: str | None = None, baseline: str | None = None) -> list[Variant]:
    """Every package compared; with ``state_dir`` (where ``once_per`` is built), ``once_per="day"``
    with a fresh stamp: each package is imported once, unmeasured, before its measured run;
    with ``baseline``, the one line again with the ``scarf_autoping`` found in that directory."""
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
    if baseline is not None:
        out.append(Variant("base", f"scarf-autoping one line, baseline (`{Path(baseline).name}`)", autoping_body,
                           {"PYTHONPATH": baseline + os.pathsep + "{site}"}))
    if state_dir is not None:
        out.append(Variant("day", "scarf-autoping, `once_per=\"day\"`, fresh stamp", day_body,
                           {"SCARF_AUTOPING_STATE_DIR": state_dir}, pings=False, prime=True))
    return out


def delivery_cell(variant: Variant, arrived: int, total: int) -> str:
    """``15/15 (100%)`` for a pinging variant; what arrived for an opted-out one; else ``-``."""
    if variant.pings and total:
        return f"{arrived}/{total} ({100 * arrived / total:.0f}%)"
    if variant.env:
        return f"{arrived}/{total} (opted out)"
    return "-"


def arrival_cell(after_exit: list[float | None]) -> str:
    """When the pings arrived, against their host's exit: ``+212`` ms after, ``-35`` before it."""
    got = [a for a in after_exit if a is not None]
    if not got:
        return "-"
    return f"{ms(median(got), 0)} ({sum(1 for a in got if a > 0)} after exit)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=21, help="interleaved rounds (default 21)")
    parser.add_argument("--dead-runs", type=int, default=9,
                        help="rounds against the dead collector (default 9; each costs ~8 s)")
    parser.add_argument("--long-runs", type=int, default=5,
                        help="rounds of the long-lived host (default 5; each costs ~15 s; 0: skip it)")
    parser.add_argument("--machine-runs", type=int, default=None,
                        help="rounds of the machine-CPU host (default: as --runs; 0: skip it)")
    parser.add_argument("--baseline", metavar="DIR",
                        help="a directory holding another scarf_autoping (e.g. `git archive main` unpacked), run "
                             "side by side as the one line's baseline")
    parser.add_argument("--quick", action="store_true", help="smoke run: 5 rounds (2 dead, 2 long), shorter loop")
    parser.add_argument("--delay", type=float, default=0.05, help="collector answer delay in seconds (0.05)")
    parser.add_argument("--loop-ms", type=float, default=200.0, help="CPU-bound host loop length (200 ms)")
    parser.add_argument("--no-settle", action="store_true",
                        help="run children back to back: do not wait for the detached senders they leave behind")
    parser.add_argument("--seed", type=int, default=0, help="seed of the per-round shuffles")
    parser.add_argument("--json", metavar="PATH", help="also write every child's raw figures (seconds) to PATH")
    args = parser.parse_args(argv)
    runs = 5 if args.quick else args.runs
    dead_runs = 2 if args.quick else min(args.dead_runs, runs)
    long_runs = min(2, args.long_runs) if args.quick else min(args.long_runs, runs)
    loop_ms = 100.0 if args.quick else args.loop_ms
    machine_runs = min(runs, args.machine_runs) if args.machine_runs is not None else runs

    with_scarf = scarf_sdk_installed()
    state_dir = tempfile.mkdtemp(prefix="scarf-autoping-bench-state-") if once_per_supported() else None
    reaper = Reaper()
    live = Collector(f"delay:{args.delay}")
    dead = Collector("hang")
    loop = calibrate_loop(loop_ms)
    kinds = [
        Kind("i", SHORT_CODE, live, runs),
        Kind("c", CPU_CODE, live, runs),
        # A sender facing the dead endpoint lives for its timeout (3 s): waiting 0.4 s gets
        # it past its start-up (imports, connect), after which it only sleeps in recv().
        Kind("x", SHORT_CODE, dead, dead_runs, settle=0.4, warm=False),
        Kind("l", LONG_CODE, live, long_runs, warm=False),
        # The machine's CPU: the short-lived host in a cgroup of its own, until all it started is gone.
        Kind("m", SHORT_CODE, live, machine_runs, settle=5.0, machine=True),
    ]
    baseline = str(Path(args.baseline).resolve()) if args.baseline else None
    if baseline is not None and not (Path(baseline) / "scarf_autoping" / "__init__.py").exists():
        parser.error(f"--baseline: no scarf_autoping package in {baseline}")
    bench = Bench(variants(with_scarf, state_dir, baseline), kinds, loop, seed=args.seed, reaper=reaper, settle=not args.no_settle)
    started = time.monotonic()
    try:
        bench.prepare(("scarf_autoping", "scarf") if with_scarf else ("scarf_autoping",))
        if baseline is not None:
            compile_tree([Path(baseline) / "scarf_autoping"])
        print(f"compare: {runs} rounds ({dead_runs} against the dead collector, {long_runs} long-lived), CPU loop "
              f"{loop} iterations (~{loop_ms:.0f} ms), collector answers after {args.delay * 1000:.0f} ms; "
              f"subreaper {'on' if reaper.enabled else 'off'}; {machine_line()}", file=sys.stderr)
        bench.run()
        failures = bench.failures()
        pinging = [v for v in bench.variants if v.pings]
        # Pings handed over at exit land after their host has gone: wait for every sender.
        wait_for_arrivals(live, bench.names(kinds[0], pinging) + bench.names(kinds[1], pinging)
                          + bench.names(kinds[3], pinging), reaper)
        arrivals = {(k.key, v.key): bench.arrivals(k, v) for k in kinds for v in bench.variants}
        print_sender_rows = sender_rows(args.delay, 3 if args.quick else 9, 2 if args.quick else 3, reaper)
    finally:
        bench.cleanup()
        live.close()
        dead.close()
        if state_dir is not None:
            shutil.rmtree(state_dir, ignore_errors=True)
    elapsed = time.monotonic() - started

    if args.json:
        Path(args.json).write_text(json.dumps({"loop": loop, "runs": runs, "results": bench.raw()}, indent=1),
                                   encoding="utf-8")

    def delivered(kind: str, key: str) -> tuple[int, int]:
        got = arrivals[(kind, key)]
        return sum(1 for a in got if a is not None), len(got)

    rows = []
    for v in bench.variants:
        d_plain = bench.paired("i", v.key, "plain", IMPORT_LINE)
        d_thr = bench.paired("i", v.key, "threading", IMPORT_LINE)
        d_cpu = bench.paired("c", v.key, "plain")
        d_wall = bench.paired("i", v.key, "plain", "wall")
        d_exit = bench.paired("i", v.key, "plain", ATEXIT_LINE)
        d_dead = bench.paired("x", v.key, "plain", "wall")
        dead_exit = bench.paired("x", v.key, "plain", ATEXIT_LINE)
        rows.append([
            v.label,
            median_p90(d_plain, 2),
            ms(median(d_thr), 2),
            median_p90(d_cpu),
            median_p90(d_wall),
            delivery_cell(v, *delivered("i", v.key)),
            arrival_cell(arrivals[("i", v.key)]),
            median_p90(d_exit, 2),
            median_p90(d_dead, 0),
            ms(median(dead_exit), 0),
        ])
    headers = [
        "package does at import",
        "main-thread import overhead ms (median / p90)",
        "beyond `import threading` ms (median)",
        "CPU-bound host slowdown ms (median / p90)",
        "short-lived process wall time +ms (median / p90)",
        "short-lived processes delivered",
        "ping arrives, ms after the host exited (median)",
        "exit time in `atexit` +ms (median / p90)",
        "dead endpoint: wall time +ms (median / p90)",
        "dead endpoint: in `atexit` +ms (median)",
    ]
    command = "python benchmarks/compare.py" + (" --quick" if args.quick else "")
    if not args.quick and (runs, dead_runs, long_runs, machine_runs) != (21, 9, 5, 21):
        command += f" --runs {runs} --dead-runs {dead_runs} --long-runs {long_runs} --machine-runs {machine_runs}"
    if args.no_settle:
        command += " --no-settle"
    settled = "waited for between children" if reaper.enabled and not args.no_settle else "not waited for"
    print(f"\n`{command}`: {runs} interleaved rounds ({dead_runs} against the dead collector, {long_runs} of the "
          f"long-lived host); collector answers after {args.delay * 1000:.0f} ms; CPU loop ~{loop_ms:.0f} ms; "
          f"detached senders {settled}; {elapsed:.0f} s; {machine_line()}\n")
    print(table(headers, rows))
    if not with_scarf:
        print("\nScarf SDK row skipped: `scarf-sdk` is not installed (`pip install scarf-sdk` to include it).")

    if long_runs:
        lrows = []
        for v in bench.variants:
            d_long = bench.paired("l", v.key, "plain", "wall")
            statuses: dict[str, int] = {}
            for _, run in sorted(bench.results["l"][v.key].items()):
                status = run.lines[0] if len(run.lines) > 1 else "?"
                statuses[status] = statuses.get(status, 0) + 1
            got = [a for a in arrivals[("l", v.key)] if a is not None]
            lrows.append([
                v.label,
                median_p90(d_long),
                ", ".join(f"{k} x{n}" for k, n in sorted(statuses.items())),
                f"{sum(1 for a in got if a < 0)}/{len(arrivals[('l', v.key)])}" if v.pings else "-",
                ms(median([-a for a in got]), 0) if v.pings and got else "-",
            ])
        print(f"\nLong-lived host (import, then `time.sleep({LONG_SLEEP:g})`): the ping goes out during its life.\n")
        print(table(["package does at import", "process wall time +ms (median / p90)", "`Ping.status` at the end",
                     "delivered while the host lived", "ping arrived, ms before the host exited (median)"], lrows))

    machine = machine_table(bench, machine_runs)
    if machine:
        print(machine)

    def paired(kind: str, key: str, field: str | int = "value", ref: str = "plain") -> list[float]:
        return bench.paired(kind, key, ref, field)

    def target(label: str, limit_text: str, values: list[float], limit: float, digits: int = 2) -> list[str]:
        return [label, limit_text, median_p90(values, digits), verdict(median(values), limit, p90(values))]

    arrived_i, total_i = delivered("i", "autoping")
    arrived_c, total_c = delivered("c", "autoping")
    all_in = total_i and arrived_i == total_i and arrived_c == total_c
    in_situ = [o for k in ("i", "c") for o in bench.orphans(k, "autoping")]
    trows = [
        target("1. short-lived process (`python -c \"import pkg\"`) wall time, 50 ms endpoint", "+10 ms",
               paired("i", "autoping", "wall"), 0.010, 1),
        ["1. ... of which pings delivered (arrival after the host exited counts)", "100%",
         f"{arrived_i}/{total_i} short-lived, {arrived_c}/{total_c} CPU-bound", "met" if all_in else "MISSED"],
        target("1. short-lived process wall time, dead endpoint (accepts, never answers)", "+10 ms",
               paired("x", "autoping", "wall"), 0.010, 1),
        target("2. main thread: `import pkg` beyond `import threading`", "0.5 ms",
               paired("i", "autoping", IMPORT_LINE, "threading"), 0.0005),
        target("2. opted out (`DO_NOT_TRACK=1`): `import pkg` against a plain package", "0.3 ms",
               paired("i", "optout", IMPORT_LINE), 0.0003),
        target("3. CPU-bound host (import, then ~200 ms of pure Python)", "+5 ms", paired("c", "autoping"), 0.005, 1),
        ["4. hand-over's cost on the exiting host (time in `atexit`, against a plain package)", "reported",
         median_p90(paired("i", "autoping", ATEXIT_LINE), 2), "reported"],
        ["4. detached sender (its own run, 50 ms endpoint): lifetime from spawn to exit; peak memory", "reported",
         print_sender_rows[0][1] + " ms; " + print_sender_rows[0][2] + " MiB", "reported"],
        ["4. detached sender left by a short-lived host: lifetime after the host exited; peak memory", "reported",
         orphan_summary(in_situ), "reported"],
    ]
    print("\n" + table(["target (scarf-autoping, issue 8)", "limit", "measured (median / p90)", "verdict"], trows))
    if machine_runs:
        print("\n" + table(["target (issue 18, item 8)", "limit", "measured (median / p90)", "verdict"],
                            machine_targets(bench, state_dir is not None)))

    print("\nThe detached sender, started with the library's own `spawn.spawn()` (`python -I -S -c BOOTSTRAP`, an orphan) "
          "and reaped here (`os.wait4`), and the senders the hosts above left behind:\n")
    srows = [list(r) for r in print_sender_rows]
    for kind, label in (("i", "left by short-lived hosts, 50 ms endpoint"), ("c", "left by CPU-bound hosts"),
                        ("x", "left by short-lived hosts, dead endpoint")):
        orphans = bench.orphans(kind, "autoping")
        srows.append([label] + orphan_cells(orphans))
    print(table(["sender", "lifetime ms (median / max)", "peak memory MiB (median / max)", "CPU ms (median)",
                 "count"], srows))
    if not reaper.enabled:
        print("\n(No subreaper on this platform: the senders left behind by hosts are not measured.)")

    noise = {
        "import": paired("i", "control", IMPORT_LINE), "wall": paired("i", "control", "wall"),
        "CPU-bound": paired("c", "control"), "dead wall": paired("x", "control", "wall"),
        "long-lived wall": paired("l", "control", "wall"),
    }
    print("\nNoise (control vs plain, ms median / p90): "
          + "; ".join(f"{k} {median_p90(v, 2)}" for k, v in noise.items() if v) + ".")
    reached = sum(1 for a in arrivals[("x", "autoping")] if a is not None)
    print(f"Dead endpoint: the requests of {reached}/{len(arrivals[('x', 'autoping')])} one-line hosts reached it "
          "(sent by their detached senders after the host had exited, then left hanging).")
    if failures:
        print(f"\n{len(failures)} child(ren) failed or wrote to stderr:")
        for line in failures[:10]:
            print("  " + line)
    return 0


def machine_table(bench: Bench, runs: int) -> str:
    """The machine's CPU per host (everything it started included) and its senders' peak memory."""
    if not runs:
        return ""
    groups = bench.groups
    how = ("each host in a cgroup (v2) of its own, counted once the group was empty" if groups and groups.enabled
           else "getrusage(RUSAGE_CHILDREN) around each host and the orphans waited for (no cgroup v2 here)")
    rows = []
    for v in bench.variants:
        total = bench.values("m", v.key, "machine_cpu")
        beyond = bench.paired("m", v.key, "plain", "machine_cpu")
        orphans = bench.orphans("m", v.key)
        rss = [o.maxrss for o in orphans if o.maxrss is not None]
        cpu = [o.cpu for o in orphans if o.cpu is not None]
        rows.append([
            v.label,
            median_p90(total, 1),
            median_p90(beyond, 1),
            f"{ms(median(cpu), 0)} ({len(orphans)})" if orphans else "-",
            f"{median(rss):.1f} / {max(rss):.1f}" if rss else "-",
        ])
    return (f"\nThe machine's CPU per short-lived host (`python -c \"import pkg\"`), everything it started "
            f"included ({how}); {runs} interleaved rounds:\n\n"
            + table(["package does at import", "total CPU ms (median / p90)", "beyond a plain package ms (median / p90)",
                     "of which processes left behind: CPU ms (count)", "their peak memory MiB (median / max)"], rows))


def machine_targets(bench: Bench, once_per: bool) -> list[list[str]]:
    """Issue 18 item 8: the one line's machine CPU against half the naive pattern's, and the goal."""
    ours = bench.paired("m", "autoping", "plain", "machine_cpu")
    naive = bench.paired("m", "sync", "plain", "machine_cpu")
    half = median(naive) / 2 if naive else None
    orphans = bench.orphans("m", "autoping")
    rss = [o.maxrss for o in orphans if o.maxrss is not None]
    rows = [
        ["8. machine CPU of a short-lived host beyond a plain package: the one line",
         f"half of `requests.get` at import's ({ms(half, 1)} ms)" if half is not None else "n/a",
         median_p90(ours, 1), verdict(median(ours), half, p90(ours)) if half is not None else "not measured"],
        ["8. ... the goal", "50 ms", median_p90(ours, 1), verdict(median(ours), 0.050, p90(ours))],
        ["8. ... `requests.get(url, timeout=3)` at import, for reference", "-", median_p90(naive, 1), "reported"],
    ]
    base = bench.paired("m", "base", "plain", "machine_cpu") if "base" in {v.key for v in bench.variants} else []
    if base:
        rows.append(["8. ... the baseline's one line, for reference", "-", median_p90(base, 1), "reported"])
    rows += [
        ["8. the detached sender's peak memory (median / max)", "reported",
         f"{median(rss):.1f} / {max(rss):.1f} MiB" if rss else "n/a", "reported"],
    ]
    if once_per:
        day_main = bench.paired("i", "day", "plain", IMPORT_LINE)
        day_cpu = bench.paired("m", "day", "plain", "machine_cpu")
        rows += [
            target_row("3. `once_per=\"day\"`, fresh stamp: `import pkg` on the main thread beyond a plain package",
                       "0.1 ms", day_main, 0.0001, 2),
            target_row("3. `once_per=\"day\"`, fresh stamp: machine CPU beyond a plain package", "1 ms", day_cpu, 0.001, 2),
        ]
    else:
        rows.append(["3. `once_per=\"day\"` with a fresh stamp (slot for issue 18 item 3)", "0.1 ms main thread; 1 ms CPU",
                     "not in this build: `autoping()` has no `once_per` yet", "skipped"])
    return rows


def target_row(label: str, limit_text: str, values: list[float], limit: float, digits: int = 2) -> list[str]:
    return [label, limit_text, median_p90(values, digits), verdict(median(values), limit, p90(values))]


def orphan_cells(orphans: list[Orphan]) -> list[str]:
    """Lifetime, peak memory, CPU and count cells for the processes hosts left behind."""
    alive = [o.lifetime for o in orphans if o.lifetime is not None]
    rss = [o.maxrss for o in orphans if o.maxrss is not None]
    cpu = [o.cpu for o in orphans if o.cpu is not None]
    return [
        f"{ms(median(alive), 0)} / {ms(max(alive), 0)}" if alive else "n/a (outlived the wait)",
        f"{median(rss):.1f} / {max(rss):.1f}" if rss else "n/a",
        ms(median(cpu), 0),
        str(len(orphans)),
    ]


def orphan_summary(orphans: list[Orphan]) -> str:
    alive = [o.lifetime for o in orphans if o.lifetime is not None]
    rss = [o.maxrss for o in orphans if o.maxrss is not None]
    if not alive:
        return "n/a"
    return f"{median_p90(alive, 0)} ms; {median(rss):.1f} / {max(rss):.1f} MiB (median / max)"


def sender_run(job: dict, reaper: Reaper) -> tuple[float, float, float]:
    """Start one detached sender exactly as the library does at a host's exit (an orphan, through
    ``/bin/sh``), and wait for it as its subreaper: (seconds alive, max RSS MiB, CPU seconds).

    Not ``wait4`` on a direct child of ours: ``posix_spawn`` is a ``vfork``, and Linux counts
    the parent's resident set, at the ``exec``, in the child's ``ru_maxrss``: this process's
    tens of MiB, not the sender's.
    """
    from scarf_autoping import spawn

    started = time.perf_counter()
    if spawn.spawn([job], delay=0.0, orphan=True) is None:
        raise RuntimeError("spawn.spawn() could not start a detached sender here")
    if not reaper.enabled:
        raise RuntimeError("no subreaper here: the sender cannot be waited for")
    found = reaper.settle(started, 30.0)
    if len(found) != 1 or found[0].lifetime is None:
        raise RuntimeError(f"expected one sender, found {len(found)}")
    sender = found[0]
    return sender.lifetime, sender.maxrss or 0.0, sender.cpu or 0.0


def sender_rows(delay: float, runs: int, dead_runs: int, reaper: Reaper) -> list[list[str]]:
    """The detached sender's lifetime, peak memory and CPU, against a live and a dead collector."""
    rows = []
    for label, collector, count in ((f"own run, endpoint answering in {delay * 1000:.0f} ms",
                                     Collector(f"delay:{delay}"), runs),
                                    (f"own run, dead endpoint (timeout {TIMEOUT:g} s)", Collector("hang"),
                                     dead_runs)):
        try:
            # The job as autoping() builds it, for an installed distribution (its version is looked up).
            job = {"method": "GET", "template": collector.url + TEMPLATE, "package": "scarf-autoping", "version": None,
                   "variables": {}, "ci": False, "timeout": TIMEOUT, "retry_interval": None}
            figures = [sender_run(job, reaper) for _ in range(count)]
            arrived = len(collector.settle(0.2))
        finally:
            collector.close()
        alive = [f[0] for f in figures]
        rss = [f[1] for f in figures]
        rows.append([label, f"{median(alive) * 1000:.0f} / {max(alive) * 1000:.0f}",
                     f"{median(rss):.1f} / {max(rss):.1f}", ms(median([f[2] for f in figures]), 0),
                     f"{count} ({arrived} requests arrived)"])
    return rows


if __name__ == "__main__":
    sys.exit(main())
