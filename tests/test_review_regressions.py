"""Regressions for defects found in review: each test failed before its fix.

All of them run real child interpreters against loopback servers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from helpers import autoping_package, child_env, make_package, run_child

needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


@needs_fork
@pytest.mark.parametrize("delay", [0.0, 0.005, 0.02, 0.05])
def test_fork_soon_after_import_never_deadlocks_when_logging_arrives_late(site, collector, delay):
    """The host has not imported logging; the worker imports it (registering logging's fork
    hook after ours) and then urllib3, which needs logging's lock. A fork in that phase
    deadlocked: logging's newer hook held its lock while ours waited for the worker."""
    autoping_package(site, "pkg_late_log", collector.url + "/l{?version}")
    child = run_child(
        f"""
        import os, sys, time, warnings
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with a live thread
        assert "logging" not in sys.modules
        import pkg_late_log
        time.sleep({delay})
        for _ in range(3):
            pid = os.fork()
            if pid == 0:
                import requests  # the child can import what the worker was importing
                os._exit(0)
            os.waitpid(pid, 0)
        print("ok", pkg_late_log.PING.wait(5))
        """,
        child_env(site),
        timeout=20,
    )
    assert child.returncode == 0, child
    assert child.stdout.strip() == "ok True"
    assert len(collector.settle(0.3)) == 1


@needs_fork
def test_fork_between_registering_and_queueing_settles_the_childs_copy(site, collector):
    child = run_child(
        f"""
        import os, threading, time
        import scarf_autoping as s
        from scarf_autoping import engine
        s.autoping("first", "{collector.url}/t/{{package}}")
        real = engine.ENGINE.submit
        def slow_submit(job):  # widen the window between the registry and the queue
            time.sleep(0.3)
            real(job)
        engine.ENGINE.submit = slow_submit
        t = threading.Thread(target=s.autoping, args=("second", "{collector.url}/t/{{package}}"))
        t.start()
        time.sleep(0.1)
        pid = os.fork()
        if pid == 0:
            p = s.autoping("second", "{collector.url}/t/{{package}}")
            print("child", p.status, p.wait(2), flush=True)
            os._exit(0)
        os.waitpid(pid, 0)
        t.join()
        print("parent", s.REGISTRY.pings["second"].wait(5))
        """,
        child_env(None, PYTHONWARNINGS="ignore::DeprecationWarning"),
        timeout=20,
    )
    assert child.returncode == 0, child
    assert child.stdout.splitlines() == ["child disabled False", "parent True"]
    # "first" was handed to a detached sender at the fork; it goes out after the deferral.
    collector.wait_for(2, timeout=10)
    assert sorted(r.path for r in collector.settle(0.5)) == ["/t/first", "/t/second"]


def test_ctrl_c_interrupts_a_synchronous_event(make_collector):
    hang = make_collector("hang")
    child = run_child(
        f"""
        import os, signal, threading, time
        from scarf_autoping import ScarfEventLogger
        threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
        started = time.monotonic()
        try:
            ScarfEventLogger("{hang.url}/e", timeout=5).log_event({{"event": "x"}})
            print("not interrupted")
        except KeyboardInterrupt:
            print("interrupted", round(time.monotonic() - started) < 3)
        """,
        child_env(None),
        timeout=20,
    )
    assert child.stdout.strip() == "interrupted True", child


def _run_with_full_stderr(code: str, env: dict[str, str]) -> tuple[int, bytes, float]:
    """Run ``code`` with its stderr pipe filled up and never read until the process ends."""
    prefix = "import fcntl, os\nos.write(2, b'x' * (fcntl.fcntl(2, 1032) - 8))\n"
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", prefix + code], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        returncode = proc.wait(timeout=15)
        seconds = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
        _, stderr = proc.communicate()
    return returncode, stderr, seconds


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="F_GETPIPE_SZ is Linux-only")
def test_verbose_background_event_to_a_full_stderr_never_aborts_exit(collector):
    code = (
        "from scarf_autoping import ScarfEventLogger\n"
        f"ScarfEventLogger({collector.url + '/e'!r}, timeout=0.5, verbose=False, exit_timeout=0.5)"
        ".log_event({'event': 'x'}, background=True).wait(0)\n"  # ends the deferral: sent by the worker
        "import scarf_autoping.events as ev\n"
    )
    # verbose only for the worker's lines: the calling thread's lines would block the host itself
    code = code.replace("verbose=False", "verbose=True").replace(
        "from scarf_autoping import ScarfEventLogger\n",
        "from scarf_autoping import ScarfEventLogger, events\n"
        "_say = events._say\n"
        "events._say = lambda *lines, on_worker=False: on_worker and _say(*lines, on_worker=True)\n",
    )
    returncode, stderr, seconds = _run_with_full_stderr(code, child_env(None))
    assert returncode == 0, stderr[-600:]
    assert b"Fatal" not in stderr
    assert seconds < 0.5 + 2.5
    assert len(collector.wait_for(1, timeout=5)) == 1
    assert len(collector.settle(0.3)) == 1


