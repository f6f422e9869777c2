"""One name per package (issue 9): ``{package}`` is the installed distribution's normalised
name whatever spelling or import name the author passed; a name that is not installed
still pings (version ``unknown``) and the debug line, ``status`` and ``facts`` say why; a
namespace import name never borrows another distribution's version.

Real throwaway distributions (dist-info on a site directory), child interpreters and a
loopback collector; the name lookup runs in the children, never in the test process.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from helpers import autoping_package, child_env, make_package, run_child

SCRIPT = str(Path(sys.executable).parent / "scarf-autoping")


def acme(site: Path, version: str = "2.0") -> None:
    """The distribution ``Acme.Widgets`` (normalised ``acme-widgets``) shipping the module ``acme_w``."""
    make_package(site, "acme_w", "", version=version, dist_name="Acme.Widgets")


def resolved(site: Path, *names: str) -> dict[str, list]:
    """``naming.resolve`` of each name, run in a child whose path holds ``site``."""
    import subprocess

    code = (
        "import json, sys\nfrom scarf_autoping import naming\n"
        "print(json.dumps({n: [r.name, r.version, r.problem, list(r.suggestions), naming.note(r)]"
        " for n in sys.argv[1:] for r in [naming.resolve(n)]}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, *names], env=child_env(site), capture_output=True, text=True,
                          timeout=30, check=False)
    assert proc.returncode == 0 and proc.stderr == "", proc
    return json.loads(proc.stdout)


@pytest.mark.parametrize("spelling", ["acme-widgets", "Acme.Widgets", "acme_widgets", "ACME__Widgets", "acme_w"])
def test_every_spelling_and_the_import_name_resolve_to_one_normalised_name(site, spelling):
    acme(site)
    name, version, problem, _, note = resolved(site, spelling)[spelling]
    assert (name, version, problem, note) == ("acme-widgets", "2.0", None, None)


def test_a_name_that_is_not_installed_is_normalised_and_explained_with_close_names(site):
    acme(site)
    make_package(site, "acme_tools", "", version="1.0", dist_name="acme-tools")
    out = resolved(site, "acme", "Acme-Widget", "nothing_like_it")
    name, version, problem, suggestions, note = out["acme"]
    assert (name, version) == ("acme", None)
    assert problem == "no installed distribution is named 'acme'"
    assert suggestions == ["acme-tools", "acme-widgets"]  # names it begins
    assert note == ("no installed distribution is named 'acme', so {version} is 'unknown'; "
                    "did you mean 'acme-tools' or 'acme-widgets'?")
    assert out["Acme-Widget"][0] == "acme-widget" and "acme-widgets" in out["Acme-Widget"][3]  # a near spelling
    assert out["nothing_like_it"][0] == "nothing-like-it" and out["nothing_like_it"][3] == []


def test_a_dist_info_without_metadata_is_a_name_with_an_unknown_version_and_hides_no_other(site):
    """An interrupted install leaves a ``.dist-info`` without ``METADATA``. Python 3.9's
    ``importlib_metadata`` 8 gives it no metadata at all (None), the standard library an
    empty one: on every version it is its directory's name with version ``unknown``, and
    the other distributions are still listed and suggested."""
    acme(site)
    make_package(site, "acme_tools", "", version="1.0", dist_name="acme-tools")
    (site / "broken-1.0.dist-info").mkdir()
    out = resolved(site, "broken", "acme", "acme_w")
    assert out["broken"][:3] == ["broken", "unknown", None]
    assert out["acme"][3] == ["acme-tools", "acme-widgets"]
    assert out["acme_w"][:3] == ["acme-widgets", "2.0", None]


def test_an_import_name_shipped_by_several_distributions_is_not_guessed(site):
    for dist, sub in (("ns-alpha", "a"), ("ns-beta", "b")):
        pkg = site / "nsx" / sub
        pkg.mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        (info / "RECORD").write_text(f"nsx/{sub}/__init__.py,,\n")
    out = resolved(site, "nsx", "nsx.b")
    assert out["nsx"][:2] == ["nsx", None]
    assert "shipped by several distributions (ns-alpha, ns-beta)" in out["nsx"][4]
    assert out["nsx.b"][:2] == ["ns-beta", "1.0"]  # the one that ships the dotted name


@pytest.mark.parametrize("spelling", ["acme_widgets", "Acme.Widgets", "acme_w"])
@pytest.mark.parametrize("on_exit", ["handoff", "wait"])
def test_the_ping_carries_the_normalised_distribution_name(site, collector, spelling, on_exit):
    """Both delivery paths: the detached sender (handoff) and the host's own thread (wait)."""
    acme(site)
    autoping_package(site, "host_pkg", collector.url + "/t/{package}/{version}", args=f"on_exit={on_exit!r}",
                     version=None, dist_name=spelling)
    child = run_child("import host_pkg; print(host_pkg.PING.wait(10), host_pkg.PING.package)", child_env(site))
    assert (child.returncode, child.stderr, child.stdout) == (0, "", f"True {spelling}\n"), child
    assert [r.path for r in collector.expect(1)] == ["/t/acme-widgets/2.0"]


