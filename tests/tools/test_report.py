"""The text ``report``: SQL aggregation, --package/--since/--by, errors, and its agreement
with the pure :func:`adoption` grouping.

Databases are made with the collector's own schema (``Store``) and rows shaped as the
collector writes them; the command runs as a child process through the console script.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from helpers import child_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reports import make_db, ping

from scarf_autoping.tools.report import (
    ReportArgumentError,
    adoption,
    check_fields,
    normalise_package,
    parse_since,
    report,
)

SCRIPT = str(Path(sys.executable).parent / "scarf-autoping")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([SCRIPT, "report", *args], env=child_env(), capture_output=True, text=True, timeout=60,
                          check=False)


def table(result: subprocess.CompletedProcess) -> list[list[str]]:
    assert result.returncode == 0 and result.stderr == "", result
    lines = result.stdout.splitlines()
    return [line.split() for line in lines[2:-2]]


@pytest.fixture
def two_packages(tmp_path: Path) -> Path:
    return make_db(tmp_path / "p.sqlite", [
        ping("my-pkg", "1.0", "2026-11-01T00:00:00.000Z"),
        ping("my-pkg", "2.0", "2026-11-20T00:00:00.000Z"),
        ping("My_Pkg", "2.0", "2026-11-21T00:00:00.000Z"),
        ping("other", "2.0", "2026-11-21T00:00:00.000Z", platform="linux"),
        ping("other", "10.0", "2026-11-02T00:00:00.000Z", platform="macos"),
    ])


def test_default_groups_by_package_then_version_newest_first(two_packages):
    assert table(run("--db", str(two_packages))) == [
        ["my-pkg", "2.0", "1", "20.0%"], ["My_Pkg", "2.0", "1", "20.0%"], ["my-pkg", "1.0", "1", "20.0%"],
        ["other", "10.0", "1", "20.0%"], ["other", "2.0", "1", "20.0%"],
    ]


def test_package_filter_compares_pep503_names(two_packages):
    for spelling in ("my-pkg", "MY.PKG", "my__pkg"):
        rows = table(run("--db", str(two_packages), "--package", spelling, "--by", "version"))
        assert rows == [["2.0", "2", "66.7%"], ["1.0", "1", "33.3%"]], spelling
    assert run("--db", str(two_packages), "--package", "nobody").stdout == "no pings match these filters\n"
    assert run("--db", str(two_packages), "--since", "2099-01-01").stdout == "no pings match these filters\n"


def test_since_filters_on_the_stored_time(two_packages):
    rows = table(run("--db", str(two_packages), "--since", "2026-11-20", "--by", "version"))
    assert rows == [["2.0", "3", "100.0%"]]
    rows = table(run("--db", str(two_packages), "--since", "2026-11-02T00:00:00+00:00", "--package", "other",
                     "--by", "platform"))
    assert sorted(rows) == [["linux", "1", "50.0%"], ["macos", "1", "50.0%"]]


@pytest.mark.parametrize("by", ["nonsense", "version,platfrom", "version,platfrom,nonsense"])
def test_unknown_by_fields_exit_2_naming_them(two_packages, by):
    result = run("--db", str(two_packages), "--by", by)
    assert result.returncode == 2 and result.stdout == "", result
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("scarf-autoping report: error: unknown field")
    for name in by.split(","):
        if name not in ("version",):
            assert name in result.stderr.split("(known fields")[0]
    assert "known fields: package, version, os, platform" in result.stderr


def test_a_route_variable_or_query_parameter_of_the_pings_is_a_known_field(tmp_path):
    db = make_db(tmp_path / "c.sqlite", [
        {"variables": {"version": "1", "flavour": "cpu"}},
        {"query": "version=2&gpu_kind=cuda+12"},
    ])
    assert table(run("--db", str(db), "--by", "flavour")) == [["cpu", "1", "50.0%"], ["-", "1", "50.0%"]]
    assert table(run("--db", str(db), "--by", "gpu_kind")) == [["cuda", "12", "1", "50.0%"], ["-", "1", "50.0%"]]
    result = run("--db", str(db), "--by", "flavor")
    assert result.returncode == 2 and "in the stored pings also: flavour, gpu_kind" in result.stderr


@pytest.mark.parametrize("args", [("--since", "yesterday"), ("--since", "7x"), ("--package", " "), ("--by", ",")])
def test_bad_filters_exit_2_with_one_line(two_packages, args):
    result = run("--db", str(two_packages), *args)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "error:" in result.stderr, result


def test_the_package_column_is_left_out_when_no_ping_carries_a_package(tmp_path):
    db = make_db(tmp_path / "v.sqlite", [{"query": "version=3.0"}, {"variables": {"version": "3.0"}}])
    result = run("--db", str(db))
    assert result.stdout.splitlines()[0].split() == ["version", "pings", "share"]
    assert table(result) == [["3.0", "2", "100.0%"]]


def test_query_values_are_percent_decoded_and_route_variables_are_not(tmp_path):
    db = make_db(tmp_path / "q.sqlite", [
        {"query": "version=1.0%2Blocal"}, {"variables": {"version": "1.0+local"}}, {"query": "version=1.0+local"},
    ])
    assert table(run("--db", str(db), "--by", "version")) == [["1.0+local", "2", "66.7%"], ["1.0", "local", "1",
                                                                                         "33.3%"]]


def test_since_accepts_dates_times_and_ages():
    now = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
    assert parse_since("2026-11-01") == "2026-11-01T00:00:00.000Z"
    assert parse_since("2026-11-01T12:30+02:00") == "2026-11-01T10:30:00.000Z"
    assert parse_since("2026-11-01T12:30:00Z") == "2026-11-01T12:30:00.000Z"
    assert parse_since("7d", now) == "2026-11-16T12:00:00.000Z"
    assert parse_since("12h", now) == "2026-11-23T00:00:00.000Z"
    assert parse_since("2w", now) == "2026-11-09T12:00:00.000Z"
    with pytest.raises(ReportArgumentError, match="--since expects"):
        parse_since("last week")


def test_pep503_normalisation():
    assert normalise_package("My__Pkg.Name-x") == "my-pkg-name-x"


def test_check_fields_accepts_builtins_without_reading_the_database(tmp_path):
    check_fields(tmp_path / "absent.sqlite", ["version", "python", "path"])
    with pytest.raises(ReportArgumentError, match="unknown field in --by: nope"):
        check_fields(tmp_path / "absent.sqlite", ["nope"])


_values = st.sampled_from(["1.0", "2.0", "1.10", "linux", "a b", "x&y", "", "ünï", "3.12.1", "3.12", "AMD64",
                          "x86_64", "aarch64"])


#: arch is normalised and python_minor derived from python: both engines must do it alike.
_fields = st.sampled_from(["version", "platform", "python", "arch", "python_minor"])


@st.composite
def _rows(draw: st.DrawFn) -> dict[str, object]:
    variables = draw(st.none() | st.dictionaries(_fields, _values, max_size=3))
    query = draw(st.dictionaries(_fields, _values, max_size=3))
    from urllib.parse import urlencode

    return {"path": draw(st.sampled_from(["/a", "/b"])), "variables": variables, "query": urlencode(query)}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(_rows(), max_size=12), by=st.lists(_fields, min_size=1, max_size=2, unique=True))
def test_sql_report_agrees_with_the_pure_grouping(tmp_path_factory, rows, by):
    """The SQL engine and :func:`adoption` (Python, row by row) group any pings the same way."""
    db = make_db(tmp_path_factory.mktemp("h") / "h.sqlite", rows)
    stored = [{**r, "variables": json.dumps(r["variables"]) if r["variables"] is not None else None} for r in rows]
    expected = adoption(stored, by)
    got = report(db, by)
    assert got.total == expected.total
    if expected.total:  # (with no pings at all, adoption() calls it "by path"; both print "no pings yet")
        assert (got.fields, got.by_path) == (expected.fields, expected.by_path)
    assert sorted(got.groups) == sorted(expected.groups)


def test_collect_says_how_to_see_the_pings_as_a_page(tmp_path):
    import signal

    db = tmp_path / "c.sqlite"
    proc = subprocess.Popen([SCRIPT, "collect", "--port", "0", "--db", str(db)], env=child_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        lines = [proc.stdout.readline() for _ in range(3)]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)
    assert lines[0].startswith("collecting on http://127.0.0.1:")
    assert f"scarf-autoping report --db {db}" in lines[2] and "--html report.html" in lines[2]


def _run(*args: str) -> list[list[str]]:
    done = subprocess.run([SCRIPT, "report", *args], env=child_env(), capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0 and done.stderr == "", done
    return [line.split() for line in done.stdout.splitlines()[2:-2]]


def test_the_text_report_merges_architecture_spellings(old_and_new):
    rows = {row[0]: int(row[1]) for row in _run("--db", str(old_and_new), "--by", "arch")}
    assert rows == {"x86_64": 4, "arm64": 3, "x86": 1}  # AMD64 + x86_64 + amd64; aarch64 + arm64 + ARM64


def test_the_text_report_groups_python_by_minor(old_and_new):
    rows = {row[0]: int(row[1]) for row in _run("--db", str(old_and_new), "--by", "python_minor")}
    assert rows == {"3.12": 4, "3.11": 2, "3.13": 2}  # 3.12.1, 3.12.7 (twice) and 3.12.3 in one row
    exact = {row[0]: int(row[1]) for row in _run("--db", str(old_and_new), "--by", "python")}
    assert exact["3.12.7"] == 2 and exact["3.12.1"] == 1  # --by python still means the whole version


def test_the_pure_grouping_agrees(old_and_new):
    from scarf_autoping.tools.report import load_rows

    rows = load_rows(old_and_new)
    assert {k[0]: n for k, n, _ in adoption(rows, ["arch"]).groups} == {"x86_64": 4, "arm64": 3, "x86": 1}
    assert {k[0]: n for k, n, _ in adoption(rows, ["python_minor"]).groups} == {"3.12": 4, "3.11": 2, "3.13": 2}
    assert sorted(adoption(rows, ["arch", "python_minor"]).groups) == sorted(report(old_and_new,
                                                                                   ["arch", "python_minor"]).groups)
