"""The per-user state (issue 18) in real child processes, against a loopback collector.

Every child gets ``HOME``, ``XDG_*`` and ``TMPDIR`` in this test's temporary directory
(never the real ones): saved consent, ``once_per``, ``{first_run}``, the offline back-off,
410 Gone, the record and ``forget``, 50 processes at once, and a state directory that is
missing, read-only, full or full of garbage.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import autoping_package, child_env, make_package, run_child

from scarf_autoping import state

SCRIPT = str(Path(sys.executable).parent / "scarf-autoping")
ROUTE = "/t/{package}/{version}"

#: What a child prints after ``import pkg``: the ping's status and reason, and whether the
#: delivery engine (or the state module) was loaded at all.
PROBE = """
import sys, _thread
import {name} as pkg
print(pkg.PING.status, "|", pkg.PING.reason)
print(sorted(m for m in sys.modules if m.startswith("scarf_autoping")), _thread._count())
"""


class Box:
    """One test's temporary world: a site, a home, XDG directories and a temporary folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.site = root / "site"
        self.home = root / "home"
        self.xdg = {name: root / name.lower() for name in ("XDG_STATE_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME",
                                                           "XDG_DATA_HOME")}
        self.tmp = root / "tmp"
        self.cwd = root / "cwd"
        for path in (self.site, self.home, self.tmp, self.cwd, *self.xdg.values()):
            path.mkdir(parents=True, exist_ok=True)
        self.state = self.xdg["XDG_STATE_HOME"] / "scarf-autoping"

    def env(self, **extra: str) -> dict[str, str]:
        env = child_env(self.site, HOME=str(self.home), TMPDIR=str(self.tmp),
                        **{k: str(v) for k, v in self.xdg.items()})
        env.update(extra)
        return env

    def child(self, name: str, *, code: str = PROBE, timeout: float = 30, **extra: str) -> tuple[str, list, int]:
        result = run_child(code.format(name=name), self.env(**extra), timeout=timeout, cwd=self.cwd)
        assert result.returncode == 0, result
        lines = result.stdout.splitlines()
        assert result.stderr == "", result
        status = lines[0] if lines else ""
        modules, threads = (eval(lines[1].rsplit(" ", 1)[0]), int(lines[1].rsplit(" ", 1)[1])) if len(lines) > 1 \
            else ([], 0)
        return status, modules, threads

    def cli(self, *args: str, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([SCRIPT, *args], env=self.env(**extra), capture_output=True, text=True, timeout=60,
                              check=False, cwd=self.cwd, stdin=subprocess.DEVNULL)

    def recorded(self, count: int, timeout: float = 20) -> list:
        """Wait until the record holds ``count`` pings (a sender writes it after the request);
        fail if it does not within ``timeout``."""
        deadline = time.monotonic() + timeout
        env = {"SCARF_AUTOPING_STATE_DIR": str(self.state)}
        while time.monotonic() < deadline:
            entries = state.record(env)
            if len(entries) >= count:
                time.sleep(0.1)  # the stamp is written next to it
                return entries
            time.sleep(0.02)
        entries = state.record(env)
        assert len(entries) >= count, entries
        return entries


@pytest.fixture
def box(tmp_path: Path) -> Box:
    return Box(tmp_path)


def upgrade(box: Box, name: str, template: str, version: str, args: str = "") -> None:
    """Install ``version`` over the package (a new ``__init__.py`` and dist-info), as pip would."""
    for info in box.site.glob(f"{name}-*.dist-info"):
        shutil.rmtree(info)
    (box.site / name / "__init__.py").unlink()
    time.sleep(0.01)
    autoping_package(box.site, name, template, args=args, version=version)


def opted_out_modules(box: Box, name: str) -> list:
    return box.child(name, DO_NOT_TRACK="1")[1]


# --- once_per ------------------------------------------------------------------------------


def test_once_per_day_pings_once_then_starts_nothing(box, collector):
    autoping_package(box.site, "daily", collector.url + ROUTE, args="once_per='day'")
    status, _, _ = box.child("daily")
    assert status.startswith("pending"), status
    assert len(collector.expect(1, timeout=20)) == 1
    assert len(box.recorded(1)) == 1
    for _ in range(3):
        status, modules, threads = box.child("daily")
        assert status.startswith("disabled | pinged") and "once_per='day'" in status, status
        # No thread, no process, and nothing imported beyond the face and its decisions: not
        # even the template parser (the stamp's key says this very call was checked).
        assert modules == ["scarf_autoping", "scarf_autoping.policy"] and threads == 0, (modules, threads)
    assert len(collector.settle(1.0)) == 1
    assert (box.state / "hold").is_dir()


def test_a_held_process_skips_only_the_checks_of_the_call_that_pinged(box, collector):
    """The stamp's key holds a fingerprint of the template and the variable names: a process
    held by it skips the template's checks (and their imports) because the process that pinged
    under it made exactly those; any other template is checked at the call."""
    make_package(box.site, "tplenv", "import os\nfrom scarf_autoping import autoping\n"
                 "PING = autoping('tplenv', os.environ['TPL'], once_per='day', variables={'v': 'x'})\n")
    first, second = collector.url + "/a/{package}/{v}", collector.url + "/b/{package}/{v}"
    assert box.child("tplenv", TPL=first)[0].startswith("pending")
    box.recorded(1)
    status, modules, _ = box.child("tplenv", TPL=first)
    assert status.startswith("disabled | pinged") and "scarf_autoping.template" not in modules, (status, modules)
    # The author's mistakes still raise at the call, stamp or not.
    for bad in (collector.url + "/a/{package}/{colour}", collector.url + "/a/{+v}", "ftp://x/{v}"):
        result = run_child("import tplenv", box.env(TPL=bad), cwd=box.cwd)
        assert result.returncode == 1 and "TemplateError" in result.stderr, result
    # Another template is checked and goes to the background, which still counts one ping
    # per package and day; after that its own key holds it at the call too.
    waited = box.child("tplenv", code="import tplenv\ntplenv.PING.wait(10)\nprint(tplenv.PING.status)\n",
                       TPL=second)
    assert waited[0] == "disabled", waited
    assert box.child("tplenv", TPL=second)[0].startswith("disabled | pinged")
    assert [r.path for r in collector.settle(0.5)] == ["/a/tplenv/x"]


def test_an_upgrade_pings_in_its_next_process(box, collector):
    template = collector.url + "/t/{package}/{version}/{first_run}"
    autoping_package(box.site, "upg", template, args="once_per='week'", version="1.0")
    box.child("upg")
    box.recorded(1)
    assert box.child("upg")[0].startswith("disabled")
    upgrade(box, "upg", template, "2.0", args="once_per='week'")
    assert box.child("upg")[0].startswith("pending")
    box.recorded(2)
    assert [r.path for r in collector.expect(2, timeout=20)] == ["/t/upg/1.0/true", "/t/upg/2.0/true"]
    assert box.child("upg")[0].startswith("disabled")


def test_a_failed_ping_leaves_no_stamp(box, make_collector):
    collector = make_collector("status:404")
    autoping_package(box.site, "nostamp", collector.url + ROUTE, args="once_per='day'")
    for count in (1, 2):
        assert box.child("nostamp")[0].startswith("pending")
        assert len(box.recorded(count)) == count
    assert len(collector.expect(2, timeout=20)) == 2


def test_fifty_processes_started_at_once_send_exactly_one_ping(box, collector):
    autoping_package(box.site, "herd", collector.url + ROUTE, args="once_per='day'")
    start = time.time() + 3.0
    code = f"import time\nwhile time.time() < {start!r}: time.sleep(0.001)\nimport herd\n"
    env = box.env()
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, cwd=box.cwd, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(50)]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0 and not out and not err, (proc.returncode, out, err)
    requests = collector.expect(1, timeout=60, quiet=8.0)
    assert len(requests) == 1, f"50 processes at once must send exactly one ping, got {len(requests)}"
    assert len(box.recorded(1)) == 1
    assert not list(box.state.rglob("*.claim")), "every claim is released"


