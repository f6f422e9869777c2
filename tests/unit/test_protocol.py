"""The protocol between the host and its detached sender: the settings going in
(``scarf_autoping.spawn``'s encoder: JSON, ASCII, lone surrogates and floats kept), the
once-per-tree marker, and the results coming back (``scarf_autoping.protocol``'s line,
written by the sender and read by the engine)."""

from __future__ import annotations

import doctest
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scarf_autoping import policy, protocol, spawn
from scarf_autoping.protocol import Report

# --- pure pieces ----------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@given(json_values)
def test_settings_encoder_is_json_and_ascii(value):
    encoded = spawn.to_json(value)
    assert encoded.isascii()
    assert json.loads(encoded) == value


def test_settings_encoder_keeps_lone_surrogates_and_floats():
    assert json.loads(spawn.to_json("\udcc3 path")) == "\udcc3 path"
    assert json.loads(spawn.to_json({"timeout": 2.5, "delay": 0.0})) == {"timeout": 2.5, "delay": 0.0}


@pytest.mark.parametrize("name", ["pkg-é", "Café_Tools", "a,b", "100%", "naïve.pkg", "日本"])
def test_marker_is_ascii_and_round_trips(name):
    marker = policy.marker_name(name)
    assert marker.isascii() and "," not in marker
    value = policy.mark_pinged("other", name)
    assert value.isascii()
    assert policy.already_pinged({policy.PINGED: value}, name)
    assert not policy.already_pinged({policy.PINGED: value}, name + "x")


# --- the result pipe (scarf_autoping.protocol) ------------------------------------------


def test_the_result_lines_docstring_examples_hold():
    assert doctest.testmod(protocol).failed == 0


@given(
    index=st.integers(min_value=0, max_value=10**6),
    status=st.sampled_from(protocol.STATUSES),
    reason=st.one_of(st.none(), st.text(min_size=1, max_size=100)),
    url=st.one_of(st.none(), st.text(min_size=1, max_size=200)),
    retry=st.one_of(st.none(), st.floats(min_value=0, max_value=86400)),
)
def test_what_the_sender_writes_the_host_reads(index, status, reason, url, retry):
    line = protocol.encode(index, status, reason, url, retry)
    assert len(line) < 4096 and line.endswith(b"\n") and line.count(b"\n") == 1  # one atomic write
    (report,), rest = protocol.decode(line)
    assert rest == b""
    assert (report.index, report.status, report.retry) == (index, status, retry)
    clean = lambda text: text.replace("\t", " ").replace("\n", " ") or None  # noqa: E731
    assert report.reason == (clean(reason) if reason else None)
    assert report.url == (clean(url) if url else None)


def test_long_fields_are_cut_and_the_line_keeps_its_five_fields():
    line = protocol.encode(3, "failed", "r" * 10_000, "u" * 10_000, 1.5)
    assert len(line) < 4096
    (report,), _ = protocol.decode(line)
    assert report == Report(3, "failed", "r" * 400, "u" * 3000, 1.5)


def test_a_line_cut_in_two_reads_once_it_is_whole():
    line = protocol.encode(0, "sent", "HTTP 204", "http://x/t", None)
    reports, rest = protocol.decode(line[:7])
    assert (reports, rest) == ([], line[:7])
    reports, rest = protocol.decode(rest + line[7:])
    assert reports == [Report(0, "sent", "HTTP 204", "http://x/t", None)] and rest == b""


def test_what_is_not_a_report_is_skipped_and_unknown_statuses_fail():
    buffer = b"garbage\n\tsent\t\t\t\nx\tsent\t\t\t\n0\tsent\tonly four\t\n1\texploded\tr\t\t\n2\tsent\t\t\tsoon\n"
    reports, rest = protocol.decode(buffer)
    assert reports == [Report(1, "failed", "r", None, None), Report(2, "sent", None, None, None)]
    assert rest == b""
