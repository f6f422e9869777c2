"""The delivery engine's own corners: the settings encoder, the marker, the fallbacks when
no detached sender can run, a sender that dies, and a host that is PID 1.

Behaviour is seen from outside: child interpreters importing throwaway packages with
real metadata, pinging a loopback collector.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from helpers import autoping_package, child_env, make_package, run_child
from hypothesis import given
from hypothesis import strategies as st

from scarf_autoping import policy, spawn

# --- pure pieces ----------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@given(json_values)
def test_settings_encoder_is_json_and_ascii(value):
    encoded = spawn.to_json(value)
    assert encoded.isascii()
    assert json.loads(encoded) == value


def test_settings_encoder_keeps_lone_surrogates_and_floats():
    assert json.loads(spawn.to_json("\udcc3 path")) == "\udcc3 path"
    assert json.loads(spawn.to_json({"timeout": 2.5, "delay": 0.0})) == {"timeout": 2.5, "delay": 0.0}


@pytest.mark.parametrize("name", ["pkg-é", "Café_Tools", "a,b", "100%", "naïve.pkg", "日本"])
def test_marker_is_ascii_and_round_trips(name):
    marker = policy.marker_name(name)
    assert marker.isascii() and "," not in marker
    value = policy.mark_pinged("other", name)
    assert value.isascii()
    assert policy.already_pinged({policy.PINGED: value}, name)
    assert not policy.already_pinged({policy.PINGED: value}, name + "x")


# --- when no detached sender can run ----------------------------------------------------

#: Makes the child look like an embedding program with no Python interpreter to be found
#: (as on Windows, in a frozen app, or inside an embedding binary with no python next to it).
NO_INTERPRETER = (
    "import sys\n"
    "sys.executable = '/nonexistent/bin/embedder'\n"
    "sys.exec_prefix = sys.base_exec_prefix = '/nonexistent'\n"
)


def test_without_an_interpreter_the_host_sends_and_exit_waits(collector, site):
    # exit_timeout=10: the host imports requests at exit, which a loaded machine may take seconds for.
    autoping_package(site, "pkg_noexe", collector.url + "/t/{package}/{version}", args="exit_timeout=10")
    code = NO_INTERPRETER + (
        "import atexit\n"
        "atexit.register(lambda: print(pkg_noexe.PING.status, 'threading' in sys.modules))\n"
        "import pkg_noexe\n"
    )
    child = run_child(code, child_env(site))
    assert (child.returncode, child.stderr) == (0, ""), child
    # Sent from the host at exit, within exit_timeout; threading imported on the main thread.
    assert child.stdout.split() == ["sent", "True"], child
    assert [r.path for r in collector.settle(0.3)] == ["/t/pkg-noexe/1.2.3"]


def test_without_an_interpreter_a_long_lived_host_sends_from_its_worker(collector, site):
    autoping_package(site, "pkg_noexe2", collector.url + "/t/{package}")
    code = NO_INTERPRETER + "import pkg_noexe2\nprint(pkg_noexe2.PING.wait(10), 'requests' in sys.modules)\n"
    child = run_child(code, child_env(site))
    assert (child.returncode, child.stderr, child.stdout) == (0, "", "True True\n"), child
    assert len(collector.settle(0.3)) == 1


def test_a_sender_that_dies_without_a_result_fails_the_ping_quietly(collector, site):
    # The sender finds modules on the host's sys.path: a broken ``requests`` there kills it.
    (site / "requests.py").write_text("import os\nos._exit(3)\n", encoding="utf-8")
    autoping_package(site, "pkg_dies", collector.url + "/t/{package}")
    child = run_child("import pkg_dies\nprint(pkg_dies.PING.wait(10), pkg_dies.PING.status, pkg_dies.PING.reason)",
                      child_env(site))
    assert (child.returncode, child.stderr) == (0, ""), child
    assert child.stdout == "False failed the detached sender ended without a result\n", child
    assert collector.settle(0.3) == []


def test_the_sender_runs_with_the_hosts_modules_and_metadata(collector, site):
    # A package only the host's sys.path knows (inserted at run time, not PYTHONPATH).
    hidden = site / "hidden"
    make_package(hidden, "pkg_hidden", "from scarf_autoping import autoping\n"
                 f"PING = autoping('pkg-hidden', {collector.url + '/t/{package}/{version}'!r})\n",
                 version="7.7.7", dist_name="pkg-hidden")
    child = run_child(f"import sys; sys.path.insert(0, {str(hidden)!r}); import pkg_hidden", child_env(None))
    assert (child.returncode, child.stdout, child.stderr) == (0, "", ""), child
    assert [r.path for r in collector.wait_for(1, timeout=10)] == ["/t/pkg-hidden/7.7.7"]


# --- a host that is PID 1 -------------------------------------------------------------


def _can_unshare_pid() -> bool:
    if not sys.platform.startswith("linux") or shutil.which("unshare") is None or os.geteuid() != 0:
        return False
    probe = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True, check=False)
    return probe.returncode == 0


@pytest.mark.skipif(not _can_unshare_pid(), reason="needs root and unshare --pid (a PID namespace) on Linux")
def test_pid_1_host_sends_before_exit_instead_of_handing_over(collector, site):
    """The init process of a container: its exit kills every process in the namespace, a
    detached sender included, so exit sends from the host within exit_timeout."""
    autoping_package(site, "pkg_init", collector.url + "/t/{package}")
    code = ("import atexit, os\n"
            "atexit.register(lambda: print(os.getpid(), pkg_init.PING.status))\n"
            "import pkg_init\n")
    env = child_env(site)
    proc = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c", code], env=env,
                          capture_output=True, text=True, timeout=30, check=False, stdin=subprocess.DEVNULL)
    assert (proc.returncode, proc.stderr) == (0, ""), proc
    assert proc.stdout == "1 sent\n", proc
    assert len(collector.settle(0.3)) == 1


# --- sub-interpreters before CPython 3.12 (mod_wsgi's default) ------------------------


def _old_subinterpreters() -> bool:
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False
    try:
        import _xxsubinterpreters  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(not _old_subinterpreters(), reason="CPython 3.9-3.11 sub-interpreters (_xxsubinterpreters)")
@pytest.mark.parametrize("destroy", [True, False], ids=["destroyed", "left-for-shutdown"])
def test_a_sub_interpreter_before_3_12_starts_no_thread(collector, site, tmp_path, destroy):
    """3.9-3.11 have no _thread._is_main_interpreter; a thread of ours in a sub-interpreter
    aborted the process when the sub-interpreter ended (Py_EndInterpreter)."""
    autoping_package(site, "pkg_oldsub", collector.url + "/t/{package}")
    out = tmp_path / "sub.txt"
    sub_code = (f"import sys; sys.path.insert(0, {str(site)!r}); import pkg_oldsub\n"
                f"open({str(out)!r}, 'w').write(pkg_oldsub.PING.status + '|' + pkg_oldsub.PING.reason)\n")
    code = ("import _xxsubinterpreters as interpreters\n"
            "sub = interpreters.create()\n"
            f"interpreters.run_string(sub, {sub_code!r})\n"
            + ("interpreters.destroy(sub)\n" if destroy else "")
            + "import pkg_oldsub\n")  # the main interpreter pings
    child = run_child(code, child_env(site), timeout=30)
    assert (child.returncode, child.stdout, child.stderr) == (0, "", ""), child
    status, reason = out.read_text(encoding="utf-8").split("|")
    assert status == "disabled" and "sub-interpreter" in reason
    assert len(collector.expect(1)) == 1


# --- interpreter exit while our thread waits out its deferral --------------------------


def test_many_short_lived_hosts_under_x_dev_exit_cleanly(collector, site):
    """Finalization clears module globals; a lock freed while our thread waited on it made
    CPython 3.9 under -X dev segfault at exit (1 run in 30 from a shell; rarer under this
    harness: 60 children caught the old code in 1 of 4 test runs, hence 120)."""
    from concurrent.futures import ThreadPoolExecutor

    autoping_package(site, "pkg_xdev", collector.url + "/t/{package}")
    env = child_env(site)

    def run(_: int) -> tuple[int, str, str]:
        proc = subprocess.run([sys.executable, "-X", "dev", "-c", "import pkg_xdev"], env=env, capture_output=True,
                              text=True, timeout=30, check=False, stdin=subprocess.DEVNULL)
        return proc.returncode, proc.stdout, proc.stderr

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(run, range(120)))
    assert [r for r in results if r != (0, "", "")] == []
    assert len(collector.expect(120, timeout=60, quiet=0.5)) == 120
