"""How long each ``scarf-autoping`` command takes to start, against a bare interpreter (issue 20).

Every variant is one child process started with a clean environment (the project's
``.pyc`` files compiled first, as after a real install), its wall time measured from
start to exit. Rounds interleave the variants in a random order; the figures are
medians and 90th percentiles, and each median is also shown as a multiple of the bare
``python -c pass`` (the target: ``send --detach`` at most 2.25 times it, ``--help`` and
``status`` at most 2.5 times). ``curl`` is there for scale: it is what a shell script
pinged with before. Processes a child leaves behind (the detached sender) are waited
for before the next child starts, so their CPU is not counted against it.

    .venv/bin/python benchmarks/cli_startup.py [--rounds 21] [--importtime]

``--importtime`` also lists, per command, the modules it loads beyond a bare start
(``python -X importtime``), the slowest first.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Collector, Reaper, child_env, compile_tree, machine_line, module_dir, p90, wall_time

BIN = Path(sys.executable).parent
SCRIPT = str(BIN / "scarf-autoping")
ROUTE = "/s/{package}/{platform}/{arch}"


def commands(url: str) -> dict[str, list[str]]:
    """The variants, label -> argv; the first is the baseline."""
    out = {
        "python -c pass (bare start)": [sys.executable, "-c", "pass"],
        "scarf-autoping --help": [SCRIPT, "--help"],
        "scarf-autoping --version": [SCRIPT, "--version"],
        "scarf-autoping status": [SCRIPT, "status"],
        "scarf-autoping status --package mytool": [SCRIPT, "status", "--package", "mytool"],
        "scarf-autoping send --detach --quiet": [SCRIPT, "send", "--detach", "--quiet", "--package", "mytool",
                                                 url + ROUTE],
        "scarf-autoping send --detach, opted out": [SCRIPT, "send", "--detach", "--quiet", "--package", "mytool",
                                                    url + ROUTE],
        "scarf-autoping preview": [SCRIPT, "preview", "--package", "mytool", url + ROUTE],
    }
    if shutil.which("curl"):
        out["curl -s -m 3 URL"] = ["curl", "-s", "-o", os.devnull, "-m", "3", url + "/s/mytool"]
    return out


def imported(argv: list[str], env: dict[str, str]) -> dict[str, float]:
    """Module -> cumulative import microseconds (top-level imports only) of one run under ``-X importtime``."""
    if argv[0] == SCRIPT:
        argv = [sys.executable, "-X", "importtime", *argv]
    elif argv[0] == sys.executable:
        argv = [sys.executable, "-X", "importtime", *argv[1:]]
    else:
        return {}
    proc = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, timeout=60, check=False)
    out: dict[str, float] = {}
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|")
        if cumulative.strip().isdigit() and not name.startswith("  "):
            out[name.strip()] = float(cumulative)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--importtime", action="store_true", help="also show what each command imports")
    args = parser.parse_args()

    env = child_env()
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    opted_out = {**env, "DO_NOT_TRACK": "1"}
    dirs = [d for d in (module_dir("scarf_autoping"),) if d is not None]
    compile_tree(dirs)

    reaper = Reaper()
    up = Collector()
    variants = commands(up.url)
    envs = {label: opted_out if "opted out" in label else env for label in variants}
    results: dict[str, list[float]] = {label: [] for label in variants}
    try:
        for label, argv in variants.items():  # warm the page cache
            wall_time(argv, envs[label])
            reaper.settle(time.perf_counter(), 5.0)
        for _ in range(args.rounds):
            order = list(variants)
            random.shuffle(order)
            for label in order:
                results[label].append(wall_time(variants[label], envs[label]))
                reaper.settle(time.perf_counter(), 5.0)  # the detached sender, out of the next child's way
        loaded = {label: imported(argv, envs[label]) for label, argv in variants.items()} if args.importtime else {}
    finally:
        reaper.drain(10.0)
        up.close()

    bare = results[next(iter(variants))]
    base = statistics.median(bare)
    print(f"Wall time of each command, median / p90 of {args.rounds} interleaved rounds; {machine_line()}")
    print("(x bare start: the median over the bare start's median; paired: the median of each round's ratio)")
    print()
    print("| command | ms (median / p90) | x bare start | paired |")
    print("|---|---|---|---|")
    for label, times in results.items():
        median = statistics.median(times)
        paired = statistics.median(t / b for t, b in zip(times, bare))
        print(f"| `{label}` | {median * 1000:.1f} / {(p90(times) or 0) * 1000:.1f} | {median / base:.2f} | "
              f"{paired:.2f} |")
    if loaded:
        bare = loaded[next(iter(variants))]
        for label, modules in loaded.items():
            extra = sorted(((us, name) for name, us in modules.items() if name not in bare), reverse=True)
            shown = ", ".join(f"{name} {us / 1000:.1f}" for us, name in extra[:12])
            print(f"\n{label}: {len(extra)} top-level imports beyond a bare start (ms): {shown or '-'}")


if __name__ == "__main__":
    main()