# --- {first_run} -------------------------------------------------------------------------------


def test_first_run_is_true_once_per_version(box, collector):
    template = collector.url + "/f/{package}/{version}/{first_run}"
    autoping_package(box.site, "fr", template, version="1.0")
    for count in (1, 2):
        box.child("fr")
        box.recorded(count)
    upgrade(box, "fr", template, "1.1")
    box.child("fr")
    box.recorded(3)
    paths = [r.path for r in collector.expect(3, timeout=20)]
    assert paths == ["/f/fr/1.0/true", "/f/fr/1.0/false", "/f/fr/1.1/true"], paths


def test_first_run_without_state_is_unknown(box, collector):
    autoping_package(box.site, "frno", collector.url + "/f/{first_run}")
    box.child("frno", SCARF_AUTOPING_STATE_DIR="")
    assert [r.path for r in collector.expect(1, timeout=20)] == ["/f/unknown"]


# --- the offline back-off --------------------------------------------------------------------


def test_twenty_processes_in_a_row_reach_a_503_endpoint_a_handful_of_times(box, make_collector):
    collector = make_collector("status:503")
    autoping_package(box.site, "down", collector.url + ROUTE)
    waited = "import down\ndown.PING.wait(10)\nprint(down.PING.status)\n"
    statuses = [run_child(waited, box.env(), cwd=box.cwd).stdout.strip() for _ in range(10)]
    assert statuses[0] == "failed" and set(statuses[1:]) == {"disabled"}, statuses
    autoping_package(box.site, "down2", collector.url + "/other" + ROUTE)  # same endpoint, another package
    for _ in range(10):  # as a shell loop runs a command-line tool: each hands its ping over at exit
        assert run_child("import down2", box.env(), cwd=box.cwd).returncode == 0
        time.sleep(0.3)
    reached = len(collector.settle(2.0))
    assert reached <= 5, f"20 processes against a 503 endpoint reached it {reached} times; expected a handful"
    out = box.cli("status").stdout
    assert "backed off: http://127.0.0.1:" in out, out


