"""Behaviour of the one-line import-time ping, seen from outside: real throwaway packages
with real metadata imported in child interpreters, pinging a real loopback server."""

from __future__ import annotations

import re
import sys

import pytest
from helpers import NOTHING_QUIET, autoping_package, child_env, free_port, make_package, run_child

PATH_T = "{base}/t/{package}/{version}/{os}/{python}/{arch}/{distro}"
QUERY_T = "{base}/q{?package,version,platform,python,arch,distro,ci}"


def _template(collector, shape: str) -> str:
    return shape.replace("{base}", collector.url)


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


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_fork_while_worker_imports_its_dependencies(collector, site):
    autoping_package(site, "pkg_fork", _template(collector, QUERY_T))
    child = run_child(
        """
        import os, sys, warnings
        warnings.simplefilter("ignore", DeprecationWarning)  # CPython >= 3.12 warns on fork with threads
        import pkg_fork
        pid = os.fork()  # the worker is importing requests/distro right now
        if pid == 0:
            import requests  # must not deadlock on an import lock held by a thread that is gone
            import distro
            p = pkg_fork.PING
            sys.stdout.write("child %s %s\\n" % (p.status, "requests" in sys.modules))
            sys.stdout.flush()
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        print("parent", os.waitstatus_to_exitcode(status), pkg_fork.PING.wait(5))
        """,
        child_env(site),
        timeout=20,
    )
    assert child.returncode == 0, child
    lines = sorted(child.stdout.splitlines())
    assert lines[0].startswith("child ") and lines[0].endswith(" True")
    assert lines[1] == "parent 0 True"
    assert len(collector.expect(1, quiet=0.5)) == 1


@pytest.mark.parametrize(
    "shape,args",
    [
        ("refused", ""),
        ("hang", "timeout=5.0, exit_timeout=1.0"),
        ("status:500", ""),
        ("redirect:http://example.invalid/elsewhere", ""),
        ("body:52428800", ""),
    ],
)
def test_faults_never_reach_the_host(make_collector, site, shape, args):
    if shape == "refused":
        base = f"http://127.0.0.1:{free_port()}"
        server = None
    else:
        server = make_collector(shape)
        base = server.url
    autoping_package(site, "pkg_fault", base + "/f{?version}", args=args)
    child = run_child(
        """
        import time
        t = time.perf_counter()
        import pkg_fault
        print(round((time.perf_counter() - t) * 1000))
        """,
        child_env(site),
    )
    assert child.returncode == 0, child
    assert child.stderr == ""
    # A few ms expected; a send on the import path would take the 5 s timeout (hang).
    assert float(child.stdout) < 2000, f"the import took {child.stdout} ms, expected a few: {child!r}"
    # Exit hands over at once; waiting for the hanging request would take 5 s.
    assert child.seconds < 4.5, f"the child took {child.seconds:.2f} s, expected well under 1 s: {child!r}"
    if server is not None:
        assert len(server.expect(1)) == 1  # delivered once, the redirect not followed


def test_redirect_and_500_statuses(make_collector, site):
    redirect = make_collector("redirect:http://127.0.0.1:9/elsewhere")
    broken = make_collector("status:500")
    autoping_package(site, "pkg_r", redirect.url + "/r")
    autoping_package(site, "pkg_b", broken.url + "/b")
    child = run_child(
        "import pkg_r, pkg_b; pkg_r.PING.wait(5); pkg_b.PING.wait(5); "
        "print(pkg_r.PING.status, pkg_r.PING.reason); print(pkg_b.PING.status, pkg_b.PING.reason)",
        child_env(site),
    )
    assert child.stdout.splitlines() == ["sent HTTP 302", "failed HTTP 500"]


def test_exit_waits_for_a_slow_collector_within_bound(make_collector, site):
    slow = make_collector("delay:0.05")
    autoping_package(site, "pkg_slow", slow.url + "/s{?version}")
    child = run_child("import pkg_slow", child_env(site))
    assert (child.returncode, child.stderr) == (0, "")
    assert len(slow.wait_for(1, timeout=1)) == 1


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
