"""What telemetry in a shell script's EXIT trap costs the script: the docs/events.md recipe
(``scarf-autoping send --detach``) side by side with ``curl`` as ``scarf.sh`` calls it, the
synchronous ``scarf-autoping send``, and no telemetry at all.

Each variant is a small bash script (``set -euo pipefail``, one ``echo``, exit 0) run as a
child process; its wall time is measured from start to exit, with the endpoint on
127.0.0.1 **up** (answers ``204`` at once), **down** (connection refused) and **hanging**
(accepts, never answers). Rounds interleave the variants in a random order; medians are
reported, and the cost of each variant is its median minus the bare script's. The
``python -c pass`` row runs a bare interpreter start in the trap (the same interpreter
the command runs on); ``python -c pass, alone`` is the same start as a process of its
own, without bash, and every cost is also shown as a multiple of it (issue 20: the
recipe at most 2.25 times). The ``start-up only`` row runs ``scarf-autoping --version``
in the trap (the command line's parser). ``send --detach (GET)`` is the shortest use:
``--detach --quiet --package mytool URL/s/{package}/{platform}/{arch}``. A run is
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
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Collector, machine_line, wall_time

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

#: A bare interpreter start, the yardstick: the same interpreter, run the same way.
BARE = r"""
_tool_telemetry() {
    local code=$?
    '__PYTHON__' -c pass >/dev/null 2>&1 || :
}
trap _tool_telemetry EXIT
"""

#: The shortest use of the command: a GET, its facts in the path.
SIMPLE = r"""
_tool_telemetry() {
    scarf-autoping send --detach --quiet --package mytool '__URL__/s/{package}/{platform}/{arch}' || :
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


#: The yardstick, run as a process of its own (no bash): what the figures are multiples of.
BARE_START = "python -c pass, alone"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--cap", type=float, default=6.0)
    args = parser.parse_args()
    if shutil.which("bash") is None or shutil.which("curl") is None:
        raise SystemExit("needs bash and curl")
    env = {k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL", "TMPDIR") if k in os.environ}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"

    up, hanging = Collector(), Collector("hang")
    urls = {"up": up.url + "/run", "down": refused_url(), "hanging": hanging.url + "/run"}
    results: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        runs: dict[tuple[str, str], list[str]] = {}

        def script(key: tuple[str, str], trap: str) -> None:
            runs[key] = ["bash", str(write_script(directory, "-".join(key).replace(" ", "_"), trap))]

        for endpoint, url in urls.items():
            runs[(BARE_START, endpoint)] = [sys.executable, "-c", "pass"]
            script(("none", endpoint), "")
            script(("python -c pass", endpoint), BARE.replace("__PYTHON__", sys.executable))
            script(("send --detach (GET)", endpoint), SIMPLE.replace("__URL__", url))
            script(("start-up only", endpoint), START_UP)
            script(("send --detach", endpoint), RECIPE.replace("__URL__", url).replace("__MODE__", "--detach"))
            script(("send (waits)", endpoint), RECIPE.replace("__URL__", url).replace("__MODE__", ""))
            script(("curl (scarf.sh)", endpoint), CURL.replace("__URL__", url))
        for argv in runs.values():  # warm the page cache and Python's bytecode caches
            wall_time(argv, env, args.cap)
        time.sleep(1.0)
        for _ in range(args.rounds):
            order = list(runs)
            random.shuffle(order)
            for key in order:
                results.setdefault(key, []).append(wall_time(runs[key], env, args.cap))
                # Let a detached sender of the previous script import and send (2 CPUs).
                time.sleep(1.0 if key[0].startswith("send") else 0.1)
    up.close()
    hanging.close()

    print(f"a bash script with telemetry in its EXIT trap: wall time, median of {args.rounds} interleaved rounds "
          f"(ms; cost = minus the script without telemetry; x bare = cost / the median of every `python -c pass` run "
          "alone)")
    print(machine_line())
    variants = (BARE_START, "none", "python -c pass", "start-up only", "send --detach (GET)", "send --detach",
                "curl (scarf.sh)", "send (waits)")
    print(f"{'variant':<22}" + "".join(f"{e + ' ms':>13}{'cost':>8}{'x bare':>8}" for e in urls))
    for variant in variants:
        cells = []
        for endpoint in urls:
            median = statistics.median(results[(variant, endpoint)])
            base = statistics.median(results[("none", endpoint)])
            bare = statistics.median(x for e in urls for x in results[(BARE_START, e)])  # the same in every column
            if median == float("inf"):
                cells.append(f"{'>' + format(args.cap * 1000, '.0f'):>13}{'':>16}")
            elif variant == BARE_START:
                cells.append(f"{median * 1000:>13.1f}{'':>8}{median / bare:>8.2f}")
            else:
                cells.append(f"{median * 1000:>13.1f}{(median - base) * 1000:>+8.1f}{(median - base) / bare:>8.2f}")
        print(f"{variant:<22}" + "".join(cells))


if __name__ == "__main__":
    main()