@pytest.mark.parametrize("on_exit", ["handoff", "wait"])
def test_a_name_not_installed_still_pings_and_the_debug_line_says_why(site, collector, on_exit):
    acme(site)
    autoping_package(site, "host_pkg", collector.url + "/t/{package}/{version}", args=f"on_exit={on_exit!r}",
                     version=None, dist_name="acme")
    child = run_child("import host_pkg; print(host_pkg.PING.wait(10)); print(host_pkg.PING.reason)",
                      child_env(site, SCARF_AUTOPING_DEBUG="1"))
    assert child.returncode == 0, child
    assert [r.path for r in collector.expect(1)] == ["/t/acme/unknown"]
    note = "no installed distribution is named 'acme', so {version} is 'unknown'; did you mean 'acme-widgets'?"
    assert child.stdout == f"True\nHTTP 204; {note}\n", child
    debug = [line for line in child.stderr.splitlines() if line.startswith("scarf-autoping: acme: sent")]
    assert len(debug) == 1 and note in debug[0], child.stderr


@pytest.mark.parametrize("on_exit", ["handoff", "wait"])
def test_the_distributions_own_variable_opts_out_an_import_name(site, collector, on_exit):
    """``autoping("acme_w")`` checks ACME_W_NO_ANALYTICS at import time; ACME_WIDGETS_NO_ANALYTICS,
    the variable of the distribution it belongs to, is honoured where the name is resolved."""
    acme(site)
    autoping_package(site, "host_pkg", collector.url + "/t/{package}", args=f"on_exit={on_exit!r}", version=None,
                     dist_name="acme_w")
    child = run_child("import host_pkg; host_pkg.PING.wait(10); print(host_pkg.PING.status, host_pkg.PING.reason)",
                      child_env(site, ACME_WIDGETS_NO_ANALYTICS="1"))
    assert child.returncode == 0, child
    status, reason = child.stdout.split(" ", 1)
    # The host's own thread settles it "disabled"; a detached sender's outcome is read back
    # by the worker, which reports anything but "sent" as "failed".
    assert status == ("disabled" if on_exit == "wait" else status) and status in ("disabled", "failed"), child
    assert reason.startswith("opted out by ACME_WIDGETS_NO_ANALYTICS"), child
    assert collector.settle(0.5) == []


def test_the_import_path_of_the_host_does_not_resolve_names(site, collector):
    """Resolving is for the background: right after ``autoping()`` returns, nothing of it is loaded."""
    acme(site)
    autoping_package(site, "host_pkg", collector.url + "/t/{package}", version=None, dist_name="acme_w")
    child = run_child("import sys, host_pkg\n"
                      "print(sorted(m for m in ('scarf_autoping.naming', 'importlib.metadata', 'difflib')"
                      " if m in sys.modules))", child_env(site))
    assert (child.returncode, child.stdout) == (0, "[]\n"), child


def test_a_second_call_with_other_arguments_is_ignored_and_the_debug_line_says_so(site, collector):
    acme(site)
    code = (
        "from scarf_autoping import autoping\n"
        f"first = autoping('acme_widgets', {collector.url + '/one/{package}'!r})\n"
        f"second = autoping('Acme.Widgets', {collector.url + '/two/{package}'!r}, timeout=5)\n"
        f"same = autoping('acme_widgets', {collector.url + '/one/{package}'!r})\n"
        "print(first is second is same, first.wait(10))\n"
    )
    child = run_child(code, child_env(site, SCARF_AUTOPING_DEBUG="1"))
    assert child.returncode == 0 and child.stdout == "True True\n", child
    ignored = [line for line in child.stderr.splitlines() if "second autoping() call" in line]
    assert ignored == [
        (f"scarf-autoping: Acme.Widgets: a second autoping() call for 'acme-widgets' was ignored (package "
        f"'Acme.Widgets' instead of 'acme_widgets'; template {collector.url + '/two/{package}'!r} instead of "
        f"{collector.url + '/one/{package}'!r}; timeout 5.0 instead of 3.0): the first call wins, since a package "
        "pings once per process")
    ], child.stderr  # the identical third call is not reported
    assert [r.path for r in collector.expect(1)] == ["/one/acme-widgets"]


