"""How the detached sender is started and what it imports, seen from outside.

* It imports what a fresh interpreter would: never a ``random.py`` or ``csv.py`` of the
  host's working directory or script directory, never a stale module that would shadow
  the standard library; the host's whole path is used only to find distribution metadata.
* Its command line, readable by every local user, is the interpreter and a fixed entry
  point: no path of the host, no template, no event body, no password. An event's URL
  (Basic-auth password included) never comes back from it.
* It starts from a zip archive too (``python app.pyz``), honours the host's bytecode
  settings, is not taken for started when the shell that orphans it fails, and without a
  shell it forks before it reads anything.
* Without any interpreter to start (an embedding program), the host sends the ping itself
  (from its worker, or at exit); a sender that dies without a result fails the ping
  quietly; a URL longer than one pipe write still settles; a sender started by our thread
  blocks no signal; the sender runs with the host's modules and metadata.

Each behaviour case runs the host in a child interpreter that imports a throwaway package
with real metadata and pings a loopback collector.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
import zipfile
from pathlib import Path

import pytest
from helpers import (
    NO_INTERPRETER,
    NOTHING_QUIET,
    autoping_package,
    child_env,
    linux_only,
    make_package,
    needs_posix_spawn,
    run_child,
    run_host,
)
from loopback import Collector

from scarf_autoping import spawn

#: The library's own source, copied into archives and private import directories.
SOURCE = Path(spawn.__file__).resolve().parent


#: Standard-library modules the sender's dependencies import (``random`` by urllib3 and
#: ``email``, ``calendar`` by ``http.cookiejar``, ``csv`` by ``importlib.metadata``).
SHADOWS = ("random", "csv", "calendar")


#: Seconds a host may run before it counts as hung (it takes about one).
HANG = 30


def plant(directory: Path, markers: Path) -> None:
    """Put ``random.py``, ``csv.py`` and ``calendar.py`` in ``directory``: each one, if it
    is ever imported, leaves a file in ``markers`` and is no use as the real module."""
    markers.mkdir(exist_ok=True)
    directory.mkdir(parents=True, exist_ok=True)
    for name in SHADOWS:
        (directory / f"{name}.py").write_text(f"open({str(markers / name)!r}, 'w').close()\n", encoding="utf-8")


def run(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=HANG, check=False,
                          stdin=subprocess.DEVNULL)


WAIT = "import json, sys\nimport {pkg}\nprint(json.dumps([{pkg}.PING.wait(10), {pkg}.PING.status, {pkg}.PING.reason]))\n"


# --- item 1: what the sender imports --------------------------------------------------


@linux_only
@needs_posix_spawn
@pytest.mark.parametrize("where", ["cwd", "script-dir"])
def test_the_sender_never_imports_the_hosts_own_files(tmp_path, site, where):
    """A host run in (or with its script in) a directory holding random.py, csv.py and
    calendar.py never imports them; neither may the sender: the ping arrives, no marker."""
    server = Collector()
    try:
        autoping_package(site, "pkg_own", server.url + "/t/{package}/{version}")
        markers = tmp_path / "markers"
        work = tmp_path / "work"
        plant(work, markers)
        code = WAIT.format(pkg="pkg_own")
        if where == "cwd":
            proc = run([sys.executable, "-c", code], child_env(site), cwd=work)
        else:
            (work / "main.py").write_text(code, encoding="utf-8")
            elsewhere = tmp_path / "elsewhere"
            elsewhere.mkdir()
            proc = run([sys.executable, str(work / "main.py")], child_env(site), cwd=elsewhere)
        assert (proc.returncode, proc.stderr) == (0, ""), proc
        assert json.loads(proc.stdout)[:2] == [True, "sent"], proc
        assert [r.path for r in server.settle(0.3)] == ["/t/pkg-own/1.2.3"]
        assert sorted(p.name for p in markers.iterdir()) == [], "the sender imported the host's own files"
    finally:
        server.close()


@linux_only
@needs_posix_spawn
@pytest.mark.parametrize("how", ["PYTHONPATH", "site-dir"])
def test_a_stale_module_never_shadows_the_standard_library_in_the_sender(tmp_path, site, how):
    """A stale random.py/csv.py/calendar.py in a directory of the host's path (on
    PYTHONPATH, or a site directory added after the standard library as site-packages
    is) must not replace the standard library's in the sender."""
    server = Collector()
    try:
        markers = tmp_path / "markers"
        plant(site, markers)
        autoping_package(site, "pkg_stale", server.url + "/t/{package}/{version}")
        code = WAIT.format(pkg="pkg_stale")
        python = sys.executable
        if how == "PYTHONPATH":
            env = child_env(site)
        else:
            # As installed in site-packages: scarf_autoping beside the stale modules, the
            # directory after the standard library. The base interpreter does not read this
            # environment's editable install of scarf_autoping, so the copy is the one used.
            shutil.copytree(SOURCE, site / "scarf_autoping", ignore=shutil.ignore_patterns("__pycache__"))
            env = child_env(None)
            python = str(base_python())
            code = (f"import site\nsite.addsitedir({str(site)!r})\nsite.addsitedir({_site_packages()!r})\n"
                    + code + "assert sys.modules['scarf_autoping'].__file__.startswith(sys.argv[1])\n")
        proc = run([python, "-c", code, str(site)], env, cwd=tmp_path)
        assert (proc.returncode, proc.stderr) == (0, ""), proc
        assert json.loads(proc.stdout)[:2] == [True, "sent"], proc
        assert [r.path for r in server.settle(0.3)] == ["/t/pkg-stale/1.2.3"]
        assert sorted(p.name for p in markers.iterdir()) == [], "a stale module shadowed the standard library"
    finally:
        server.close()


