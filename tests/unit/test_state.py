"""The per-user state (issue 18), unit by unit: pure logic, file formats, and the file
functions against real temporary directories (never the real home)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import child_env

from scarf_autoping import policy, state

TEMPLATE = "https://x.example/t/{package}/{version}"


# --- where the state lives -----------------------------------------------------------


@pytest.mark.parametrize(("env", "expected"), [
    ({"HOME": "/h"}, "/h/.local/state/scarf-autoping"),
    ({"HOME": "/h/"}, "/h/.local/state/scarf-autoping"),
    ({"HOME": "/h", "XDG_STATE_HOME": "/x"}, "/x/scarf-autoping"),
    ({"HOME": "/h", "XDG_STATE_HOME": "relative"}, "/h/.local/state/scarf-autoping"),  # XDG: absolute only
    ({"XDG_STATE_HOME": "/x"}, "/x/scarf-autoping"),
    ({}, None),
    ({"HOME": "relative"}, None),
    ({"HOME": "/h", "SCARF_AUTOPING_STATE_DIR": "/s"}, "/s"),
    ({"HOME": "/h", "SCARF_AUTOPING_STATE_DIR": ""}, None),
    ({"HOME": "/h", "SCARF_AUTOPING_STATE_DIR": "  "}, None),
    ({"HOME": "/h", "SCARF_AUTOPING_STATE_DIR": "rel"}, None),
])
@pytest.mark.skipif(sys.platform in ("darwin", "win32"), reason="the XDG layout")
def test_the_state_directory_follows_xdg_and_the_override(env, expected):
    assert policy.state_dir(env) == expected


def test_the_state_directory_on_macos_and_windows(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    assert policy.state_dir({"HOME": "/Users/me", "XDG_STATE_HOME": "/x"}) == \
        "/Users/me/Library/Application Support/scarf-autoping"
    monkeypatch.setattr(os, "name", "nt")
    assert policy.state_dir({"LOCALAPPDATA": "C:\\Users\\me\\AppData\\Local"}) in (
        "C:\\Users\\me\\AppData\\Local\\scarf-autoping", None)  # isabs() of a Windows path is the host's own
    assert policy.state_dir({}) is None


# --- saved consent ---------------------------------------------------------------------


@pytest.mark.parametrize(("text", "package", "expected"), [
    ("", "p", None),
    ("off\n", "p", "off"),
    ("off\non p\n", "p", "on"),
    ("off\non p\n", "q", "off"),
    ("off p\n", "p", "off"),
    ("off p\n", "q", None),
    ("off My_Pkg\n", "my-pkg", None),  # rules are written by marker name (normalised)
    ("off my-pkg\n", "My_Pkg", "off"),
    ("\x00\xff garbage\noff  extra words\n", "p", None),
    ("on *\n", "p", None),
])
def test_saved_consent_rules(tmp_path, text, package, expected):
    (tmp_path / "consent").write_bytes(text.encode("latin-1"))
    env = {"SCARF_AUTOPING_STATE_DIR": str(tmp_path)}
    assert policy.saved_consent(env, package)[0] == expected


def test_decide_order_variables_then_saved_then_parent_then_ci(tmp_path):
    (tmp_path / "consent").write_text("off\n")
    env = {"SCARF_AUTOPING_STATE_DIR": str(tmp_path)}
    assert policy.decide({**env, "DO_NOT_TRACK": "1"}, "p").rule == "variable"
    off = policy.decide({**env, "CI": "1"}, "p")
    assert (off.enabled, off.rule) == (False, "saved") and "scarf-autoping disable" in off.reason
    (tmp_path / "consent").write_text("off\non p\n")
    assert policy.decide(env, "p").rule == "saved" and policy.decide(env, "p").enabled
    assert policy.decide({**env, "CI": "1"}, "p").rule == "ci"  # a saved 'on' does not beat CI detection
    assert policy.decide({**env, "P_NO_ANALYTICS": "1"}, "p").rule == "variable"  # nor a variable
    assert policy.decide({"SCARF_AUTOPING_STATE_DIR": str(tmp_path / "none")}, "p").rule == "default"


def test_set_consent_disable_enable_round_trip(tmp_path):
    env = {"SCARF_AUTOPING_STATE_DIR": str(tmp_path / "s")}
    consent = tmp_path / "s" / "consent"
    assert state.set_consent(env, False, "Pkg.A") == (str(consent), True)
    assert consent.read_text() == "off pkg-a\n"
    state.set_consent(env, False, None)
    assert consent.read_text() == "off\noff pkg-a\n"
    state.set_consent(env, True, "b")  # on for b while every other is off
    assert policy.saved_consent(env, "b")[0] == "on" and policy.saved_consent(env, "c")[0] == "off"
    state.set_consent(env, True, None)  # undoes 'disable'; a package turned off by name stays off
    assert consent.read_text() == "off pkg-a\n"
    state.set_consent(env, True, "pkg_a")
    assert not consent.exists()
    assert state.set_consent({"SCARF_AUTOPING_STATE_DIR": ""}, False, None) == (None, False)


# --- the import path's key and note ------------------------------------------------------


def test_stamp_key_holds_only_numbers_and_changes_on_upgrade(tmp_path):
    module = tmp_path / "__init__.py"
    module.write_text("x = 1\n")
    key = policy.stamp_key(str(module), None)
    assert key is not None and all(part.isalnum() for part in key.split("."))
    assert str(tmp_path.name) not in key and os.environ.get("USER", "@") not in key
    assert policy.stamp_key(str(module), None) == key
    assert policy.stamp_key(str(module), "2.0") == key + ".2.0"
    module.write_text("x = 22\n")  # an upgrade writes the file again
    assert policy.stamp_key(str(module), None) != key
    assert policy.stamp_key(None, None) is None
    assert policy.stamp_key(str(tmp_path / "missing.py"), None) is None
    assert policy.stamp_key("/x.zip/pkg/__init__.py", None) is None


def test_the_call_print_tells_calls_apart_the_same_in_every_process(tmp_path):
    module = tmp_path / "__init__.py"
    module.write_text("x = 1\n")
    call = policy.call_print("0.1.0", "https://x.example/t/{package}", "v")
    assert policy.stamp_key(str(module), "2.0", call) == policy.stamp_key(str(module), None) + f".{call}.2.0"
    assert all(ch in "0123456789abcdef" for ch in call) and len(call) <= 16
    others = {policy.call_print("0.1.0", "https://x.example/t/{package}"),  # no variable name
              policy.call_print("0.1.0", "https://x.example/t/{package}", "w"),
              policy.call_print("0.1.0", "https://x.example/t/{package}v"),  # the same text, another split
              policy.call_print("0.2.0", "https://x.example/t/{package}", "v"),
              policy.call_print("0.1.0", "https://x.example/t/{package}", "v", "")}
    assert call not in others and len(others) == 5
    # What a modulus near a power of two let through (2**61 - 1: bytes 61 apart trade
    # places; one byte 8 lower and the one 8 further on 1 higher): never the same now.
    good = "https://acme.gateway.scarf.sh/t/{package}/{version}/{platform}/{python}/{arch}/{distro}"
    swapped = list(good)
    swapped[0], swapped[61] = swapped[61], swapped[0]
    shifted = bytearray(good.encode())
    shifted[0] -= 8
    shifted[8] += 1
    for other in ("".join(swapped), shifted.decode()):
        assert other != good and policy.call_print("0.1.0", other) != policy.call_print("0.1.0", good)
    # A part with a NUL in it cannot pass for two parts.
    assert policy.call_print("0.1.0", "https://x.example/{v}\0v") != policy.call_print("0.1.0", "https://x.example/{v}", "v")
    assert policy.call_print("0.1.0", "t", "a\0b") != policy.call_print("0.1.0", "t", "a", "b")
    # Every one-byte edit of a template changes it.
    base = policy.call_print(good)
    assert all(policy.call_print(good[:i] + chr(ord(good[i]) ^ bit) + good[i + 1:]) != base
               for i in range(len(good)) for bit in (1, 2, 4, 8, 16, 32))
    script = "from scarf_autoping import policy; print(policy.call_print('0.1.0', 'https://x.example/t/{package}', 'v'))"
    for seed in ("1", "2"):
        child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                               env={**child_env(None), "PYTHONHASHSEED": seed})
        assert child.stdout.strip() == call


@pytest.mark.parametrize("data", [
    b"", b"\x00\xff\xfe", b"1 2", b"1 2 3 4", b"-5 0 -", b"a b c", b"99999999999999999999999 0 -", b"1 2 -" * 1000,
])
def test_garbage_hold_files_hold_nothing_back(data):
    now = time.time()
    sent, until, why = policy.parse_hold(data, now)
    assert until <= now + policy.MAX_BACKOFF + 60 and sent <= now + 60


def test_held_reads_the_note(tmp_path):
    directory = str(tmp_path)
    now = int(time.time())

    def note(text: str) -> str | None:
        path = policy.hold_path(directory, "Pkg", "k1")
        Path(path).parent.mkdir(exist_ok=True)
        Path(path).write_text(text)
        return policy.held(directory, "pkg", "k1", "day", False)

    def text(sent: float, until: float, why: str) -> str:
        return policy.hold_text(sent, until, why).decode()

    assert note(text(now - 3600, 0, "-")) is not None  # delivered an hour ago
    assert note(text(now - 90000, 0, "-")) is None  # more than a day ago
    assert note(text(now + 86400 * 3, 0, "-")) is None  # in the future: garbage
    assert note(text(0, now + 600, "backoff:ab")) is not None
    assert policy.held(directory, "pkg", "k1", "day", True) is None  # a ping that retries keeps its schedule
    assert note(text(0, now + 86400 * 30, "backoff")) is None  # more than a day ahead: garbage
    assert note(f"{now - 3600} 0 -") is None  # not 12 digits: garbage
    assert "410" in note(text(0, 0, "gone"))
    assert policy.held(directory, "pkg", "k1", "day", True) is not None  # 410 stops retrying pings too
    assert note(text(now - 3600, 0, "-")) is not None
    assert policy.held(directory, "pkg", "k1", "process", False) is None
    assert policy.held(directory, "pkg", "k2", "day", False) is None
    assert policy.held(None, "pkg", "k1", "day", False) is None
    assert policy.hold_path(directory, "p" * 300, "k") is None


def test_file_part_keeps_names_safe_on_every_platform():
    for name in ("a/b", "..", "con", "x\\y", "é", "a:b", ".hidden"):
        part = policy.file_part(name)
        assert "/" not in part and "\\" not in part and ":" not in part and not part.startswith(".")


# --- pure logic of the background ---------------------------------------------------------


def test_backoff_grows_and_is_capped_at_a_day():
    waits = [state.backoff_seconds(n) for n in range(20)]
    assert waits[:5] == [0, 60, 120, 240, 480]
    assert waits == sorted(waits) and max(waits) == 86400
    assert state.backoff_seconds(1, retry_after=3600) == 3600
    assert state.backoff_seconds(1, retry_after=10**9) == 86400


def test_what_counts_toward_the_backoff():
    assert state.unreachable(None) and state.unreachable(503) and state.unreachable(500) and state.unreachable(429)
    assert not state.unreachable(404) and not state.unreachable(410) and not state.unreachable(204)


def test_origin_and_passwords():
    assert state.origin("HTTPS://X.Example:8443/t/{package}") == "https://x.example:8443"
    assert state.origin("https://user:pw@x.example/a") == "https://x.example"
    assert state.without_password("https://user:secret@x.example/a?b=c") == "https://x.example/a?b=c"
    assert state.without_password("https://x.example/a@b") == "https://x.example/a@b"
    line = state.record_line(1.0, "p", "sent", "https://u:secret@x.example/e")
    assert b"secret" not in line and line.count(b"\t") == 3


def test_digest_is_one_way_and_stable():
    key = state.digest("/home/alice/.venv", "pkg")
    assert len(key) == 32 and "alice" not in key and key == state.digest("/home/alice/.venv", "pkg")
    import hashlib

    assert key == hashlib.sha256(b"/home/alice/.venv\0pkg").hexdigest()[:32]


def test_record_lines_cannot_be_split_by_their_fields():
    line = state.record_line(5.0, "a\tb\nc", "sent\n(HTTP 204)", "https://x/\t\n")
    assert state.parse_record(line) == [(5.0, "a b c", "sent (HTTP 204)", "https://x/  ")]
    assert state.parse_record(b"garbage\n\x00\xff\t\t\t\nnan-ish\tp\to\tu\n") == []


# --- the pipeline's calls, against a real directory ------------------------------------------


def spec(directory: Path, **extra: object) -> dict:
    base = {"method": "GET", "template": TEMPLATE, "package": "pkg", "version": None, "timeout": 3.0,
            "retry_interval": None, "once_per": "process", "stamp": "1.2.3.4.5", "state": str(directory),
            "prefix": "/some/prefix"}
    base.update(extra)
    return base


def test_claim_and_after_attempt_once_per_day(tmp_path):
    job = spec(tmp_path, once_per="day")
    values = {"version": "1.0"}
    ticket = state.claim(job, values)
    assert ticket.skip is None and values["first_run"] == "true"
    assert state.claim(job, {"version": "1.0"}).skip.startswith("another process")  # the claim is held
    state.after_attempt(job, ticket, 204, "https://x.example/t/pkg/1.0", delivered=True, outcome="HTTP 204")
    again = state.claim(job, {"version": "1.0"})
    assert again.skip is not None and "once_per='day'" in again.skip
    assert policy.held(str(tmp_path), "pkg", "1.2.3.4.5", "day", False) is not None  # the import path's note
    upgrade = {"version": "1.1"}
    ticket = state.claim(job, upgrade)
    assert ticket.skip is None and upgrade["first_run"] == "true"  # an upgrade pings at once
    state.after_attempt(job, ticket, 204, "u", delivered=True, outcome="HTTP 204")
    assert not list((tmp_path / "env").glob("*.claim"))


def test_a_failed_ping_leaves_no_stamp(tmp_path):
    job = spec(tmp_path, once_per="day")
    ticket = state.claim(job, {"version": "1.0"})
    state.after_attempt(job, ticket, 404, "u", delivered=False, outcome="HTTP 404")
    assert state.claim(job, {"version": "1.0"}).skip is None
    assert policy.held(str(tmp_path), "pkg", "1.2.3.4.5", "day", False) is None


def test_first_run_with_once_per_process(tmp_path):
    job = spec(tmp_path, template="https://x.example/{first_run}")
    first, second = {"version": "1"}, {"version": "1"}
    ticket = state.claim(job, first)
    assert state.claim(job, second).skip is None and second["first_run"] == "false"  # another holds the claim
    state.after_attempt(job, ticket, 204, "u", delivered=True, outcome="HTTP 204")
    third = {"version": "1"}
    state.after_attempt(job, state.claim(job, third), 204, "u", delivered=True, outcome="HTTP 204")
    assert (first["first_run"], third["first_run"]) == ("true", "false")
    without = {"version": "1"}
    state.claim(spec(tmp_path, state=None), without)
    assert without["first_run"] == "unknown"


def test_a_stale_claim_is_taken_over(tmp_path):
    job = spec(tmp_path, once_per="day")
    ticket = state.claim(job, {"version": "1"})
    old = time.time() - state.CLAIM_STALE - 60
    os.utime(ticket.claim, (old, old))
    assert state.claim(job, {"version": "1"}).skip is None


def test_backoff_and_gone(tmp_path):
    job = spec(tmp_path)
    for failures in (1, 2):
        state.after_attempt(job, None, 503, "https://x.example/t/pkg/1", delivered=False, outcome="HTTP 503")
        why = state.suppressed(job)
        assert why is not None and f"{failures} failure" in why
    assert state.suppressed({**job, "retry_interval": 5.0}) is None
    assert state.suppressed({**job, "template": "https://other.example/{package}"}) is None
    [(where, failures, until)] = state.backoffs({"SCARF_AUTOPING_STATE_DIR": str(tmp_path)})
    assert (where, failures) == ("https://x.example", 2) and 100 < until - time.time() <= 121
    state.after_attempt(job, None, 404, "https://x.example/t/pkg/1", delivered=False, outcome="HTTP 404")
    assert state.suppressed(job) is None  # reached: the back-off starts again from nothing
    state.after_attempt(job, None, 410, "https://x.example/t/pkg/1", delivered=False, outcome="HTTP 410")
    assert "410" in state.suppressed(job) and "410" in state.suppressed({**job, "retry_interval": 5.0})
    assert state.suppressed({**job, "template": TEMPLATE + "/v2"}) is None
    assert state.gone({"SCARF_AUTOPING_STATE_DIR": str(tmp_path)})[0][2] == TEMPLATE
    directory, removed = state.forget({"SCARF_AUTOPING_STATE_DIR": str(tmp_path)})
    assert directory == str(tmp_path) and removed >= 2
    assert state.suppressed(job) is None


def test_forget_keeps_the_saved_consent(tmp_path):
    env = {"SCARF_AUTOPING_STATE_DIR": str(tmp_path)}
    state.set_consent(env, False, "p")
    job = spec(tmp_path, once_per="day")
    state.after_attempt(job, state.claim(job, {"version": "1"}), 204, "u", delivered=True, outcome="HTTP 204")
    state.forget(env)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["consent"]


def test_the_record_is_bounded_and_never_keeps_a_password(tmp_path):
    env = {"SCARF_AUTOPING_STATE_DIR": str(tmp_path)}
    job = spec(tmp_path)
    for i in range(400):
        state.after_attempt(job, None, 204, f"https://user:pw{i}@x.example/t/pkg/{'v' * 100}/{i}",
                            delivered=True, outcome="HTTP 204")
    entries = state.record(env)
    assert len(entries) == state.RECORD_LINES and entries[-1][3].endswith("/399")
    assert (tmp_path / "sent.log").stat().st_size <= state.RECORD_BYTES + 600
    assert b"pw" not in (tmp_path / "sent.log").read_bytes().replace(b"pkg", b"")
    total = sum(f.stat().st_size for f in tmp_path.rglob("*") if f.is_file())
    assert total <= 32 * 1024, total


def test_the_folders_are_bounded(tmp_path):
    for i in range(state.MAX_FILES + 50):
        job = spec(tmp_path, once_per="day", package=f"pkg{i}", stamp=f"1.{i}")
        state.after_attempt(job, state.claim(job, {"version": "1"}), 204, "u", delivered=True, outcome="HTTP 204")
    for folder in ("env", "hold"):
        assert len(list((tmp_path / folder).iterdir())) <= state.MAX_FILES


def test_fifty_writers_at_once_leave_readable_files(tmp_path):
    job = spec(tmp_path, once_per="day")
    barrier = threading.Barrier(50)
    tickets = []

    def writer(i: int) -> None:
        barrier.wait()
        ticket = state.claim(job, {"version": "1"})
        tickets.append(ticket)
        state.after_attempt(job, ticket, 503 if i % 2 else 204, f"https://x.example/{i}", delivered=not i % 2,
                            outcome="x")

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sum(t.skip is None for t in tickets) >= 1
    assert len(state.record({"SCARF_AUTOPING_STATE_DIR": str(tmp_path)})) >= 1
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith((".tmp", ".claim", ".stale"))]


@pytest.mark.parametrize("where", ["a file where the directory should be", "garbage in every file"])
def test_nothing_raises_on_a_broken_directory(tmp_path, where):
    directory = tmp_path / "s"
    if where.startswith("a file"):
        directory.write_text("not a directory")
    else:
        for name in ("consent", "sent.log"):
            (directory / name).parent.mkdir(parents=True, exist_ok=True)
            (directory / name).write_bytes(os.urandom(3000))
        for folder in ("hold", "env", "origin", "gone"):
            (directory / folder).mkdir()
            (directory / folder / "x").write_bytes(os.urandom(100))
        (directory / "env" / "notafile").mkdir()
    job = spec(directory, once_per="day", template="https://x.example/{first_run}")
    env = {"SCARF_AUTOPING_STATE_DIR": str(directory)}
    values = {"version": "1"}
    ticket = state.claim(job, values)
    state.after_attempt(job, ticket, 503, "u", delivered=False, outcome="x")
    state.suppressed(job)
    state.record(env)
    state.backoffs(env)
    state.gone(env)
    policy.decide(env, "pkg")
    state.forget(env)
    assert values["first_run"] in ("true", "false", "unknown")


@pytest.mark.parametrize("value", ["hour", "Day", "", None, 1])
def test_once_per_is_checked_at_the_call(value):
    from scarf_autoping import autoping

    with pytest.raises(ValueError, match="once_per must be one of 'process', 'day', 'week'"):
        autoping("pkg", "https://x.example/{package}", once_per=value)


def test_first_run_is_a_builtin_variable():
    from scarf_autoping import check_arguments
    from scarf_autoping.facts import BUILTIN_NAMES

    assert "first_run" in BUILTIN_NAMES
    check_arguments("pkg", "https://x.example/{first_run}", None, None, 3.0, 1.0)
    with pytest.raises(ValueError, match="clashes with the built-in"):
        check_arguments("pkg", "https://x.example/{package}", None, {"first_run": "x"}, 3.0, 1.0)
