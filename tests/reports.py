"""Collector databases written directly, for the report's tests (text and HTML)."""

from __future__ import annotations

import json
from pathlib import Path

from scarf_autoping.tools.collector import _COLUMNS, Store


def make_db(path: Path, pings: list[dict[str, object]]) -> Path:
    """A collector database holding ``pings`` (dicts of column values; defaults filled in)."""
    Store(path).close()
    import sqlite3

    rows = []
    for ping in pings:
        record = {"received_at": "2026-11-20T10:00:00.000Z", "method": "GET", "path": "/", "query": "",
                  "variables": None, "user_agent": "t", "client_ip": None, "body": None, **ping}
        if isinstance(record["variables"], dict):
            record["variables"] = json.dumps(record["variables"])
        rows.append(tuple(record[c] for c in _COLUMNS))
    with sqlite3.connect(str(path)) as connection:
        connection.executemany(f"INSERT INTO pings ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
                               rows)
    connection.close()
    return path


def ping(package: str, version: str, when: str = "2026-11-20T10:00:00.000Z", **more: str) -> dict[str, object]:
    return {"received_at": when, "path": f"/t/{package}/{version}", "variables": {"package": package,
                                                                                 "version": version, **more}}