@linux_only
@needs_posix_spawn
@pytest.mark.parametrize("where", ["cwd", "script-dir"])
def test_metadata_is_still_found_through_the_hosts_whole_path(tmp_path, where):
    """A package installed only in the working directory (or beside the script) keeps its
    real version in the ping: the sender reads metadata through the host's whole path."""
    server = Collector()
    try:
        work = tmp_path / "work"
        autoping_package(work, "pkg_local", server.url + "/t/{package}/{version}", version="4.5.6")
        code = WAIT.format(pkg="pkg_local")
        if where == "cwd":
            proc = run([sys.executable, "-c", code], child_env(None), cwd=work)
        else:
            (work / "main.py").write_text(code, encoding="utf-8")
            proc = run([sys.executable, str(work / "main.py")], child_env(None), cwd=tmp_path)
        assert (proc.returncode, proc.stderr) == (0, ""), proc
        assert json.loads(proc.stdout)[:2] == [True, "sent"], proc
        assert [r.path for r in server.settle(0.3)] == ["/t/pkg-local/4.5.6"]
    finally:
        server.close()


#: What the sender imports beyond the standard library and scarf_autoping.
SENDER_DEPS = ("requests", "urllib3", "idna", "certifi", "charset_normalizer", "distro", "importlib_metadata", "zipp")


