"""eventlet and gevent, imported or monkey-patched before or after the package, in short- and
long-lived hosts: exactly one ping, nothing on stdout or stderr, exit code 0.

The cases run as one parallel batch of child hosts (``hosts.shared_batch``), once per
session even under ``pytest -n N``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import pytest
from hosts import DEFERRAL, IMPORTED, LIFETIMES, PATH, PKG, Run, assert_quiet, paths, run_case, shared_batch

pytestmark = pytest.mark.skipif(not hasattr(os, "posix_spawn"), reason="the detached sender needs posix_spawn")


def green_available(lib: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(lib) is not None


# --- 1. eventlet and gevent, before and after, imported and patched -----------------------

#: eventlet warns that it is deprecated when imported from ``__main__``: the host's own
#: business, silenced narrowly so that anything else on stderr is seen.
QUIET_EVENTLET = (
    "import warnings\n"
    "warnings.filterwarnings('ignore', message=r'\\s*Eventlet is deprecated')\n"
)


GREEN_IMPORT = {"eventlet": QUIET_EVENTLET + "import eventlet\n", "gevent": "import gevent\n"}


GREEN_PATCH = {
    "eventlet": QUIET_EVENTLET + "import eventlet\neventlet.monkey_patch()\n",
    "gevent": "from gevent import monkey\nmonkey.patch_all()\n",
}


GREEN_LIBS = ("eventlet", "gevent")


GREEN_MODES = ("import-before", "import-after", "patch-before", "patch-after")


#: How long the long-lived child sleeps after the imports (with the possibly patched ``time.sleep``).
LONG_LIFE = 2.5


def green_body(lib: str, mode: str, life: str) -> str:
    green = (GREEN_PATCH if mode.startswith("patch") else GREEN_IMPORT)[lib]
    ours = f"import {PKG}\n{IMPORTED}"
    body = green + ours if mode.endswith("before") else ours + green
    if life == "long":
        body += f"time.sleep({LONG_LIFE})\n"
    return body + f"RESULT['green'] = {lib!r} in sys.modules\n"


@pytest.fixture(scope="module")
def green_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    def cases(root: Path) -> dict[str, Callable[[], Run]]:
        return {
            f"{lib}-{mode}-{life}": (lambda lib=lib, mode=mode, life=life: run_case(
                root / f"{lib}-{mode}-{life}", green_body(lib, mode, life)))
            for lib in GREEN_LIBS if green_available(lib)
            for mode in GREEN_MODES
            for life in LIFETIMES
        }

    return shared_batch(tmp_path_factory, "green", cases)


@pytest.mark.parametrize("life", LIFETIMES)
@pytest.mark.parametrize("mode", GREEN_MODES)
@pytest.mark.parametrize("lib", GREEN_LIBS)
def test_green_libraries(green_runs, lib, mode, life):
    pytest.importorskip(lib)
    run = green_runs[f"{lib}-{mode}-{life}"]
    assert_quiet(run)  # no MonkeyPatchWarning, no "Exception ignored in thread", no hang
    assert run.report["green"] is True, run
    assert paths(run.requests) == [PATH], run
    # Delivered in life when the child outlived the deferral (a loaded machine may still
    # have it in the sender's hands at exit), else handed over at exit.
    lifetime = run.report["ended_at"] - run.report["imported_at"]
    assert run.ping[0] in (("sent", "handed-over") if lifetime > DEFERRAL / 2 else ("handed-over",)), run
