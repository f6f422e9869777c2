from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from helpers import Collector


@pytest.fixture
def collector():
    server = Collector()
    yield server
    server.close()


@pytest.fixture
def make_collector():
    servers: list[Collector] = []

    def make(behaviour: str = "ok") -> Collector:
        server = Collector(behaviour)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


@pytest.fixture
def site(tmp_path: Path) -> Path:
    path = tmp_path / "site"
    path.mkdir()
    return path
