"""The detached sender's own cost, per case: CPU and peak memory (issue 18).

Run it with the project installed (``pip install -e .``)::

    python benchmarks/sender_cost.py                      # 11 interleaved rounds, ~1 minute
    python benchmarks/sender_cost.py --baseline DIR       # another scarf_autoping side by side
    python benchmarks/sender_cost.py --rounds 21 --json PATH

Each case is one ping job, handed to a sender started exactly as a host starts it at
exit (``spawn.spawn(..., orphan=True)``: ``python -I -S -c BOOTSTRAP`` through
``/bin/sh``), which a worker process waits for as its child subreaper: its CPU and peak
memory come from ``wait4`` on the sender itself. (Not ``wait4`` on a direct child:
``posix_spawn`` is a ``vfork``, and Linux counts the parent's resident set at the
``exec`` in the child's ``ru_maxrss``.) A worker per code base (this checkout, and
``--baseline``'s, found first on ``PYTHONPATH``), the cases and the code bases
interleaved in every round:

* ``http``: the default template against a loopback endpoint;
* ``http, 300 more distributions``: the same, with 300 more ``*.dist-info`` on the path
  (the package looked up is one of them);
* ``https, REQUESTS_CA_BUNDLE``: a loopback TLS endpoint whose throwaway CA is given by
  ``REQUESTS_CA_BUNDLE`` (needs ``trustme``, a test dependency; skipped without it);
* ``https, certifi's bundle``: the same endpoint with no variable: certifi's bundle is
  loaded and the certificate refused, which costs what a real endpoint's would.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Reaper, child_env, machine_line, table

TEMPLATE = "/p/{package}/{version}/{platform}/{python}/{arch}/{distro}"


def serve(context: ssl.SSLContext | None = None) -> tuple[str, http.server.HTTPServer]:
    """A loopback endpoint answering ``204`` (over TLS with ``context``)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"{'https' if context else 'http'}://127.0.0.1:{server.server_address[1]}", server


def worker(cases: list[dict[str, object]]) -> None:
    """In a worker: each case's sender, started as a host starts it, waited for as our orphan."""
    import time

    from scarf_autoping import spawn

    reaper = Reaper()
    if not reaper.enabled:
        raise SystemExit("no child subreaper here (Linux only)")
    out = []
    for case in cases:
        extra = [str(p) for p in case["path"]]  # type: ignore[union-attr]
        sys.path[:0] = extra  # the host's path, as a host with them installed would hand over
        os.environ.clear()
        os.environ.update(case["env"])  # type: ignore[arg-type]
        job = {"method": "GET", "template": str(case["url"]) + TEMPLATE, "package": case["package"], "version": None,
               "variables": {}, "ci": False, "timeout": 3.0, "retry_interval": None}
        started = time.perf_counter()
        if spawn.spawn([job], delay=0.0, orphan=True) is None:
            raise SystemExit("spawn.spawn() could not start a sender")
        found = reaper.settle(started, 30.0)
        del sys.path[:len(extra)]
        if len(found) != 1 or found[0].cpu is None:
            raise SystemExit(f"expected one sender, found {len(found)}")
        out.append({"cpu": found[0].cpu, "maxrss": found[0].maxrss})
    print(json.dumps(out))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=11, help="interleaved rounds (default 11)")
    parser.add_argument("--baseline", metavar="DIR",
                        help="a directory holding another scarf_autoping (e.g. `git archive main` unpacked)")
    parser.add_argument("--json", metavar="PATH", help="also write every sender's figures to PATH")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(json.loads(sys.stdin.read()))
        return 0

    scratch = Path(tempfile.mkdtemp(prefix="scarf-autoping-sender-cost-"))
    many = scratch / "many"
    for i in range(300):
        info = many / f"dist_{i:03d}-1.{i}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: dist-{i:03d}\nVersion: 1.{i}\n")
    plain_url, plain = serve()
    servers = [plain]
    base_env = {k: v for k, v in child_env().items() if k != "PYTHONIOENCODING"}
    cases: dict[str, dict[str, object]] = {
        "http": {"url": plain_url, "path": [], "env": base_env, "package": "scarf-autoping"},
        "http, 300 more distributions": {"url": plain_url, "path": [str(many)], "env": base_env,
                                         "package": "dist-150"},
    }
    try:
        import trustme
    except ImportError:
        trustme = None
        print("https cases skipped: `trustme` is not installed (pip install trustme)", file=sys.stderr)
    if trustme is not None:
        ca = trustme.CA()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(context)
        ca_pem = scratch / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_pem))
        tls_url, tls = serve(context)
        servers.append(tls)
        cases["https, REQUESTS_CA_BUNDLE"] = {"url": tls_url, "path": [], "package": "scarf-autoping",
                                              "env": {**base_env, "REQUESTS_CA_BUNDLE": str(ca_pem)}}
        cases["https, certifi's bundle (certificate refused)"] = {"url": tls_url, "path": [], "env": base_env,
                                                                  "package": "scarf-autoping"}
    bases = {"this checkout": None}
    if args.baseline:
        baseline = str(Path(args.baseline).resolve())
        if not (Path(baseline) / "scarf_autoping" / "__init__.py").exists():
            parser.error(f"--baseline: no scarf_autoping package in {baseline}")
        bases = {f"baseline (`{Path(baseline).name}`)": baseline, **bases}
    figures: dict[tuple[str, str], list[dict[str, float]]] = {}
    try:
        for _ in range(args.rounds):
            for label, home in bases.items():
                env = child_env(home) if home else child_env()
                proc = subprocess.run([sys.executable, __file__, "--worker"], input=json.dumps(list(cases.values())),
                                      capture_output=True, text=True, env=env, cwd=scratch, timeout=300, check=False)
                if proc.returncode:
                    raise SystemExit(f"worker failed: {proc.stderr.strip()[-500:]}")
                for name, result in zip(cases, json.loads(proc.stdout)):
                    figures.setdefault((name, label), []).append(result)
    finally:
        for server in servers:
            server.shutdown()
        subprocess.run(["rm", "-rf", str(scratch)], check=False)
    rows = []
    for name in cases:
        row = [name]
        for label in bases:
            got = figures[(name, label)]
            row.append(f"{statistics.median(f['cpu'] for f in got) * 1000:.0f} ms, "
                       f"{statistics.median(f['maxrss'] for f in got):.1f} MiB")
        rows.append(row)
    print(f"\n`python benchmarks/sender_cost.py --rounds {args.rounds}"
          f"{' --baseline ' + str(args.baseline) if args.baseline else ''}`: medians of {args.rounds} interleaved "
          f"rounds; {machine_line()}\n")
    print(table(["the detached sender: CPU, peak memory", *bases], rows))
    if args.json:
        Path(args.json).write_text(json.dumps({f"{k[0]} | {k[1]}": v for k, v in figures.items()}, indent=1),
                                   encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
