"""Fixtures shared by the tools' tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from reports import make_db, ping

# --------------------------------------------------------------------------
# The report: names recorded before normalisation, Pythons by minor, Linux distributions
# --------------------------------------------------------------------------


@pytest.fixture
def old_and_new(tmp_path: Path) -> Path:
    """Pings as older versions sent them (raw arch, no python_minor) next to today's."""
    return make_db(tmp_path / "raw.sqlite", [
        ping("my-pkg", "1.0", python="3.12.1", platform="windows", os="Windows", arch="AMD64", distro="unknown"),
        ping("my-pkg", "1.0", python="3.12.7", platform="linux", os="Linux", arch="x86_64", distro="debian"),
        ping("my-pkg", "1.0", python="3.12.7", python_minor="3.12", platform="linux", arch="x86_64",
             distro="ubuntu"),
        ping("my-pkg", "1.0", python="3.11.9", platform="linux", arch="aarch64", distro="debian"),
        ping("my-pkg", "1.0", python="3.11.2", platform="macos", arch="arm64", distro="unknown"),
        ping("my-pkg", "1.0", python="3.13.0", os="Linux", arch="i686", distro="alpine"),  # no platform: os says Linux
        ping("my-pkg", "1.0", python="3.13.1", platform="windows", arch="ARM64", distro="unknown"),
        {"received_at": "2026-11-20T10:00:00.000Z", "path": "/q", "query": "package=my-pkg&arch=amd64&python=3.12.3"},
    ])