def test_pings_that_retry_keep_their_own_schedule(box, make_collector):
    collector = make_collector("sequence:503,503,204")
    autoping_package(box.site, "first", collector.url + ROUTE)
    assert run_child("import first\nfirst.PING.wait(10)\nprint(first.PING.status)\n", box.env()).stdout.strip() \
        == "failed"
    assert state.backoffs({"SCARF_AUTOPING_STATE_DIR": str(box.state)}), "a back-off is in force"
    autoping_package(box.site, "server", collector.url + "/srv" + ROUTE, args="retry_interval=1")
    code = "import server\nprint(server.PING.wait(30), server.PING.status, server.PING.attempts)\n"
    assert run_child(code, box.env(), timeout=60).stdout.split() == ["True", "sent", "2"]
    assert len(collector.settle(0.5)) == 3
    assert not state.backoffs({"SCARF_AUTOPING_STATE_DIR": str(box.state)}), "one success resets the back-off"
    assert box.child("first")[0].startswith("pending")  # not held: the endpoint answered since


# --- 410 Gone ---------------------------------------------------------------------------------


def test_410_gone_ends_pings_until_forget(box, make_collector):
    collector = make_collector("status:410")
    template = collector.url + ROUTE
    autoping_package(box.site, "retired", template)
    box.child("retired")
    assert len(box.recorded(1)) == 1
    status, modules, _ = box.child("retired")
    assert status.startswith("disabled | the endpoint answered 410 Gone"), status
    assert "scarf_autoping.worker" not in modules
    upgrade(box, "retired", template, "9.9")  # a new install keeps the template: still gone
    code = "import retired\nretired.PING.wait(10)\nprint(retired.PING.status, retired.PING.reason)\n"
    assert run_child(code, box.env()).stdout.startswith("disabled the endpoint answered 410 Gone")
    assert box.child("retired")[0].startswith("disabled")  # and the import path knows it now
    assert len(collector.settle(1.0)) == 1
    assert "never again: " + template in box.cli("status").stdout
    assert box.cli("forget").returncode == 0
    assert box.child("retired")[0].startswith("pending")
    assert len(collector.expect(2, timeout=20)) == 2


# --- saved consent and status ------------------------------------------------------------------


def test_saved_consent_and_the_rule_status_names(box, collector):
    autoping_package(box.site, "consenting", collector.url + ROUTE)
    baseline = opted_out_modules(box, "consenting")
    assert "decided by: the default" in box.cli("status", "--package", "consenting").stdout
    assert box.cli("disable").returncode == 0
    status, modules, threads = box.child("consenting")
    assert status.startswith("disabled | turned off by 'scarf-autoping disable'"), status
    assert modules == baseline and threads == 0
    out = box.cli("status", "--package", "consenting").stdout
    assert out.startswith("off for consenting: turned off by 'scarf-autoping disable'") and \
        "decided by: the saved setting" in out, out
    assert box.cli("enable", "--package", "consenting").returncode == 0
    assert box.child("consenting")[0].startswith("pending")
    assert box.child("consenting", DO_NOT_TRACK="1")[0].startswith("disabled | opted out by DO_NOT_TRACK")
    assert "decided by: a variable" in box.cli("status", "--package", "consenting", DO_NOT_TRACK="1").stdout
    assert "decided by: CI detection" in box.cli("status", "--package", "consenting", CI="true").stdout
    assert box.cli("disable", "--package", "consenting").returncode == 0
    assert box.child("consenting")[0].startswith("disabled | turned off")
    assert box.cli("enable").returncode == 0  # undoes 'disable', not the package's own
    assert box.child("consenting")[0].startswith("disabled | turned off")
    assert box.cli("enable", "--package", "consenting").returncode == 0
    assert box.child("consenting")[0].startswith("pending")
    assert len(collector.expect(2, timeout=20)) == 2
    sent = box.cli("send", collector.url + ROUTE, "--package", "consenting", "--verbose")
    assert sent.returncode == 0
    box.cli("disable")
    quiet = box.cli("send", collector.url + ROUTE, "--package", "consenting", "--verbose")
    assert quiet.returncode == 0 and "saved setting" in quiet.stderr
    assert len(collector.settle(0.5)) == 3