@linux_only
@needs_posix_spawn
def test_a_path_entry_the_host_set_on_purpose_is_kept_even_as_the_working_directory(tmp_path, site):
    """PYTHONPATH=/app run from /app (a Docker WORKDIR, Lambda's /var/task): the entry was
    put there on purpose, and the sender's dependencies may live only there. Only what
    the interpreter itself put first (the script's directory, '' or the -m working
    directory) is left out."""
    server = Collector()
    try:
        app = tmp_path / "app"
        app.mkdir()
        packages = Path(_site_packages())
        for name in SENDER_DEPS:
            if (packages / name).exists():
                (app / name).symlink_to(packages / name, target_is_directory=True)
        autoping_package(site, "pkg_app", server.url + "/t/{package}/{distro}")
        env = child_env(None, PYTHONPATH=os.pathsep.join([str(app), str(SOURCE.parent), str(site)]))
        # The base interpreter: this environment's site-packages is not on its path.
        proc = run([str(base_python()), "-c", WAIT.format(pkg="pkg_app")], env, cwd=app)
        assert (proc.returncode, proc.stderr) == (0, ""), proc
        assert json.loads(proc.stdout)[:2] == [True, "sent"], proc
        paths = [r.path for r in server.settle(0.3)]
        assert len(paths) == 1 and paths[0].startswith("/t/pkg-app/"), paths
        assert paths[0] != "/t/pkg-app/unknown", "the sender could not import distro from /app"
    finally:
        server.close()


# --- item 4: nothing of the host's on the command line --------------------------------


def _processes_marked(mark: str) -> list[int]:
    """The pids of processes whose environment holds ``mark`` (readable as the same user)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                if mark.encode() in f.read():
                    found.append(int(name))
        except OSError:
            pass
    return found


def _cmdline(pid: int) -> list[str]:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return [arg.decode("utf-8", "surrogateescape") for arg in f.read().split(b"\0")[:-1]]


@linux_only
@needs_posix_spawn
def test_the_senders_command_line_shows_nothing_of_the_host(tmp_path, site):
    """ps shows every local user the sender's command line. A host in a project directory
    hands over at exit a ping and a background event whose URL has a Basic-auth password:
    the running sender's command line is the interpreter and the fixed entry point only."""
    server = Collector("hang")  # the sender stays alive, waiting for an answer
    mark = f"SENDER_LAUNCH_MARK_{uuid.uuid4().hex}"
    project = tmp_path / "client-project-secret"
    project.mkdir()
    template = server.url + "/t/{package}/{version}/template-secret"
    try:
        autoping_package(site, "pkg_cmd", template)
        secret_url = server.url.replace("http://", "http://user:pass-secret@") + "/e"
        code = ("from scarf_autoping import ScarfEventLogger\nimport pkg_cmd\n"
                f"ScarfEventLogger({secret_url!r}).log_event({{'event': 'body-secret'}}, background=True)\n")
        proc = run([sys.executable, "-c", code], child_env(site, **{mark: "1"}), cwd=project)
        assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", ""), proc
        assert len(server.wait_for(2, timeout=10)) == 2, "the handed-over ping and event never arrived"
        senders = _processes_marked(f"{mark}=1")
        assert senders, "no sender alive"
        for pid in senders:
            argv = _cmdline(pid)
            shown = "\0".join(argv)
            for secret in ("secret", str(tmp_path), str(site), "template", "pkg_cmd", "pkg-cmd"):
                assert secret not in shown, (secret, argv)
            utf8 = ["-X", "utf8"] if sys.flags.utf8_mode else []
            assert argv == [spawn.interpreter(), "-I", "-S", *utf8, "-c", spawn.BOOTSTRAP], argv
    finally:
        server.close()


@linux_only
@needs_posix_spawn
@pytest.mark.parametrize("green", ["gevent", "eventlet"])
def test_an_events_password_never_comes_back_from_the_sender(site, green):
    """Under gevent/eventlet background events go to a detached sender: the URL it reports
    must never become Ping.url (that would show the password in clear)."""
    pytest.importorskip(green)
    server = Collector()
    try:
        secret_url = server.url.replace("http://", "http://user:pass-secret@") + "/e"
        patch = ("from gevent import monkey\nmonkey.patch_all()\n" if green == "gevent"
                 else "import eventlet\neventlet.monkey_patch()\n")
        code = (patch + "import json\nfrom scarf_autoping import ScarfEventLogger\n"
                f"ping = ScarfEventLogger({secret_url!r}).log_event({{'event': 'x'}}, background=True)\n"
                "print(json.dumps([ping.wait(10), ping.status, ping.url, ping.reason]))\n")
        child = run_child(code, child_env(site), timeout=HANG)
        assert child.returncode == 0, child
        sent, status, url, reason = json.loads(child.stdout)
        assert (sent, status) == (True, "sent"), child
        assert "pass-secret" not in url and "pass-secret" not in (reason or ""), child
        requests = server.settle(0.3)
        assert [r.path for r in requests] == ["/e"]
        assert requests[0].headers.get("Authorization", "").startswith("Basic "), "sent without its credentials"
    finally:
        server.close()


