"""What telemetry in a shell script's EXIT trap costs the script: the docs/events.md recipe
(``scarf-autoping send --detach``) side by side with ``curl`` as ``scarf.sh`` calls it, the
synchronous ``scarf-autoping send``, and no telemetry at all.

Each variant is a small bash script (``set -euo pipefail``, one ``echo``, exit 0) run as a
child process; its wall time is measured from start to exit, with the endpoint on
127.0.0.1 **up** (answers ``204`` at once), **down** (connection refused) and **hanging**
(accepts, never answers). Rounds interleave the variants in a random order; medians are
reported, and the cost of each variant is its median minus the bare script's. The
``start-up only`` row runs ``scarf-autoping --version`` in the trap: the start-up of the
command itself, which is what ``--detach`` should cost and no more. A run is
cut off at ``--cap`` seconds (``scarf.sh`` gives ``curl`` no overall timeout: against a
hanging endpoint it waits for ever), shown as ``>cap``.

    .venv/bin/python benchmarks/send_detach.py [--rounds 9] [--cap 6]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Collector

BIN = Path(sys.executable).parent

RECIPE = r"""
_tool_telemetry() {
    local code=$?
    scarf-autoping send '__URL__{?platform,version,exit_code,elapsed_time}' \
        --package mytool --version "1.4.2" \
        --var "exit_code=$code" --var "elapsed_time=$SECONDS" \
        --method POST __MODE__ --quiet >/dev/null 2>&1 || :
}
trap _tool_telemetry EXIT
"""

#: The start-up of the command alone: what "no more than the start-up" is measured against.
START_UP = r"""
_tool_telemetry() {
    local code=$?
    scarf-autoping --version >/dev/null 2>&1 || :
}
trap _tool_telemetry EXIT
"""

#: What scarf.sh does in its trap (curl, 3 s to connect, no overall bound).
CURL = r"""
_tool_telemetry() {
    local code=$?
    curl --silent --output /dev/null --connect-timeout 3 -X POST \
        "__URL__?platform=$(uname -s)&elapsed_time=$SECONDS&exit_code=$code&version=1.4.2" || :
}
trap _tool_telemetry EXIT
"""


def refused_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/run"


def write_script(directory: Path, name: str, trap: str) -> Path:
    path = directory / f"{name}.sh"
    path.write_text(f"#!/usr/bin/env bash\nset -euo pipefail\n{trap}\necho working\n", encoding="utf-8")
    return path


def run(path: Path, env: dict[str, str], cap: float) -> float:
    started = time.perf_counter()
    try:
        subprocess.run(["bash", str(path)], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=cap, check=False)
    except subprocess.TimeoutExpired:
        return float("inf")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--cap", type=float, default=6.0)
    args = parser.parse_args()
    if shutil.which("bash") is None or shutil.which("curl") is None:
        raise SystemExit("needs bash and curl")
    env = {k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL", "TMPDIR") if k in os.environ}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"

    up, hanging = Collector(), Collector(hang=True)
    urls = {"up": up.url + "/run", "down": refused_url(), "hanging": hanging.url + "/run"}
    results: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        scripts: dict[tuple[str, str], Path] = {}
        for endpoint, url in urls.items():
            scripts[("none", endpoint)] = write_script(directory, f"none-{endpoint}", "")
            scripts[("start-up only", endpoint)] = write_script(directory, f"startup-{endpoint}", START_UP)
            scripts[("send --detach", endpoint)] = write_script(
                directory, f"detach-{endpoint}", RECIPE.replace("__URL__", url).replace("__MODE__", "--detach"))
            scripts[("send (waits)", endpoint)] = write_script(
                directory, f"sync-{endpoint}", RECIPE.replace("__URL__", url).replace("__MODE__", ""))
            scripts[("curl (scarf.sh)", endpoint)] = write_script(directory, f"curl-{endpoint}",
                                                                    CURL.replace("__URL__", url))
        for path in scripts.values():  # warm the page cache and Python's bytecode caches
            run(path, env, args.cap)
        for _ in range(args.rounds):
            order = list(scripts)
            random.shuffle(order)
            for key in order:
                results.setdefault(key, []).append(run(scripts[key], env, args.cap))
                time.sleep(1.0)  # let a detached sender of the previous script import and send (2 CPUs)
    up.close()
    hanging.close()

    print(f"a bash script with telemetry in its EXIT trap: wall time, median of {args.rounds} interleaved rounds "
          f"(ms; cost = minus the script without telemetry; {os.cpu_count()} CPUs)")
    variants = ("none", "start-up only", "send --detach", "curl (scarf.sh)", "send (waits)")
    print(f"{'variant':<17}" + "".join(f"{e + ' ms':>13}{'cost':>8}" for e in urls))
    for variant in variants:
        cells = []
        for endpoint in urls:
            median = statistics.median(results[(variant, endpoint)])
            base = statistics.median(results[("none", endpoint)])
            if median == float("inf"):
                cells.append(f"{'>' + format(args.cap * 1000, '.0f'):>13}{'':>8}")
            else:
                cells.append(f"{median * 1000:>13.0f}{(median - base) * 1000:>+8.0f}")
        print(f"{variant:<17}" + "".join(cells))


if __name__ == "__main__":
    main()
