"""A demo that needs no account and no network: a throwaway package with the one
``autoping`` line is imported in a child process and pings a server on 127.0.0.1."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

received: list[str] = []


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        received.append(f"{self.command} {self.path}  ({self.headers.get('User-Agent')})")
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def main() -> int:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    template = url + "/telemetry/{package}/{version}/{platform}/{python}/{arch}/{distro}"
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp)
        (site / "demo_pkg").mkdir()
        (site / "demo_pkg" / "__init__.py").write_text(
            f"from scarf_autoping import autoping; autoping('demo-pkg', {template!r})\n"
        )
        info = site / "demo_pkg-1.0.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: demo-pkg\nVersion: 1.0.0\n")
        env = {k: v for k, v in os.environ.items() if k not in ("CI", "DO_NOT_TRACK", "SCARF_NO_ANALYTICS")}
        env["PYTHONPATH"] = str(site)
        print(f"importing demo_pkg in a child process; template:\n  {template}")
        subprocess.run([sys.executable, "-c", "import demo_pkg"], env=env, check=True)
    server.shutdown()
    print("the collector received:" if received else "no ping arrived")
    for line in received:
        print("  " + line)
    return 0 if received else 1


if __name__ == "__main__":
    raise SystemExit(main())
