"""Behaviour of the one-line import-time ping, seen from outside: real throwaway packages
with real metadata imported in child interpreters, pinging a real loopback server.

The path and query forms, the ``Ping`` handle, opt-outs and CI, one ping per process
whatever the reloads, threads, packages, spawned or inherited children, the debug line,
the author's mistakes raised at the import, and the machine facts a ping carries from a
script, ``python -c``, an interactive session and a Jupyter kernel.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import pytest
from helpers import NOTHING_QUIET, PATH_T, QUERY_T, autoping_package, child_env, make_package, run_child
from helpers import collector_template as _template
from machine_facts import NEW, expected


def test_path_form_delivers_one_request_with_the_right_values(collector, site):
    autoping_package(site, "pkg_path", _template(collector, PATH_T), dist_name="pkg-path", version="2.0.1")
    child = run_child("import pkg_path", child_env(site))
    assert child.returncode == 0, child
    assert child.stdout == child.stderr == ""
    reqs = collector.expect(1)
    assert len(reqs) == 1
    parts = reqs[0].path.split("/")
    import platform

    assert parts[1:5] == ["t", "pkg-path", "2.0.1", platform.system()]
    assert parts[5] == platform.python_version()
    from scarf_autoping.machine import normalize_arch

    assert parts[6] == normalize_arch(platform.machine(), 64 if sys.maxsize > 2**32 else 32)
    assert parts[7] and parts[7] != ""
    assert reqs[0].method == "GET"
    assert reqs[0].headers["User-Agent"].startswith("scarf-autoping/")


def test_query_form_delivers_one_request_with_the_right_values(collector, site):
    autoping_package(site, "pkg_query", _template(collector, QUERY_T), version="0.9")
    child = run_child("import pkg_query", child_env(site))
    assert (child.returncode, child.stdout, child.stderr) == (0, "", "")
    reqs = collector.expect(1)
    assert len(reqs) == 1
    q = reqs[0].query
    assert q["package"] == "pkg-query"  # the normalised distribution name
    assert q["version"] == "0.9"
    assert q["platform"] in {"linux", "macos", "windows", "freebsd"}
    assert q["ci"] == "false"
    assert all(q[k] for k in ("python", "arch", "distro"))


def test_ping_handle_reports_sent_and_url(collector, site):
    autoping_package(site, "pkg_handle", _template(collector, QUERY_T))
    child = run_child(
        """
        import pkg_handle
        p = pkg_handle.PING
        assert p.status in ("pending", "sent"), p.status
        assert p.wait(5) is True
        print(p.status, p.reason.replace("HTTP ", ""), p.url)
        """,
        child_env(site),
    )
    assert child.returncode == 0, child
    status, code, url = child.stdout.split()
    assert (status, code) == ("sent", "204")
    assert url.startswith(collector.url + "/q?package=pkg-handle&version=1.2.3")


@pytest.mark.parametrize("name", ["DO_NOT_TRACK", "SCARF_NO_ANALYTICS", "PKG_OPT_NO_ANALYTICS"])
@pytest.mark.parametrize("value", ["1", "true", "yes", "on", "enabled", " TRUE "])
def test_opt_out_variables_send_nothing_and_import_nothing_heavy(collector, site, name, value):
    autoping_package(site, "pkg_opt", _template(collector, QUERY_T), dist_name="pkg-opt")
    child = run_child(
        """
        import sys, threading
        import pkg_opt
        p = pkg_opt.PING
        print(p.status, "requests" in sys.modules, "distro" in sys.modules, threading.active_count())
        print(p.reason)
        """,
        child_env(site, **{name: value}),
    )
    assert child.returncode == 0, child
    first, reason = child.stdout.splitlines()
    assert first == "disabled False False 1"
    assert name in reason
    assert child.stderr == ""
    assert collector.settle(NOTHING_QUIET) == []


def test_scarf_analytics_false_opts_out(collector, site):
    autoping_package(site, "pkg_sa", _template(collector, QUERY_T))
    for value in ("false", "0", "no", "off"):
        child = run_child("import pkg_sa; print(pkg_sa.PING.status, pkg_sa.PING.reason)",
                          child_env(site, SCARF_ANALYTICS=value))
        assert child.stdout.split()[0] == "disabled", (value, child)
        assert "SCARF_ANALYTICS" in child.stdout
    assert collector.settle(NOTHING_QUIET) == []


@pytest.mark.parametrize("value", ["0", "false", "", "no", "off", " False "])
def test_falsy_values_are_not_opt_outs(collector, site, value):
    autoping_package(site, "pkg_falsy", _template(collector, QUERY_T))
    env = child_env(site, DO_NOT_TRACK=value, SCARF_NO_ANALYTICS=value, PKG_FALSY_NO_ANALYTICS=value)
    child = run_child("import pkg_falsy", env)
    assert (child.returncode, child.stderr) == (0, "")
    assert len(collector.wait_for(1)) == 1


def test_scarf_analytics_true_is_not_an_opt_out(collector, site):
    autoping_package(site, "pkg_sat", _template(collector, QUERY_T))
    child = run_child("import pkg_sat", child_env(site, SCARF_ANALYTICS="true"))
    assert child.returncode == 0
    assert len(collector.wait_for(1)) == 1


@pytest.mark.parametrize("name", ["CI", "GITHUB_ACTIONS", "GITLAB_CI", "JENKINS_URL", "TF_BUILD", "BITBUCKET_BUILD_NUMBER"])
def test_ci_is_skipped_by_default(collector, site, name):
    autoping_package(site, "pkg_ci", _template(collector, QUERY_T))
    child = run_child("import pkg_ci; print(pkg_ci.PING.status, pkg_ci.PING.reason)", child_env(site, **{name: "true"}))
    assert child.returncode == 0
    assert child.stdout.startswith("disabled CI detected")
    assert name in child.stdout
    assert collector.settle(NOTHING_QUIET) == []


def test_ci_false_value_is_not_ci(collector, site):
    autoping_package(site, "pkg_ci0", _template(collector, QUERY_T))
    run_child("import pkg_ci0", child_env(site, CI="false"))
    assert collector.wait_for(1)[0].query["ci"] == "false"


def test_skip_ci_false_counts_ci_and_says_so(collector, site):
    autoping_package(site, "pkg_ci2", _template(collector, QUERY_T), args="skip_ci=False")
    child = run_child("import pkg_ci2", child_env(site, CI="true"))
    assert child.returncode == 0
    reqs = collector.wait_for(1)
    assert len(reqs) == 1
    assert reqs[0].query["ci"] == "true"


def test_reloads_and_fifty_threads_send_one_request(collector, site):
    autoping_package(site, "pkg_many", _template(collector, QUERY_T))
    child = run_child(
        """
        import importlib, threading
        import pkg_many
        first = pkg_many.PING
        for _ in range(5):
            importlib.reload(pkg_many)
        assert pkg_many.PING is first
        from scarf_autoping import autoping
        out = []
        barrier = threading.Barrier(50)
        def call():
            barrier.wait()
            out.append(autoping("pkg_many", TEMPLATE))
        threads = [threading.Thread(target=call) for _ in range(50)]
        for t in threads: t.start()
        for t in threads: t.join()
        assert all(p is first for p in out) and len(out) == 50
        """.replace("TEMPLATE", repr(_template(collector, QUERY_T))),
        child_env(site),
    )
    assert (child.returncode, child.stderr) == (0, ""), child
    assert len(collector.expect(1, quiet=0.5)) == 1


def test_two_packages_two_requests_one_thread(collector, site):
    autoping_package(site, "pkg_one", _template(collector, QUERY_T))
    autoping_package(site, "pkg_two", _template(collector, QUERY_T))
    child = run_child(
        """
        import threading
        import pkg_one, pkg_two
        names = {t.name for t in threading.enumerate()}
        assert len([n for n in names if n == "scarf-autoping"]) <= 1, names
        assert pkg_one.PING.wait(5) and pkg_two.PING.wait(5)
        """,
        child_env(site),
    )
    assert (child.returncode, child.stderr) == (0, ""), child
    reqs = collector.expect(2)
    assert sorted(r.query["package"] for r in reqs) == ["pkg-one", "pkg-two"]


def test_worker_thread_ends_when_idle(collector, site):
    autoping_package(site, "pkg_idle", _template(collector, QUERY_T))
    child = run_child(
        """
        import threading, time
        import pkg_idle
        assert pkg_idle.PING.wait(5)
        deadline = time.monotonic() + 5
        while threading.active_count() > 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        print(threading.active_count())
        """,
        child_env(site),
    )
    assert child.stdout.strip() == "1", child


def test_spawn_pool_children_do_not_ping_again(collector, site, tmp_path):
    autoping_package(site, "pkg_spawn", _template(collector, QUERY_T))
    script = tmp_path / "host.py"
    script.write_text(
        "import multiprocessing as mp\n"
        "import pkg_spawn\n"
        "def work(x):\n"
        "    import pkg_spawn\n"
        "    return pkg_spawn.PING.status\n"
        "if __name__ == '__main__':\n"
        "    with mp.get_context('spawn').Pool(2) as pool:\n"
        "        print(sorted(set(pool.map(work, range(4)))))\n"
    )
    child = run_child(f"import runpy; runpy.run_path({str(script)!r}, run_name='__main__')", child_env(site))
    assert child.returncode == 0, child
    assert child.stdout.strip() == "['disabled']"
    assert len(collector.expect(1, quiet=0.5)) == 1


def test_subprocess_with_inherited_environment_does_not_ping_again(collector, site):
    autoping_package(site, "pkg_sub", _template(collector, QUERY_T))
    child = run_child(
        """
        import subprocess, sys
        import pkg_sub
        out = subprocess.run([sys.executable, "-c", "import pkg_sub; print(pkg_sub.PING.reason)"],
                             capture_output=True, text=True)
        print(out.stdout.strip())
        """,
        child_env(site),
    )
    assert child.returncode == 0, child
    assert "SCARF_AUTOPING_PINGED" in child.stdout
    assert len(collector.expect(1)) == 1


def test_no_metadata_means_version_unknown(collector, site):
    autoping_package(site, "pkg_nometa", _template(collector, QUERY_T), version=None)
    child = run_child("import pkg_nometa", child_env(site))
    assert (child.returncode, child.stderr) == (0, "")
    assert collector.wait_for(1)[0].query["version"] == "unknown"


def test_import_name_finds_distribution_version(collector, site):
    make_package(site, "impname", "", version="4.5.6", dist_name="Other-Dist")
    make_package(
        site, "host_impname",
        f"from scarf_autoping import autoping; autoping('impname', {collector.url + '/i{?version}'!r})\n",
        version=None,
    )
    run_child("import host_impname", child_env(site))
    assert collector.wait_for(1)[0].query["version"] == "4.5.6"


def test_debug_prints_one_line_per_ping(collector, site):
    autoping_package(site, "pkg_dbg", _template(collector, QUERY_T))
    # Settled in the process (wait() ends the deferral): the outcome, the time and the URL.
    child = run_child("import pkg_dbg; pkg_dbg.PING.wait(10)", child_env(site, SCARF_AUTOPING_DEBUG="1"))
    lines = child.stderr.splitlines()
    assert len(lines) == 1, child
    assert lines[0].startswith("scarf-autoping: pkg_dbg: sent (HTTP 204) in ")
    assert collector.url in lines[0]
    # A short-lived process: handed over at exit, one line naming the detached sender.
    child = run_child("import pkg_dbg", child_env(site, SCARF_AUTOPING_DEBUG="1"))
    assert re.fullmatch(r"scarf-autoping: pkg_dbg: handed-over \(sent by a detached process \(pid \d+\)\)\n",
                        child.stderr), child
    assert len(collector.wait_for(2, timeout=10)) == 2
    off = run_child("import pkg_dbg", child_env(site, SCARF_AUTOPING_DEBUG="1", DO_NOT_TRACK="1"))
    assert off.stderr == "scarf-autoping: pkg_dbg: disabled (opted out by DO_NOT_TRACK)\n"


@pytest.mark.parametrize(
    "template,kwargs,message",
    [
        ("https://x.invalid/{verison}", {}, "{verison}"),
        ("https://x.invalid/{package", {}, "unclosed expression"),
        ("ftp://x.invalid/{package}", {}, "http:// or https://"),
        ("x.invalid/{package}", {}, "http:// or https://"),
        ("https:///{package}", {}, "with a host"),
        ("https://x.invalid/{package}", {"variables": {"os": "mine"}}, "clashes"),
        ("https://x.invalid/{package}", {"timeout": -1}, "timeout"),
    ],
)
def test_author_mistakes_raise_at_the_call(site, template, kwargs, message):
    make_package(site, "pkg_bad", f"from scarf_autoping import autoping\nautoping('pkg-bad', {template!r}, **{kwargs!r})\n")
    child = run_child(
        """
        try:
            import pkg_bad
        except ValueError as exc:
            print(type(exc).__name__, exc)
        """,
        child_env(site),
    )
    assert child.returncode == 0, child
    assert message in child.stdout
    if "{verison}" in template:
        assert child.stdout.startswith("TemplateError")
        assert "version" in child.stdout  # the known names are listed


def test_author_mistakes_raise_even_when_opted_out(site):
    make_package(site, "pkg_bad2", "from scarf_autoping import autoping\nautoping('p', 'https://x/{nope}')\n")
    child = run_child("import pkg_bad2", child_env(site, DO_NOT_TRACK="1"))
    assert child.returncode == 1
    assert "TemplateError" in child.stderr and "{nope}" in child.stderr


def test_author_variables_are_encoded(collector, site):
    autoping_package(site, "pkg_vars", collector.url + "/v/{flavour}/{package}",
                     args="variables={'flavour': 'a/b?c=d#e f'}")
    run_child("import pkg_vars", child_env(site))
    reqs = collector.wait_for(1)
    assert reqs[0].target == "/v/a%2Fb%3Fc%3Dd%23e%20f/pkg-vars"


def test_import_of_scarf_autoping_stays_light():
    child = run_child(
        """
        import sys
        import scarf_autoping
        heavy = ("requests", "urllib3", "distro", "importlib.metadata", "platform", "re", "logging", "typing",
                 "threading")
        print([m for m in heavy if m in sys.modules])
        ping = scarf_autoping.autoping("light", "https://x.invalid/{package}")  # opted out below
        print(ping.status, [m for m in heavy if m in sys.modules])
        """,
        child_env(None, DO_NOT_TRACK="1"),
    )
    assert child.stdout.splitlines() == ["[]", "disabled []"], child


def test_python_version_is_reported(collector, site):
    autoping_package(site, "pkg_pyv", _template(collector, QUERY_T))
    run_child("import pkg_pyv", child_env(site))
    assert collector.wait_for(1)[0].query["python"] == ".".join(map(str, sys.version_info[:3]))


# --------------------------------------------------------------------------
# End to end: a child process's ping at a loopback collector
# --------------------------------------------------------------------------

ALL_NEW = "{base}/n/{package}/" + "/".join(f"{{{name}}}" for name in NEW)


def _values(request) -> dict[str, str]:
    from urllib.parse import unquote

    segments = [unquote(s) for s in request.path.split("/")[3:]]
    return dict(zip(NEW, segments))


def test_a_scripts_ping_carries_every_new_fact(collector, site, tmp_path):
    autoping_package(site, "pkg_new", ALL_NEW.replace("{base}", collector.url))
    script = tmp_path / "main.py"
    script.write_text("import pkg_new\n", encoding="utf-8")
    env = child_env(site)
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60,
                          check=False, stdin=subprocess.DEVNULL)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    requests = collector.expect(1)  # handed to a detached sender as the script exits
    assert len(requests) == 1
    assert requests[0].path.split("/")[2] == "pkg-new"
    assert _values(requests[0]) == expected(env, "script")


@pytest.mark.parametrize("on_exit", ["handoff", "wait"])
def test_an_interactive_sessions_ping_says_interactive(collector, site, on_exit):
    """``python -i`` reading its commands from a pipe: the REPL, deterministically.

    ``handoff``: the detached sender builds the URL (the interface travels in the job);
    ``wait``: the host's own worker does.
    """
    autoping_package(site, "pkg_repl", ALL_NEW.replace("{base}", collector.url), args=f"on_exit={on_exit!r}")
    env = child_env(site)
    session = textwrap.dedent("""\
        import pkg_repl
        print("status", pkg_repl.PING.wait(10) if pkg_repl.PING.status != "disabled" else "disabled")
        """)
    done = subprocess.run([sys.executable, "-i", "-q"], input=session, env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done
    assert "status True" in done.stdout, done
    requests = collector.expect(1)
    assert len(requests) == 1
    assert _values(requests[0]) == expected(env, "interactive")


def test_python_dash_c_is_a_script(collector, site):
    autoping_package(site, "pkg_dashc", ALL_NEW.replace("{base}", collector.url))
    env = child_env(site)
    done = subprocess.run([sys.executable, "-c", "import pkg_dashc; pkg_dashc.PING.wait(10)"], env=env,
                          capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done
    assert _values(collector.expect(1)[0])["interface"] == "script"


def test_a_jupyter_kernels_ping_says_jupyter(collector, site):
    """A real kernel (``ipykernel``, started by ``jupyter_client`` as Jupyter starts it) imports the package.

    ipykernel is not among the test dependencies (it brings IPython, pyzmq, tornado and
    debugpy): this test runs where it is installed, and is skipped elsewhere.
    """
    pytest.importorskip("ipykernel")
    manager_module = pytest.importorskip("jupyter_client.manager")
    autoping_package(site, "pkg_nb", ALL_NEW.replace("{base}", collector.url))
    env = child_env(site, PYDEVD_DISABLE_FILE_VALIDATION="1")
    manager = manager_module.KernelManager(kernel_name="python3")
    manager.start_kernel(env=env)
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        outputs: list[str] = []
        reply = client.execute_interactive(
            "import pkg_nb\nprint('delivered', pkg_nb.PING.wait(10))", timeout=60,
            output_hook=lambda msg: outputs.append(msg["content"].get("text", "")))
        assert reply["content"]["status"] == "ok", reply
        assert "delivered True" in "".join(outputs), outputs
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    requests = collector.expect(1)
    assert len(requests) == 1
    assert _values(requests[0]) == expected(env, "jupyter")


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