def test_dependency_version_warnings_do_not_reach_the_host(site, collector):
    """requests warns at import when charset_normalizer's version is unsupported; under
    -W error that even broke the worker's import. The host must see nothing."""
    fake = site / "charset_normalizer"
    fake.mkdir()
    (fake / "__init__.py").write_text("__version__ = '99.0.0'\ndef detect(data):\n    return {}\n")
    autoping_package(site, "pkg_warn", collector.url + "/w{?version}")
    child = run_child("import pkg_warn; assert pkg_warn.PING.wait(5), pkg_warn.PING", child_env(site),
                      args=("-W", "error"))
    assert (child.returncode, child.stdout, child.stderr) == (0, "", ""), child
    assert len(collector.settle(0.2)) == 1


def test_metadata_without_a_version_field_is_unknown_and_silent(site, collector):
    make_package(site, "pkg_nover", f"from scarf_autoping import autoping; autoping('pkg-nover', "
                                    f"{collector.url + '/v{?version}'!r})\n", version="1.0")
    info = next(site.glob("pkg_nover-*.dist-info"))
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pkg-nover\n")
    child = run_child("import pkg_nover", child_env(site), args=("-X", "dev", "-W", "error"))
    assert (child.returncode, child.stdout, child.stderr) == (0, "", ""), child
    assert collector.wait_for(1)[0].query["version"] == "unknown"


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


@pytest.mark.parametrize(
    "template,message",
    [
        ("https://h.invalid{+version}/t", "{+version}"),
        ("https://h.invalid/t{#version}", "{+version}"),
        ("https://{package}/t", "written out"),
        ("https://h.invalid:{version}/t", "written out"),
        ("https://h.invalid{.package}/t", "written out"),
        ("http://:80/x", "with a host"),
        ("http://@/x", "user name or password"),
        ("https://user:secret@h.invalid/x", "user name or password"),
        ("https://h.invalid:99999/x", "with a host"),
        ("https://[::1]x/t", "with a host"),
    ],
)
def test_templates_that_could_let_a_value_move_the_ping_are_refused(template, message, monkeypatch):
    from scarf_autoping import TemplateError, autoping

    monkeypatch.setenv("DO_NOT_TRACK", "1")  # should a check ever let it through, nothing is sent
    with pytest.raises(TemplateError) as info:
        autoping("refused-pkg", template)
    assert message in str(info.value)


@pytest.mark.parametrize(
    "template",
    [
        "https://h.invalid{/package,version}",
        "https://h.invalid{?package,version}",
        "http://127.0.0.1:8080/t/{package}",
        "http://[::1]:8080/t/{package}",
        "HTTPS://H.INVALID/t{?python}",
    ],
)
def test_templates_with_a_literal_host_are_accepted(template):
    from scarf_autoping import check_arguments

    check_arguments("ok-pkg", template, None, None, 3.0, 1.0)


@pytest.mark.parametrize(
    "kwargs",
    [{"timeout": float("inf")}, {"timeout": float("nan")}, {"exit_timeout": float("inf")},
     {"exit_timeout": 1e12}, {"timeout": 0}, {"exit_timeout": -0.1}],
)
def test_unbounded_or_nonsense_timeouts_are_refused(kwargs, monkeypatch):
    from scarf_autoping import autoping

    monkeypatch.setenv("DO_NOT_TRACK", "1")  # should a check ever let it through, nothing is sent
    with pytest.raises(ValueError, match="seconds"):
        autoping("timeout-pkg", "https://h.invalid/{package}", **kwargs)