EVENTS = """
import json
from scarf_autoping import ScarfEventLogger
logger = ScarfEventLogger({url!r}, verbose=True)
now = logger.log_event({{"event": "now"}})
later = logger.log_event({{"event": "later"}}, background=True)
later.wait(10)
print(json.dumps([now, later.status, later.reason, logger._check_do_not_track()]))
"""


def test_the_event_logger_honours_the_saved_setting(box, collector):
    """``scarf-autoping disable`` turns off every package's pings, and events are pings too."""
    code = EVENTS.format(url=collector.url + "/events")
    assert box.cli("disable").returncode == 0
    off = run_child(code, box.env(), cwd=box.cwd)
    assert off.returncode == 0 and json.loads(off.stdout.splitlines()[-1]) == [
        False, "disabled", f"turned off by 'scarf-autoping disable' (saved in {box.state / 'consent'})", True], off
    assert "Analytics are disabled: turned off by 'scarf-autoping disable'" in off.stderr, off
    assert box.cli("enable").returncode == 0
    on = run_child(code, box.env(), cwd=box.cwd)
    assert on.returncode == 0 and json.loads(on.stdout.splitlines()[-1])[:2] == [True, "sent"], on
    assert sorted(json.loads(r.body)["event"] for r in collector.expect(2, timeout=20)) == ["later", "now"]
    variable = run_child(code, box.env(DO_NOT_TRACK="1"), cwd=box.cwd)
    assert json.loads(variable.stdout.splitlines()[-1])[2] == "opted out by DO_NOT_TRACK", variable
    assert "Analytics are disabled via environment variables (DO_NOT_TRACK)" in variable.stderr


def test_status_shows_what_was_sent_and_forget_keeps_consent(box, make_collector):
    collector = make_collector("status:503")
    autoping_package(box.site, "shown", collector.url + ROUTE)
    box.child("shown")
    box.recorded(1)
    box.cli("disable", "--package", "other")
    out = box.cli("status").stdout
    assert f"state: {box.state}" in out
    assert f"shown  failed (HTTP 503)  {collector.url}/t/shown/1.2.3" in out, out
    forgot = box.cli("forget")
    assert forgot.returncode == 0 and str(box.state) in forgot.stdout
    assert sorted(p.name for p in box.state.iterdir()) == ["consent"]
    assert "sent from here: nothing recorded" in box.cli("status").stdout


# --- no state, no trace: the directory's faults ---------------------------------------------------


def tree(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def test_no_file_is_written_outside_the_state_directory(box, make_collector):
    collector = make_collector("sequence:503,204,410")
    template = collector.url + "/w/{package}/{first_run}"
    autoping_package(box.site, "tidy", template, args="once_per='day'")
    before = tree(box.root)
    for count in (1, 2, 3):
        box.child("tidy", code="import tidy\ntidy.PING.wait(10)\n")
        box.recorded(1 if count == 3 else count)  # forget() emptied the record before the third
        if count == 1:
            shutil.rmtree(box.state / "origin")  # let the next one through at once
            shutil.rmtree(box.state / "hold")
        if count == 2:
            state.forget({"SCARF_AUTOPING_STATE_DIR": str(box.state)})
            upgrade(box, "tidy", template, "1.3", args="once_per='day'")
            before = tree(box.root)
    after = tree(box.root)
    changed = [path for path in after if before.get(path) != after[path]]
    assert changed and all(path.startswith(str(box.state.relative_to(box.root))) for path in changed), changed
    assert not list(box.tmp.iterdir()) and not list(box.home.iterdir())


def test_an_empty_override_keeps_no_state_and_pings_every_process(box, collector):
    autoping_package(box.site, "stateless", collector.url + ROUTE, args="once_per='day'")
    for _ in range(2):
        box.child("stateless", SCARF_AUTOPING_STATE_DIR="")
    assert len(collector.expect(2, timeout=20)) == 2
    assert not [p for p in box.root.rglob("*") if p.is_file() and "site" not in p.parts]
    assert "state: none kept" in box.cli("status", SCARF_AUTOPING_STATE_DIR="").stdout
    disable = box.cli("disable", SCARF_AUTOPING_STATE_DIR="")
    assert disable.returncode == 1 and "DO_NOT_TRACK=1" in disable.stderr


def _namespace(script: str) -> subprocess.CompletedProcess:
    """Run a shell script in a mount namespace of its own (root can write anywhere else)."""
    if not shutil.which("unshare"):
        pytest.skip("needs unshare(1) to make a read-only or full file system")
    return subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=120,
                          check=False)


