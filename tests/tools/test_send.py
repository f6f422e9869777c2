"""``scarf-autoping send`` for shell scripts: POST with a JSON body, ``--detach``, exit codes
(0 delivered/handed over/opted out, 1 failed, 2 bad argument), ``--quiet``/``--verbose``, a
deadline that holds, and the EXIT-trap recipe of docs/events.md run by real bash scripts
against a loopback endpoint that is up, down, hanging, or that the user opted out of."""

from __future__ import annotations

import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import NOTHING_QUIET, child_env
from loopback import Collector, free_port

BIN = Path(sys.executable).parent
SCRIPT = str(BIN / "scarf-autoping")
ROUTE = "/t/{package}/{version}/{platform}"
DOCS = Path(__file__).resolve().parent.parent.parent / "docs" / "events.md"
#: The placeholder endpoint in the documented recipe, replaced by the test server's.
DOC_ENDPOINT = "https://mytool.gateway.scarf.sh/run"

bash = shutil.which("bash")


def send(*args: str, env: dict[str, str] | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([SCRIPT, "send", *args], env=env if env is not None else _env(), capture_output=True,
                          text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL)


def _env(**extra: str) -> dict[str, str]:
    env = child_env(**extra)
    env["PATH"] = f"{BIN}:{env.get('PATH', '')}"
    return env


@pytest.fixture
def server_factory(make_collector):
    """``server_factory(mode)``: the suite's loopback server factory."""
    return make_collector


# --- the command -------------------------------------------------------------------------


def test_post_with_a_json_body(server_factory):
    server = server_factory()
    body = '{"event": "run", "name": "é", "n": [1, 2]}'
    result = send(server.url + ROUTE + "{?n}", "--package", "tool", "--version", "1.0", "--var", "n=3", "--method", "POST",
                  "--body", body)
    assert result.returncode == 0, result
    assert re.fullmatch(rf"{re.escape(server.url)}/t/tool/1\.0/\w+\?n=3\nHTTP 204 in \d+ ms\n", result.stdout)
    arrived = server.wait_for(1)[0]
    assert (arrived.method, arrived.target) == ("POST", f"/t/tool/1.0/{platform.system().lower()}?n=3")
    assert arrived.body == body.encode("utf-8")
    assert arrived.headers["content-type"] == "application/json"
    assert arrived.headers["user-agent"].startswith("scarf-autoping/") and "(cli)" in arrived.headers["user-agent"]


def test_post_without_a_body_and_get_by_default(server_factory):
    server = server_factory()
    assert send(server.url + "/{package}", "--package", "p", "--method", "POST", "--quiet").returncode == 0
    assert send(server.url + "/{package}", "--package", "p", "--quiet").returncode == 0
    first, second = server.wait_for(2)
    assert (first.method, first.body, "content-type" in first.headers) == ("POST", b"", False)
    assert second.method == "GET"


@pytest.mark.parametrize("args,fragment", [
    (("--body", "{}"), "--body needs --method POST"),
    (("--method", "POST", "--body", "{nope"), "--body must be JSON"),
    (("--method", "PUT"), "invalid choice"),
    (("--timeout", "-1"), "more than 0"),
    (("--detach", "--var", "novalue"), "NAME=VALUE"),
])
def test_bad_arguments_are_exit_2_even_when_opted_out(args, fragment):
    for env in (_env(), _env(DO_NOT_TRACK="1")):
        result = send("http://127.0.0.1:9/{package}", "--package", "p", *args, env=env)
        assert result.returncode == 2, result
        assert result.stdout == "" and result.stderr.count("\n") == 1 and fragment in result.stderr, result


def test_a_bad_template_with_detach_is_exit_2_at_once():
    result = send("http://127.0.0.1:9/{nope}", "--package", "p", "--detach")
    assert result.returncode == 2 and "unknown variable {nope}" in result.stderr, result


@pytest.mark.parametrize("env", [{"DO_NOT_TRACK": "1"}, {"SCARF_NO_ANALYTICS": "true"}, {"TOOL_NO_ANALYTICS": "1"},
                                 {"SCARF_ANALYTICS": "false"}])
@pytest.mark.parametrize("detach", [False, True])
def test_opted_out_is_exit_0_and_silent_unless_verbose(server_factory, env, detach):
    server = server_factory()
    extra = ("--detach",) if detach else ()
    result = send(server.url + ROUTE, "--package", "tool", "--method", "POST", *extra, env=_env(**env))
    assert (result.returncode, result.stdout, result.stderr) == (0, "", ""), result
    result = send(server.url + ROUTE, "--package", "tool", "--verbose", *extra, env=_env(**env))
    assert (result.returncode, result.stdout) == (0, "")
    assert result.stderr == f"scarf-autoping send: not sent: opted out by {next(iter(env))}\n"
    assert server.settle(NOTHING_QUIET if detach else 0.2) == []


def test_failure_is_exit_1_and_quiet_prints_nothing(server_factory):
    refused = send(f"http://127.0.0.1:{free_port()}/{{package}}", "--package", "p", "--quiet")
    assert (refused.returncode, refused.stdout, refused.stderr) == (1, "", "")
    broken = server_factory("status:500")
    failed = send(broken.url + "/{package}", "--package", "p", "--method", "POST", "--body", "{}")
    assert failed.returncode == 1 and "HTTP 500 in " in failed.stdout
    redirect = server_factory("status:302")
    assert send(redirect.url + "/{package}", "--package", "p", "-q").returncode == 0  # a GET: 3xx counts
    assert send(redirect.url + "/{package}", "--package", "p", "-q", "--method", "POST").returncode == 1


def test_https_to_a_plain_http_port_is_explained_in_words():
    plain = Collector()  # http.server: answers the TLS hello with a plain-HTTP 400
    try:
        url = plain.url.replace("http://", "https://") + "/{package}"
        failed = send(url, "--package", "p", "--timeout", "5")
    finally:
        plain.close()
    assert failed.returncode == 1, failed
    assert "TLS handshake failed: is this an https URL on a plain-HTTP port?" in failed.stdout, failed


def test_the_timeout_bounds_a_trickled_answer(server_factory):
    server = server_factory("trickle")
    started = time.monotonic()
    result = send(server.url + "/{package}", "--package", "p", "--timeout", "1")
    assert result.returncode == 1, result
    # About 1 s expected (the deadline); a trickle without it would never end.
    took = time.monotonic() - started
    assert took < 8.0, f"send took {took:.2f} s, expected about the 1 s deadline"
    ms = int(re.search(r"in (\d+) ms", result.stdout).group(1))
    assert 900 <= ms < 4000, result.stdout


def test_detach_returns_at_once_and_the_ping_arrives_after(server_factory):
    hanging = server_factory("stall")
    ok = server_factory()
    started = time.monotonic()
    result = send(hanging.url + ROUTE, "--package", "tool", "--version", "2", "--timeout", "10", "--detach")
    took = time.monotonic() - started
    # The command's own start-up (a fraction of a second), not the 10 s request.
    assert took < 6.0, f"send --detach took {took:.2f} s"
    assert (result.returncode, result.stdout, result.stderr) == (0, "handed over to a detached sender\n", "")
    assert hanging.wait_for(1, timeout=10)[0].target == f"/t/tool/2/{platform.system().lower()}"
    result = send(ok.url + ROUTE + "{?n}", "--package", "tool", "--version", "2", "--var", "n=é", "--method", "POST",
                  "--body", '{"exit_code": 3}', "--detach", "--quiet")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    arrived = ok.wait_for(1, timeout=10)
    assert len(arrived) == 1
    assert (arrived[0].method, arrived[0].target) == ("POST", f"/t/tool/2/{platform.system().lower()}?n=%C3%A9")
    assert arrived[0].body == b'{"exit_code": 3}'
    assert arrived[0].headers["content-type"] == "application/json"
    assert "(cli)" in arrived[0].headers["user-agent"]
    assert len(ok.settle(0.5)) == 1


def test_detach_sends_inline_when_no_process_can_be_started(server_factory, monkeypatch, capsys):
    from scarf_autoping import spawn
    from scarf_autoping.tools import cli

    server = server_factory()
    monkeypatch.setattr(spawn, "spawn", lambda *a, **k: None)  # a frozen app, no posix_spawn
    for name in ("DO_NOT_TRACK", "SCARF_NO_ANALYTICS", "SCARF_ANALYTICS", "P_NO_ANALYTICS"):
        monkeypatch.delenv(name, raising=False)
    code = cli.main(["send", server.url + "/{package}", "--package", "p", "--detach", "--verbose"])
    assert code == 0
    out, err = capsys.readouterr()
    assert "HTTP 204" in out and "no detached sender could be started" in err
    assert len(server.wait_for(1)) == 1


# --- the documented EXIT-trap recipe -----------------------------------------------------


def _recipe(endpoint: str) -> str:
    """The bash recipe from docs/events.md (between its markers), aimed at ``endpoint``."""
    text = DOCS.read_text(encoding="utf-8")
    block = text.split("<!-- recipe:start -->", 1)[1].split("<!-- recipe:end -->", 1)[0]
    code = block.split("```bash\n", 1)[1].split("```", 1)[0]
    assert DOC_ENDPOINT in code
    return code.replace(DOC_ENDPOINT, endpoint)


def _script(tmp_path: Path, endpoint: str, body: str, name: str = "tool.sh") -> Path:
    path = tmp_path / name
    path.write_text("#!/usr/bin/env bash\nset -euo pipefail\n" + _recipe(endpoint) + body, encoding="utf-8")
    path.chmod(0o755)
    return path


def _run(path: Path, env: dict[str, str]) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    result = subprocess.run([bash, str(path)], env=env, capture_output=True, text=True, timeout=30, check=False,
                            stdin=subprocess.DEVNULL)
    return result, time.monotonic() - started


pytestmark_bash = pytest.mark.skipif(bash is None, reason="needs bash")


@pytestmark_bash
@pytest.mark.parametrize("body,code", [
    ('echo "working"\n', 0),
    ('echo "working"\nexit 3\n', 3),
    ('echo "working"\nfalse\necho "never"\n', 1),  # set -e: the script's own failure
    ('echo "working"\nsleep 1.2\n', 0),
])
def test_recipe_with_the_endpoint_up(server_factory, tmp_path, body, code):
    server = server_factory()
    script = _script(tmp_path, server.url + "/run", body)
    result, _ = _run(script, _env())
    assert (result.returncode, result.stdout, result.stderr) == (code, "working\n", ""), result
    arrived = server.wait_for(1, timeout=10)
    assert len(server.settle(0.5)) == 1  # one event per run
    event = arrived[0]
    assert event.method == "POST" and event.target.startswith("/run?")
    query = dict(pair.split("=", 1) for pair in event.target.split("?", 1)[1].split("&"))
    assert query["platform"] == platform.system().lower()
    assert query["version"] == "1.4.2"
    assert query["exit_code"] == str(code)
    # $SECONDS counts whole seconds of the wall clock: a boundary may fall inside the run.
    assert query["elapsed_time"] in (("1", "2") if "sleep" in body else ("0", "1"))
    assert event.body == b""


@pytestmark_bash
@pytest.mark.parametrize("endpoint", ["refused", "stall"])
def test_recipe_with_the_endpoint_down_never_holds_or_changes_the_script(server_factory, tmp_path, endpoint):
    if endpoint == "refused":
        url = f"http://127.0.0.1:{free_port()}/run"
        server = None
    else:
        server = server_factory("stall")
        url = server.url + "/run"
    script = _script(tmp_path, url, 'echo "working"\nexit 4\n')
    result, seconds = _run(script, _env())
    assert (result.returncode, result.stdout, result.stderr) == (4, "working\n", ""), result
    assert seconds < 3.0, f"the script took {seconds:.2f} s, expected its start-up: not the sender's 3 s timeout"
    if server is not None:
        assert len(server.wait_for(1, timeout=10)) == 1  # it was sent, after the script had gone


@pytestmark_bash
@pytest.mark.parametrize("env", [{"DO_NOT_TRACK": "1"}, {"SCARF_NO_ANALYTICS": "1"}, {"MYTOOL_NO_ANALYTICS": "yes"}])
def test_recipe_opted_out_sends_nothing_and_keeps_the_exit_code(server_factory, tmp_path, env):
    server = server_factory()
    script = _script(tmp_path, server.url + "/run", 'echo "working"\nexit 5\n')
    result, _ = _run(script, _env(**env))
    assert (result.returncode, result.stdout, result.stderr) == (5, "working\n", ""), result
    assert server.settle(NOTHING_QUIET) == []


@pytestmark_bash
def test_recipe_without_scarf_autoping_installed_changes_nothing(server_factory, tmp_path):
    server = server_factory()
    script = _script(tmp_path, server.url + "/run", 'echo "working"\nexit 6\n')
    env = child_env()
    env["PATH"] = "/usr/bin:/bin"  # no scarf-autoping on PATH
    result, _ = _run(script, env)
    assert (result.returncode, result.stdout, result.stderr) == (6, "working\n", ""), result


#: The guard the one-line trap in docs/events.md ends with (hides "command not found").
TRAP_GUARD = " >/dev/null 2>&1 || :"


def _trap_line(endpoint: str) -> str:
    """The one-line ``trap`` from docs/events.md, aimed at ``endpoint``, its guard replaced by a
    report on stderr: whatever the command prints, or its failure, shows in the script's output."""
    text = DOCS.read_text(encoding="utf-8")
    block = text.split("<!-- trap-line:start -->", 1)[1].split("<!-- trap-line:end -->", 1)[0]
    line = block.split("```bash\n", 1)[1].split("```", 1)[0].strip()
    assert line.startswith("trap ") and line.endswith(' EXIT') and TRAP_GUARD in line, line
    assert "https://mytool.gateway.scarf.sh/" in line
    return line.replace("https://mytool.gateway.scarf.sh", endpoint).replace(TRAP_GUARD, r" || echo exit \$? >&2")


@pytestmark_bash
@pytest.mark.parametrize("code", [0, 3])
def test_the_one_line_trap_exits_at_once_silently_and_pings_once(tmp_path, code):
    """Issue 20: ``send --detach --quiet`` in a real bash script's EXIT trap, nothing hidden."""
    collector = Collector()
    try:
        script = tmp_path / "trap.sh"
        script.write_text(f"#!/usr/bin/env bash\nset -euo pipefail\n{_trap_line(collector.url)}\nexit {code}\n",
                          encoding="utf-8")
        result, seconds = _run(script, _env())
        assert (result.returncode, result.stdout, result.stderr) == (code, "", ""), result
        assert seconds < 10, seconds  # a hang-catcher, not a timing: the sender is detached
        arrived = collector.wait_for(1, timeout=10)
        assert len(collector.settle(0.5)) == 1, arrived  # exactly once
        assert arrived[0].method == "GET"
        assert arrived[0].path == f"/s/mytool/{platform.system().lower()}/{platform.machine()}"
        assert "(cli)" in arrived[0].headers["User-Agent"]
    finally:
        collector.close()


@pytestmark_bash
def test_the_one_line_trap_opted_out_or_with_a_bad_template(tmp_path):
    collector = Collector()
    try:
        script = tmp_path / "trap.sh"
        script.write_text(f"#!/usr/bin/env bash\n{_trap_line(collector.url)}\n", encoding="utf-8")
        result, _ = _run(script, _env(MYTOOL_NO_ANALYTICS="1"))
        assert (result.returncode, result.stdout, result.stderr) == (0, "", ""), result
        broken = tmp_path / "broken.sh"
        broken.write_text(f"#!/usr/bin/env bash\n{_trap_line(collector.url).replace('{arch}', '{arch')}\n",
                          encoding="utf-8")
        result, _ = _run(broken, _env())
        assert result.returncode == 0 and result.stdout == "", result
        assert result.stderr.startswith("scarf-autoping send: error: unclosed expression"), result
        assert result.stderr.endswith("\nexit 2\n"), result
        assert collector.settle(NOTHING_QUIET) == []
    finally:
        collector.close()


@pytestmark_bash
def test_recipe_costs_about_the_start_up_of_the_command(server_factory, tmp_path):
    server = server_factory("stall")
    with_recipe = _script(tmp_path, server.url + "/run", 'echo "working"\n')
    bare = tmp_path / "bare.sh"
    bare.write_text('#!/usr/bin/env bash\nset -euo pipefail\necho "working"\n', encoding="utf-8")
    start_up = tmp_path / "startup.sh"
    start_up.write_text("#!/usr/bin/env bash\nscarf-autoping --version >/dev/null\n", encoding="utf-8")
    times: dict[str, list[float]] = {"recipe": [], "bare": [], "start_up": []}
    for _ in range(3):
        for key, path in (("recipe", with_recipe), ("bare", bare), ("start_up", start_up)):
            times[key].append(_run(path, _env())[1])
    cost = min(times["recipe"]) - min(times["bare"])
    assert cost < 2 * min(times["start_up"]) + 0.3, times  # generous: a shared 2-CPU machine