def test_a_second_call_is_silent_without_debug(site, collector):
    code = (f"from scarf_autoping import autoping\nautoping('p-q', {collector.url + '/a'!r}, on_exit='drop')\n"
            f"autoping('p_q', {collector.url + '/b'!r}, on_exit='drop')\n")
    child = run_child(code, child_env(site))
    assert (child.returncode, child.stdout, child.stderr) == (0, "", ""), child


# --------------------------------------------------------------------------
# The command line: status, facts, preview
# --------------------------------------------------------------------------


def cli(*args: str, env: dict[str, str]):
    import subprocess

    return subprocess.run([SCRIPT, *args], env=env, capture_output=True, text=True, timeout=30, check=False,
                          stdin=subprocess.DEVNULL)


def test_status_names_the_distribution_or_says_why_there_is_none(site):
    acme(site)
    found = cli("status", "--package", "acme_w", env=child_env(site))
    assert found.returncode == 0, found
    assert found.stdout.splitlines() == [
        "on for acme_w: no opt-out variable is set and no CI is detected",
        "decided by: the default",
        ("opt out with any of: DO_NOT_TRACK=1, SCARF_NO_ANALYTICS=1, SCARF_ANALYTICS=false, ACME_W_NO_ANALYTICS=1, "
        "ACME_WIDGETS_NO_ANALYTICS=1, or for good: scarf-autoping disable --package acme_w"),
        "pings carry package 'acme-widgets', version '2.0' (the installed distribution)",
        # No HOME in child_env(): no state directory (issue 18).
        "state: none kept (SCARF_AUTOPING_STATE_DIR is empty, or there is no home directory)",
    ]
    missing = cli("status", "--package", "acme", env=child_env(site))
    assert missing.stdout.splitlines()[-2] == (
        "note: no installed distribution is named 'acme', so {version} is 'unknown'; did you mean 'acme-widgets'?")
    off = cli("status", "--package", "acme_w", env=child_env(site, ACME_WIDGETS_NO_ANALYTICS="1"))
    assert off.stdout.startswith("off for acme_w: ACME_WIDGETS_NO_ANALYTICS is set"), off


def test_facts_and_preview_show_the_normalised_name_and_note_a_missing_one(site):
    acme(site)
    facts = cli("facts", "--json", "--package", "Acme.Widgets", env=child_env(site))
    values = json.loads(facts.stdout)
    assert (values["package"], values["version"], facts.stderr) == ("acme-widgets", "2.0", "")
    missing = cli("facts", "--json", "--package", "acme-widget", env=child_env(site))
    assert json.loads(missing.stdout)["version"] == "unknown"  # stdout stays one JSON object
    assert missing.stderr == ("scarf-autoping facts: note: no installed distribution is named 'acme-widget', so "
                              "{version} is 'unknown'; did you mean 'acme-widgets'?\n")
    preview = cli("preview", "http://127.0.0.1:9/{package}/{version}", "--package", "acme", "--version", "1",
                  env=child_env(site))
    assert preview.stdout == "http://127.0.0.1:9/acme/1\n"
    assert preview.stderr == ("scarf-autoping preview: note: no installed distribution is named 'acme'; "
                              "did you mean 'acme-widgets'?\n")


def test_namespace_import_name_does_not_borrow_another_distributions_version(site, collector):
    for dist, sub, version in (("alpha-dist", "a", "1.0"), ("beta-dist", "b", "9.9")):
        pkg = site / "nspkg" / sub
        pkg.mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (info / "RECORD").write_text(f"nspkg/{sub}/__init__.py,,\n")
    # Each dotted name gets the version of the one distribution that ships it (issue 9: an
    # import name that belongs to a distribution counts for it); the shared top level and a
    # module nobody ships still get "unknown", never another distribution's version.
    child = run_child("from scarf_autoping import facts\n"
                      "print([facts.variables(n, None, False)['version'] for n in ('nspkg.a', 'nspkg.b', 'nspkg', 'nspkg.c')])",
                      child_env(site))
    assert child.stdout.strip() == "['1.0', '9.9', 'unknown', 'unknown']", child
