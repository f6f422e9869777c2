"""The protocol between the host and its detached sender (``scarf_autoping.spawn``): the
settings encoder (JSON, ASCII, lone surrogates and floats kept) and the once-per-tree marker."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scarf_autoping import policy, spawn

# --- pure pieces ----------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@given(json_values)
def test_settings_encoder_is_json_and_ascii(value):
    encoded = spawn.encode(value)
    assert encoded.isascii()
    assert json.loads(encoded) == value


def test_settings_encoder_keeps_lone_surrogates_and_floats():
    assert json.loads(spawn.encode("\udcc3 path")) == "\udcc3 path"
    assert json.loads(spawn.encode({"timeout": 2.5, "delay": 0.0})) == {"timeout": 2.5, "delay": 0.0}


@pytest.mark.parametrize("name", ["pkg-é", "Café_Tools", "a,b", "100%", "naïve.pkg", "日本"])
def test_marker_is_ascii_and_round_trips(name):
    marker = policy.marker_name(name)
    assert marker.isascii() and "," not in marker
    value = policy.mark_pinged("other", name)
    assert value.isascii()
    assert policy.already_pinged({policy.PINGED: value}, name)
    assert not policy.already_pinged({policy.PINGED: value}, name + "x")