# --- item 8: an application in a zip archive ------------------------------------------


def build_zipapp(tmp_path: Path, main: str, template: str, lib: str = "") -> Path:
    """``app.pyz``: ``__main__.py``, a throwaway package with real metadata and a copy of
    scarf_autoping (under ``lib`` in the archive); its dependencies stay in the test
    environment's site-packages."""
    stage = tmp_path / "stage"
    autoping_package(stage, "pkg_zip", template)
    archive = tmp_path / "app.pyz"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("__main__.py", main)
        for path in sorted(stage.rglob("*")):
            if path.is_file():
                zf.write(path, lib + path.relative_to(stage).as_posix())
        for path in sorted(SOURCE.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                zf.write(path, lib + ("scarf_autoping" / path.relative_to(SOURCE)).as_posix())
    return archive


def base_python() -> Path:
    """The interpreter this environment was made from (it reads none of its .pth files)."""
    return Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"


def _site_packages() -> str:
    """The site-packages directory that holds ``requests`` in this environment."""
    import requests

    return str(Path(requests.__file__).resolve().parent.parent)


@linux_only
@needs_posix_spawn
@pytest.mark.parametrize(("life", "lib"), [("short", ""), ("long", ""), ("short", "lib/")])
def test_a_zipapp_sends_from_a_detached_sender(tmp_path, life, lib):
    """``python app.pyz`` (zipapp, shiv, pex): the sender starts from the archive (its root
    or a directory in it), so the host never imports requests and a short-lived one exits
    at once on a slow endpoint."""
    server = Collector("delay:2")
    out = tmp_path / "report.json"
    inside = f"sys.path.insert(0, os.path.join(os.path.dirname(__file__), {lib!r}))\n" if lib else ""
    report = ("import atexit, json, os, sys\n" + inside +
              "def report():\n"
              "    ping = sys.modules['pkg_zip'].PING\n"
              f"    with open({str(out)!r}, 'w') as f:\n"
              "        json.dump([ping.status, 'requests' in sys.modules, sys.modules['scarf_autoping'].__file__], f)\n"
              "atexit.register(report)\n"
              "import pkg_zip\n")
    main = report + ("" if life == "short" else "pkg_zip.PING.wait(10)\n")
    try:
        archive = build_zipapp(tmp_path, main, server.url + "/t/{package}/{version}", lib)
        # The base interpreter, with this environment's site-packages on PYTHONPATH: its
        # editable install of scarf_autoping (a .pth file) is not read, so the only
        # scarf_autoping there is to import is the archive's.
        base = base_python()
        proc = run([str(base), str(archive)], child_env(_site_packages()), cwd=tmp_path)
        assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", ""), proc
        status, imported_requests, where = json.loads(out.read_text())
        assert where.startswith(str(archive)), where
        assert imported_requests is False, "the host imported requests: it sent the ping itself"
        assert status == ("handed-over" if life == "short" else "sent"), status
        # importlib.metadata reads no directory inside an archive: the host would not know either.
        version = "unknown" if lib else "1.2.3"
        assert [r.path for r in server.wait_for(1, timeout=10)] == [f"/t/pkg-zip/{version}"]
    finally:
        server.close()


# --- item 9: the host's bytecode settings ---------------------------------------------


@linux_only
@needs_posix_spawn
@pytest.mark.parametrize("setting", ["PYTHONDONTWRITEBYTECODE", "-B", "pycache_prefix"])
def test_the_sender_honours_the_hosts_bytecode_settings(tmp_path, site, setting):
    """A host that writes no bytecode (-B, PYTHONDONTWRITEBYTECODE=1) or writes it under
    -X pycache_prefix: the modules the sender imports leave no __pycache__ beside them."""
    server = Collector()
    try:
        lib = tmp_path / "lib"
        shutil.copytree(SOURCE, lib / "scarf_autoping", ignore=shutil.ignore_patterns("__pycache__"))
        autoping_package(site, "pkg_pyc", server.url + "/t/{package}/{version}")
        env = child_env(None, PYTHONPATH=os.pathsep.join([str(lib), str(site)]))
        args: list[str] = []
        prefix = tmp_path / "prefix"
        if setting != "PYTHONDONTWRITEBYTECODE":
            del env["PYTHONDONTWRITEBYTECODE"]
            args = ["-B"] if setting == "-B" else ["-X", f"pycache_prefix={prefix}"]
        code = WAIT.format(pkg="pkg_pyc") + "print(sys.modules['scarf_autoping'].__file__)\n"
        proc = run([sys.executable, *args, "-c", code], env, cwd=tmp_path)
        assert (proc.returncode, proc.stderr) == (0, ""), proc
        result, where = proc.stdout.splitlines()
        assert json.loads(result)[:2] == [True, "sent"], proc
        assert where.startswith(str(lib)), where
        assert [r.path for r in server.settle(0.3)] == ["/t/pkg-pyc/1.2.3"]
        assert sorted(str(p.relative_to(lib)) for p in lib.rglob("__pycache__")) == []
        if setting == "pycache_prefix":
            written = {p.name.split(".")[0] for p in prefix.rglob("*.pyc") if "scarf_autoping" in p.parts}
            assert "transport" in written, sorted(written)  # only the sender imports transport
    finally:
        server.close()


# --- item 10: a shell that fails -------------------------------------------------------


def failing(tmp_path: Path, name: str = "failing-sh") -> Path:
    """An executable that starts nothing and exits 2, as a shell that cannot fork does."""
    path = tmp_path / name
    path.write_text("#!/bin/sh\nexit 2\n", encoding="utf-8")
    path.chmod(0o755)
    return path


JOB = {"method": "GET", "template": "http://127.0.0.1:9/t/{package}", "package": "scarf-autoping", "version": None,
       "variables": {}, "ci": False, "timeout": 3.0, "retry_interval": None}


@linux_only
@needs_posix_spawn
def test_a_shell_that_fails_is_not_taken_for_a_started_sender(tmp_path, monkeypatch):
    """The shell exits 2 without starting anything: the sender is started without it."""
    server = Collector()
    try:
        monkeypatch.setattr(spawn, "SHELL", str(failing(tmp_path)))
        assert spawn.spawn([dict(JOB, template=server.url + "/t/{package}")], orphan=True) is not None
        assert [r.path for r in server.wait_for(1, timeout=10)] == ["/t/scarf-autoping"]
        assert len(server.settle(NOTHING_QUIET)) == 1
    finally:
        server.close()


@linux_only
@needs_posix_spawn
@pytest.mark.parametrize("shell", ["none", "failing"])
def test_a_sender_that_cannot_fork_is_not_taken_for_started(tmp_path, monkeypatch, shell):
    """Without a (working) shell the sender forks itself; its first process exiting
    non-zero (the fork failed, the interpreter could not start) means nothing started."""
    monkeypatch.setattr(spawn, "SHELL", str(failing(tmp_path) if shell == "failing" else tmp_path / "no-shell"))
    monkeypatch.setattr(spawn, "_interpreter", [str(failing(tmp_path, "python3"))])
    assert spawn.spawn([JOB], orphan=True) is None


HOST_REPORT = ("import atexit, json, sys\n"
               "atexit.register(lambda: open({out!r}, 'w').write(json.dumps(\n"
               "    [sys.modules['pkg_shfail'].PING.status, 'requests' in sys.modules])))\n")


@linux_only
@needs_posix_spawn
@pytest.mark.parametrize("when", ["after-the-deferral", "at-a-fork"])
def test_when_the_shell_fails_the_sender_is_started_without_it(tmp_path, site, when):
    """The shell that would orphan the sender fails (no fork): the ping is not reported
    handed over or lost, a sender is started without the shell and delivers it, once,
    and the host's fork meets no thread of ours (no warning on 3.12+). (At exit the
    sender is started without the shell anyway: the host is going.)"""
    server = Collector()
    out = tmp_path / "status.json"
    try:
        autoping_package(site, "pkg_shfail", server.url + "/t/{package}")
        fork = "import os\npid = os.fork()\nif not pid:\n    os._exit(0)\nos.waitpid(pid, 0)\n"
        code = (HOST_REPORT.format(out=str(out))
                + f"from scarf_autoping import spawn\nspawn.SHELL = {str(failing(tmp_path))!r}\n"
                + "import pkg_shfail\n" + (fork if when == "at-a-fork" else "") + "pkg_shfail.PING.wait(10)\n")
        child = run_child(code, child_env(site), timeout=HANG)
        assert (child.returncode, child.stdout, child.stderr) == (0, "", ""), child
        assert json.loads(out.read_text()) == ["sent", False]
        assert [r.path for r in server.settle(NOTHING_QUIET)] == ["/t/pkg-shfail"]
    finally:
        server.close()


@linux_only
@needs_posix_spawn
def test_when_no_sender_can_be_started_the_host_sends_the_ping_itself(tmp_path, site):
    """Neither the shell nor the sender's first process can fork: nothing was started,
    so the ping is sent from the host, once, instead of being reported or lost."""
    server = Collector()
    out = tmp_path / "status.json"
    try:
        autoping_package(site, "pkg_shfail", server.url + "/t/{package}")
        code = (HOST_REPORT.format(out=str(out))
                + f"from scarf_autoping import spawn\nspawn.SHELL = {str(failing(tmp_path))!r}\n"
                + f"spawn._interpreter[:] = [{str(failing(tmp_path, 'python3'))!r}]\n"
                + "import pkg_shfail\npkg_shfail.PING.wait(10)\n")
        child = run_child(code, child_env(site), timeout=HANG)
        assert (child.returncode, child.stdout, child.stderr) == (0, "", ""), child
        assert json.loads(out.read_text()) == ["sent", True]
        assert [r.path for r in server.settle(NOTHING_QUIET)] == ["/t/pkg-shfail"]
    finally:
        server.close()


# --- item 11: without a shell, fork first ----------------------------------------------


@linux_only
@needs_posix_spawn
def test_without_a_shell_the_sender_forks_before_it_reads_its_settings(site):
    """A distroless image has no /bin/sh: the host waits for the sender's first process,
    which must fork before it imports or parses anything. Here its settings are held back:
    the first process still exits 0 at once, and its fork is no child of the host."""
    code = """
        import json, os, signal, sys, time
        from scarf_autoping import spawn
        signal.alarm(20)  # a first process that waits for its settings would hang here
        read_end, write_end = os.pipe()
        pid = os.posix_spawn(sys.executable, [sys.executable, "-I", "-S", "-c", spawn.BOOTSTRAP], os.environ,
                             file_actions=[(os.POSIX_SPAWN_DUP2, read_end, 0)], setsid=True)
        os.close(read_end)
        os.write(write_end, spawn.FORK)  # the first byte only: fork, then wait for the rest
        _, status = os.waitpid(pid, 0)
        try:
            left = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            left = None
        def session():  # the forked sender keeps the first process's session
            found = []
            for name in os.listdir("/proc"):
                try:
                    with open(f"/proc/{name}/stat", "rb") as f:
                        if int(f.read().rsplit(b")", 1)[1].split()[3]) == pid:
                            found.append(int(name))
                except (OSError, ValueError, IndexError):
                    pass
            return found
        forked = session()
        os.close(write_end)  # no settings after all: the sender ends
        deadline = time.monotonic() + 10
        while session() and time.monotonic() < deadline:
            time.sleep(0.02)
        print(json.dumps([os.waitstatus_to_exitcode(status), left, len(forked), session()]))
    """
    child = run_child(code, child_env(site), timeout=HANG)
    assert (child.returncode, child.stderr) == (0, ""), child
    assert json.loads(child.stdout) == [0, None, 1, []], child


@linux_only
@needs_posix_spawn
def test_without_a_shell_one_ping_arrives_and_no_child_is_left(site):
    server = Collector()
    try:
        template = server.url + "/t/{package}"
        code = ("import json, os\nfrom scarf_autoping import spawn\nspawn.SHELL = '/nonexistent/sh'\n"
                f"job = dict({JOB!r}, template={template!r})\n"
                "pid = spawn.spawn([job], orphan=True)\n"
                "try:\n    left = os.waitpid(-1, os.WNOHANG)\nexcept ChildProcessError:\n    left = None\n"
                "print(json.dumps([pid is not None, left]))\n")
        child = run_child(code, child_env(site), timeout=HANG)
        assert (child.returncode, child.stderr) == (0, ""), child
        assert json.loads(child.stdout) == [True, None], child
        assert [r.path for r in server.wait_for(1, timeout=10)] == ["/t/scarf-autoping"]
        assert len(server.settle(NOTHING_QUIET)) == 1
    finally:
        server.close()


@linux_only
@needs_posix_spawn
def test_the_sender_is_not_left_waiting_on_a_settings_pipe_held_by_a_fork(tmp_path, site):
    """A host that forks while the settings are written (another thread, a
    multiprocessing fork) holds a copy of the pipe's write end: the sender must not wait
    for its end of file, only for the settings themselves."""
    server = Collector()
    try:
        template = server.url + "/t/{package}"
        code = ("import os, sys, time\nfrom scarf_autoping import spawn\n"
                "_pipe = os.pipe\n"
                "def pipe():\n"
                "    r, w = _pipe()\n"
                "    global held\n"
                "    held = os.dup(w)  # what a child forked at that moment would hold\n"
                "    return r, w\n"
                "os.pipe = pipe\n"
                "import posix\nposix.pipe = pipe\n"
                f"job = dict({JOB!r}, template={template!r})\n"
                "print(spawn.spawn([job], orphan=True) is not None, flush=True)\n"
                "time.sleep(8)\n")
        proc = subprocess.Popen([sys.executable, "-c", code], env=child_env(site), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
        try:
            assert [r.path for r in server.wait_for(1, timeout=10)] == ["/t/scarf-autoping"]
        finally:
            proc.send_signal(signal.SIGKILL)
            out, err = proc.communicate(timeout=HANG)
        assert (out, err) == ("True\n", ""), (out, err)
    finally:
        server.close()


@linux_only
@needs_posix_spawn
@pytest.mark.parametrize("closed", ["0", "0,1,2"])
def test_a_host_with_closed_standard_descriptors_still_gets_its_sender_started(tmp_path, site, closed):
    """Pipes of ours may then get the numbers 0 to 4 that the spawn hands out (stdin,
    the result descriptor 3, the shell's 4): none may overwrite another."""
    server = Collector()
    out = tmp_path / "out.json"
    try:
        autoping_package(site, "pkg_fds", server.url + "/t/{package}")
        code = (f"import json, os\nfor fd in ({closed},):\n    os.close(fd)\n"
                "import pkg_fds\nsent = pkg_fds.PING.wait(10)\n"
                f"with open({str(out)!r}, 'w') as f:\n    json.dump([sent, pkg_fds.PING.status], f)\n")
        child = run_child(code, child_env(site), timeout=HANG)
        assert child.returncode == 0, child
        assert json.loads(out.read_text()) == [True, "sent"]
        assert [r.path for r in server.settle(NOTHING_QUIET)] == ["/t/pkg-fds"]
    finally:
        server.close()


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


@linux_only
@needs_posix_spawn
def test_without_a_shell_the_sender_is_still_no_child_of_ours(site):
    """A distroless image has no /bin/sh: the sender forks itself instead."""
    server = Collector("delay:1.5")
    try:
        autoping_package(site, "pkg_noshell", server.url + "/t/{package}")
        code = ("import glob, json, os, time\nfrom scarf_autoping import spawn\nspawn.SHELL = '/nonexistent/sh'\n"
                "import pkg_noshell\n"
                "pkg_noshell.PING.wait(0)\n"  # ends the deferral: the sender starts now
                "time.sleep(0.5)\n"  # it is out: the server answers at 1.5 s
                "children = ''.join(open(f).read() for f in glob.glob('/proc/self/task/*/children'))\n"
                "sent = pkg_noshell.PING.wait(10)\n"
                "try:\n"
                "    left = os.waitpid(-1, os.WNOHANG)[0]\n"
                "except ChildProcessError:\n"
                "    left = None\n"
                "print(json.dumps([children.split(), sent, left]))\n")
        child = run_child(code, child_env(site), timeout=30)
        assert (child.returncode, child.stderr) == (0, ""), child
        assert json.loads(child.stdout) == [[], True, None], child
        assert len(server.settle(NOTHING_QUIET)) == 1
    finally:
        server.close()


@linux_only
@needs_posix_spawn
def test_a_url_longer_than_one_pipe_write_still_settles(site):
    """The sender's report line is cut at 3500 bytes; its newline must survive the cut."""
    server = Collector()
    try:
        autoping_package(site, "pkg_longurl", server.url + "/t/{package}/{extra}",
                         args="variables={'extra': 'x' * 5000}")
        code = ("import json\nimport pkg_longurl\n"
                "print(json.dumps([pkg_longurl.PING.wait(10), pkg_longurl.PING.status]))\n")
        started = time.monotonic()
        child = run_child(code, child_env(site), timeout=30)
        assert (child.returncode, child.stderr) == (0, ""), child
        assert json.loads(child.stdout) == [True, "sent"], child
        took = time.monotonic() - started
        assert took < 8, f"took {took:.2f} s, expected about 1 s: not the sender's deadline running out"
        assert len(server.settle(NOTHING_QUIET)) == 1
    finally:
        server.close()


@linux_only
@needs_posix_spawn
def test_a_sender_started_by_our_thread_blocks_no_signal(site):
    """Our thread blocks every signal, and the sender it starts must not inherit that mask
    (posix_spawn resets it): a sender deaf to SIGTERM would outlive a container's stop."""
    server = Collector("delay:2")
    try:
        autoping_package(site, "pkg_sigsender", server.url + "/t/{package}")
        code = """\
            import ctypes, glob, json, time
            ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: the orphaned sender is ours to see
            import pkg_sigsender
            pkg_sigsender.PING.wait(0)   # our thread starts the sender; the server answers at 2 s
            time.sleep(0.8)
            masks = []
            for name in glob.glob("/proc/self/task/*/children"):
                for pid in open(name).read().split():
                    with open(f"/proc/{pid}/status") as f:
                        masks += [line.split()[1] for line in f if line.startswith("SigBlk:")]
            print(json.dumps([masks, pkg_sigsender.PING.wait(10)]))
        """
        child = run_host(code, child_env(site))
        assert (child.returncode, child.stderr) == (0, ""), child
        assert json.loads(child.stdout) == [["0000000000000000"], True], child
    finally:
        server.close()
