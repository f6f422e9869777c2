"""Events per second over HTTP and HTTPS on loopback: scarf-autoping's ScarfEventLogger
side by side with the Scarf Python SDK (``scarf-sdk``, from the ``test`` extra).

Each round, in a random order, each logger is created fresh, sends a few warm-up events,
then ``--events`` timed events to a keep-alive HTTP/1.1 server on 127.0.0.1 (HTTPS: the
same server behind TLS with a throwaway CA from ``trustme``, trusted through
``REQUESTS_CA_BUNDLE``, which both honour). A third row, ``no reuse``, sends
each event on a connection of its own (what scarf-autoping 0.1 did). Reported: the
median events per second over
the rounds, and the TCP connections the server accepted for one logger's events
(warm-up included).

    .venv/bin/python benchmarks/events.py [--rounds 7] [--events 200]
"""

from __future__ import annotations

import argparse
import http.server
import os
import random
import ssl
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable


class Server:
    """A keep-alive HTTP/1.1 server answering every POST with ``204``; counts connections."""

    def __init__(self, context: ssl.SSLContext | None = None) -> None:
        self.connections = 0
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

        class Threading(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self) -> tuple[object, object]:
                request = super().get_request()
                owner.connections += 1
                return request

        self.server = Threading(("127.0.0.1", 0), Handler)
        if context is not None:
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        scheme = "https" if context is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}/events"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class NoReuse:
    """What 0.1 did: a new connection (and TLS handshake) per event, via ``transport.send``."""

    def __init__(self, url: str) -> None:
        self.url = url

    def log_event(self, properties: dict) -> bool:
        import json

        from scarf_autoping import events, transport

        body = json.dumps(properties).encode()
        headers = {"Content-Type": "application/json", "User-Agent": events.user_agent()}
        return transport.send("POST", self.url, timeout=3.0, headers=headers, body=body).ok


def loggers() -> dict[str, Callable[[str], object]]:
    from scarf_autoping import ScarfEventLogger

    found: dict[str, Callable[[str], object]] = {"scarf-autoping": ScarfEventLogger, "no reuse": NoReuse}
    try:
        from scarf import ScarfEventLogger as Sdk

        found["scarf-sdk"] = Sdk
    except ImportError:
        print("scarf-sdk is not installed (pip install -e '.[test]'): measuring scarf-autoping alone", file=sys.stderr)
    return found


def one(factory: Callable[[str], object], server: Server, events: int) -> tuple[float, int]:
    """Events per second for one fresh logger, and the connections its events opened."""
    before = server.connections
    logger = factory(server.url)
    for _ in range(3):
        logger.log_event({"event": "warm-up"})  # type: ignore[attr-defined]
    started = time.perf_counter()
    for i in range(events):
        if not logger.log_event({"event": "bench", "i": i}):  # type: ignore[attr-defined]
            raise SystemExit(f"{factory.__module__}: an event was not delivered")
    seconds = time.perf_counter() - started
    connections = server.connections - before
    close = getattr(logger, "close", None)
    if close is not None:
        close()
    return events / seconds, connections


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--events", type=int, default=200)
    args = parser.parse_args()
    for name in ("DO_NOT_TRACK", "SCARF_NO_ANALYTICS", "SCARF_ANALYTICS", "HTTP_PROXY", "HTTPS_PROXY",
                 "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        os.environ.pop(name, None)

    import trustme

    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(tmp) / "ca.pem"
        ca.cert_pem.write_to_path(str(bundle))
        os.environ["REQUESTS_CA_BUNDLE"] = str(bundle)
        servers = {"http": Server(), "https": Server(context)}
        found = loggers()
        results: dict[tuple[str, str], list[float]] = {}
        connections: dict[tuple[str, str], int] = {}
        for _ in range(args.rounds):
            order = [(scheme, name) for scheme in servers for name in found]
            random.shuffle(order)
            for scheme, name in order:
                rate, conns = one(found[name], servers[scheme], args.events)
                results.setdefault((scheme, name), []).append(rate)
                connections[(scheme, name)] = max(connections.get((scheme, name), 0), conns)
        for server in servers.values():
            server.close()

    print(f"events per second on loopback, {args.events} events per logger, median of {args.rounds} "
          f"interleaved rounds (Python {sys.version.split()[0]})")
    print(f"{'scheme':<7} {'logger':<15} {'events/s':>9} {'ms/event':>9} {'connections':>12}")
    for (scheme, name), rates in sorted(results.items()):
        rate = statistics.median(rates)
        print(f"{scheme:<7} {name:<15} {rate:>9.0f} {1000 / rate:>9.2f} {connections[(scheme, name)]:>12}")


if __name__ == "__main__":
    main()
