"""Benchmark: ``scarf-autoping report --html`` (and the text report) over 1,000,000 pings.

Fills a temporary database with synthetic pings through the collector's own schema
(:class:`scarf_autoping.tools.collector.Store` creates it; rows have the columns and the
``variables`` JSON that ``Collector`` writes for the demo route), inserted in bulk with
``executemany`` in one transaction. Then runs ``python -m scarf_autoping report --html``
and the text ``report`` as child processes, interleaved, several rounds, and prints the
median wall time of each and the page's size. The targets (issue 12): under 5 s and
under 1 MB for 1,000,000 pings.

    python benchmarks/report_html.py [--pings 1000000] [--rounds 5] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from scarf_autoping.tools.collector import _COLUMNS, Store

PACKAGES = ("my-pkg", "my-pkg", "my-pkg", "other_lib")
VERSIONS = ("1.0.0", "1.1.0", "1.2.0", "1.2.1", "1.3.0", "2.0.0rc1", "2.0.0", "2.0.1", "2.1.0", "2.2.0", "3.0.0",
            "3.0.1")
PYTHONS = ("3.8.18", "3.9.18", "3.10.13", "3.11.7", "3.11.9", "3.12.1", "3.12.4", "3.13.0")
PLATFORMS = ("linux", "linux", "linux", "macos", "windows")
ARCHES = ("x86_64", "x86_64", "aarch64", "arm64", "AMD64")
DISTROS = ("ubuntu", "debian", "fedora", "alpine", "arch", "unknown", "rhel", "centos", "opensuse-leap", "amzn")


def synthetic_rows(count: int, days: int, seed: int = 1) -> list[tuple[object, ...]]:
    """``count`` rows as the collector stores them for the demo route, spread over ``days`` days."""
    rng = random.Random(seed)
    end = datetime(2026, 11, 23, tzinfo=timezone.utc)
    rows = []
    for i in range(count):
        age = rng.random() * days
        when = end - timedelta(days=age)
        # Release uptake: newer versions only exist in the more recent days.
        newest = max(1, int(len(VERSIONS) * (1 - age / days)))
        variables = {"package": rng.choice(PACKAGES), "version": VERSIONS[rng.randrange(newest)],
                     "platform": rng.choice(PLATFORMS), "python": rng.choice(PYTHONS), "arch": rng.choice(ARCHES),
                     "distro": rng.choice(DISTROS)}
        path = "/telemetry/" + "/".join(variables[k] for k in ("package", "version", "platform", "python", "arch",
                                                                 "distro"))
        record = {"received_at": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"), "method": "GET",
                  "path": path, "query": "", "variables": json.dumps(variables),
                  "user_agent": f"scarf-autoping/0.1.0 bench/{i % 7}", "client_ip": None, "body": None}
        rows.append(tuple(record[c] for c in _COLUMNS))
    return rows


def fill(db: Path, count: int, days: int) -> float:
    """Create ``db`` with the collector's schema and ``count`` pings; return the seconds it took."""
    started = time.perf_counter()
    Store(db).close()  # the collector's own schema and checks
    connection = sqlite3.connect(str(db), isolation_level=None)
    try:
        batch = 100_000
        connection.execute("BEGIN")
        for start in range(0, count, batch):
            connection.executemany(
                f"INSERT INTO pings ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
                synthetic_rows(min(batch, count - start), days, seed=start))
        connection.execute("COMMIT")
    finally:
        connection.close()
    return time.perf_counter() - started


def timed(args: list[str]) -> float:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "scarf_autoping", "report", *args], check=True, env=env,
                   stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pings", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=180, help="the span of the synthetic pings (default 180)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--keep", metavar="DIR", help="write the database and page here instead of a temp dir")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="scarf-autoping-bench-") as tmp:
        folder = Path(options.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        db, page = folder / "pings.sqlite", folder / "report.html"
        db.unlink(missing_ok=True)
        filled = fill(db, options.pings, options.days)
        print(f"filled {db} with {options.pings:,} pings over {options.days} days in {filled:.1f} s "
              f"({db.stat().st_size / 2**20:.0f} MiB)")
        runs = {
            "report --html (all packages)": ["--db", str(db), "--html", str(page)],
            "report --html --package my_pkg --since 90 days": ["--db", str(db), "--html", str(page), "--package",
                                                                "my_pkg", "--since", "2026-08-25"],
            "report (text, default grouping)": ["--db", str(db)],
        }
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(options.rounds):  # interleaved rounds: a busy moment hits every variant alike
            for name, args in runs.items():
                times[name].append(timed(args))
        timed(runs["report --html (all packages)"])
        size = page.stat().st_size
        print(f"\n{'command':<50} {'median s':>9} {'min s':>7} {'max s':>7}   ({options.rounds} rounds, child "
              "processes, interpreter start-up included)")
        for name, values in times.items():
            print(f"{name:<50} {statistics.median(values):>9.2f} {min(values):>7.2f} {max(values):>7.2f}")
        print(f"\npage size: {size:,} bytes ({size / 1024:.0f} KiB); targets: under 5 s and under 1 MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
