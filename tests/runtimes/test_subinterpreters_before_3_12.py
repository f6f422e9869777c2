"""Sub-interpreters before CPython 3.12 (legacy ones sharing the main interpreter's
config): the library starts no thread in them, whether they are destroyed or left for
shutdown. 3.12+'s isolated and legacy sub-interpreters: ``test_subinterpreters.py``."""

from __future__ import annotations

import sys

import pytest
from helpers import autoping_package, child_env, run_child

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
