"""Fixtures for every test: loopback servers (one factory, every server closed after its
test) and a site directory for throwaway packages. ``tests/`` is put on ``sys.path`` so
that ``helpers``, ``loopback`` and the other shared modules import by their names."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from loopback import Collector

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable, Iterator


@pytest.fixture
def make_collector() -> Iterator[Callable[..., Collector]]:
    """The one factory of loopback servers.

    ``make_collector(mode, ssl_context, port=..., respond=...)`` starts a
    :class:`loopback.Collector` with those arguments; ``kind=`` starts another class of
    ``loopback`` with its own (``kind=RawServer``: ``respond, ssl_context``). Every server
    it started is closed when the test ends, whatever the test did.
    """
    started: list[Collector] = []

    def make(*args: object, kind: type[Collector] = Collector, **kwargs: object) -> Collector:
        server = kind(*args, **kwargs)
        started.append(server)
        return server

    yield make
    for server in started:
        server.close()


@pytest.fixture
def collector(make_collector: Callable[..., Collector]) -> Collector:
    """One loopback server answering every request with ``204``."""
    return make_collector()


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """An empty directory for throwaway packages, to be put on a child's ``PYTHONPATH``."""
    path = tmp_path / "site"
    path.mkdir()
    return path