@pytest.mark.parametrize("fault", ["read-only state directory", "read-only home", "full disk"])
def test_a_state_directory_that_cannot_be_written_behaves_as_today(box, collector, fault):
    autoping_package(box.site, "stuck", collector.url + "/s/{package}/{first_run}", args="once_per='day'")
    box.state.mkdir(parents=True)
    env = box.env()
    if fault == "read-only home":
        env.pop("XDG_STATE_HOME")
        target = box.home
    else:
        target = box.state
    code = "import stuck\nstuck.PING.wait(10)\nprint(stuck.PING.status)\n"
    if os.geteuid() != 0 and fault != "full disk":
        target.chmod(0o500)
        try:
            outs = [run_child(code, env) for _ in range(3)]
        finally:
            target.chmod(0o700)
        assert all(r.returncode == 0 and r.stdout == "sent\n" and r.stderr == "" for r in outs), outs
    else:
        mount = (f"mount --bind -o ro {target} {target}" if fault != "full disk" else
                 f"mount -t tmpfs -o size=8k tmpfs {target} && (cat /dev/zero > {target}/fill 2>/dev/null; true)")
        exports = " ".join(f"{k}='{v}'" for k, v in env.items())
        runs = " && ".join([f"env -i {exports} {sys.executable} -c '{code}'"] * 3)
        proc = _namespace(f"{mount} || exit 77\n{runs}")
        if proc.returncode == 77:
            pytest.skip(f"cannot mount here: {proc.stderr.strip()}")
        assert proc.returncode == 0 and proc.stdout == "sent\n" * 3 and proc.stderr == "", proc
    paths = [r.path for r in collector.expect(3, timeout=20)]
    assert paths == ["/s/stuck/unknown"] * 3, paths


def test_garbage_in_every_state_file_behaves_as_today_at_worst(box, collector):
    template = collector.url + "/g/{package}/{first_run}"
    autoping_package(box.site, "garbled", template, args="once_per='day'")
    box.child("garbled")
    box.recorded(1)
    collector.expect(1, timeout=20)
    origin = box.state / "origin" / state.digest(state.origin(template))
    gone = box.state / "gone" / state.digest(template)
    for path in (origin, gone):
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"")
    claims = [box.state / "env" / (p.name + ".claim") for p in (box.state / "env").iterdir()]
    files = [p for p in box.state.rglob("*") if p.is_file()] + claims + [box.state / "consent"]
    assert len(files) >= 7, files
    for number, path in enumerate(files):
        path.write_bytes(os.urandom(200 + number) + b"\n9 9 gone\x00\t\t\t\n")
    for count in (2, 3):
        if count == 3:
            (box.state / "consent").unlink()
            os.mkfifo(box.state / "consent")  # a FIFO nobody writes to: never waited on
        result = run_child("import garbled\ngarbled.PING.wait(10)\nprint(garbled.PING.status)\n", box.env(),
                           timeout=30)
        assert result.returncode == 0 and result.stderr == "", result
        assert result.stdout in ("sent\n", "disabled\n"), result
        if count == 2:
            assert result.stdout == "sent\n", "garbage may cost a stamp, never the ping"
    assert len(collector.settle(0.5)) >= 2
    out = box.cli("status")
    assert out.returncode == 0 and "Traceback" not in out.stderr, out
    assert box.cli("forget").returncode == 0


def test_the_state_is_a_few_kilobytes(box, collector):
    for i in range(5):
        autoping_package(box.site, f"small{i}", collector.url + "/k/{package}/{first_run}", args="once_per='day'")
        box.child(f"small{i}")
    box.recorded(5)
    total = sum(p.stat().st_size for p in box.state.rglob("*") if p.is_file())
    assert total < 4096, total
    for path in box.state.rglob("*"):
        if path.is_file() and path.name != "sent.log":  # the record shows packages and URLs, as it must
            text = path.read_bytes()
            assert b"small" not in text and str(box.root).encode() not in text, (path, text)
    assert all(str(box.root) not in p.name for p in box.state.rglob("*"))
