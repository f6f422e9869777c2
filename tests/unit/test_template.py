"""Tests for scarf_autoping.template (RFC 6570 URI Template expansion).

Most cases come from the uritemplate-test suite (Apache-2.0, vendored in
``tests/unit/uritemplate-test``); each (file, group, template) is one test.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scarf_autoping import template as template_module
from scarf_autoping.template import TemplateError, expand, variable_names

SUITE_DIR = Path(__file__).parent / "uritemplate-test"
SUITE_FILES = (
    "spec-examples.json",
    "spec-examples-by-section.json",
    "negative-tests.json",
)


def _suite_cases() -> list:
    """One pytest.param per test case: (template, variables, expected)."""
    cases = []
    for filename in SUITE_FILES:
        groups = json.loads((SUITE_DIR / filename).read_text(encoding="utf-8"))
        for group_name, group in groups.items():
            for template, expected in group["testcases"]:
                case_id = f"{Path(filename).stem}|{group_name}|{template}"
                cases.append(
                    pytest.param(template, group["variables"], expected, id=case_id)
                )
    return cases


SUITE_CASES = _suite_cases()


def test_suite_is_loaded() -> None:
    # Guard against silently running an empty or partial parametrization.
    assert {p.id.split("|")[0] for p in SUITE_CASES} == {
        Path(name).stem for name in SUITE_FILES
    }


@pytest.mark.parametrize(("template", "variables", "expected"), SUITE_CASES)
def test_uritemplate_suite(template: str, variables: dict, expected: object) -> None:
    if expected is False:
        with pytest.raises(TemplateError):
            expand(template, variables)
    elif isinstance(expected, list):
        assert expand(template, variables) in expected
    else:
        assert expand(template, variables) == expected


# --------------------------------------------------------------------------
# variable_names
# --------------------------------------------------------------------------


def test_variable_names_order_and_dedup() -> None:
    template = "https://x.test/{a}{/b,c*}{?d:3,a}{&e}{#b}{+f}x{.g}{;h}"
    assert variable_names(template) == ["a", "b", "c", "d", "e", "f", "g", "h"]


def test_variable_names_no_expressions() -> None:
    assert variable_names("https://example.com/") == []
    assert variable_names("") == []


def test_variable_names_dotted_and_pct_encoded() -> None:
    assert variable_names("{a.b,c%20d}") == ["a.b", "c%20d"]


@pytest.mark.parametrize(
    "template",
    ["{a", "a}", "{}", "{a b}", "{a,}", "{!a}", "{a:0}", "{a:2*}", "{a{b}}",
     "a b{c}", "{-a}"],
)
def test_variable_names_malformed_raises(template: str) -> None:
    with pytest.raises(TemplateError):
        variable_names(template)


# --------------------------------------------------------------------------
# Error messages and literals
# --------------------------------------------------------------------------


def test_template_error_is_value_error() -> None:
    assert issubclass(TemplateError, ValueError)
    with pytest.raises(ValueError):
        expand("{unclosed", {})


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("https://x/{abc", "unclosed expression at offset 10"),
        ("a}b", "unmatched '}' at offset 1"),
        ("{a b}", "invalid variable name 'a b'"),
        ("{a:0}", "prefix modifier :n must be 1..9999"),
        ("{a:10000}", "prefix modifier :n must be 1..9999"),
        ("{~a}", "unknown operator '~'"),
        ("{=a}", "reserved operator '='"),
        ("{}", "empty expression"),
        ("50%", "'%' not followed by two hex digits"),
    ],
)
def test_error_messages(template: str, message: str) -> None:
    with pytest.raises(TemplateError) as info:
        expand(template, {"a": "x"})
    assert message in str(info.value)
    assert repr(template) in str(info.value)


@pytest.mark.parametrize(
    "literal", [" ", '"', "<", ">", "\\", "^", "`", "|", "\n", "\r", "\t", "\x00",
                "\x7f", "\x85", "\ufffe", "\ud800", "\U000e0001"],
)
def test_invalid_literal_characters(literal: str) -> None:
    with pytest.raises(TemplateError, match="not allowed in a template literal"):
        expand(f"/a{literal}b", {})


def test_literals_copied_and_non_ascii_pct_encoded() -> None:
    assert expand("/a'b%2F!$&()*+,;=:@[]~", {}) == "/a'b%2F!$&()*+,;=:@[]~"
    assert expand("/caf\u00e9/{x}", {"x": "1"}) == "/caf%C3%A9/1"
    assert expand("/\ue000\U0010fffd", {}) == "/%EE%80%80%F4%8F%BF%BD"


def test_prefix_on_list_is_error() -> None:
    with pytest.raises(TemplateError, match="prefix modifier"):
        expand("{list:2}", {"list": ["ab", "cd"]})


def test_prefix_counts_unicode_characters() -> None:
    assert expand("{v:2}", {"v": "\u00e9t\u00e9"}) == "%C3%A9t"
    assert expand("{v:1}", {"v": "\U0001F600x"}) == "%F0%9F%98%80"


# --------------------------------------------------------------------------
# Percent-encoding of values
# --------------------------------------------------------------------------

NASTY = "a/b?c#d%e..f g\rh\ni\x00j&k=l;m,n+o"


def test_simple_operator_encodes_everything_reserved() -> None:
    expected = "a%2Fb%3Fc%23d%25e..f%20g%0Dh%0Ai%00j%26k%3Dl%3Bm%2Cn%2Bo"
    result = expand("{v}", {"v": NASTY})
    assert result == expected
    for leak in "/?#& \r\n\x00":
        assert leak not in result


def test_path_operator_does_not_leak_separators() -> None:
    result = expand("/base{/v}", {"v": NASTY})
    assert result == "/base/a%2Fb%3Fc%23d%25e..f%20g%0Dh%0Ai%00j%26k%3Dl%3Bm%2Cn%2Bo"
    assert result.startswith("/base/")
    assert "/" not in result[len("/base/"):]
    assert "?" not in result and "#" not in result


def test_dot_dot_segment_stays_literal_but_contained() -> None:
    # ".." is unreserved, but "/" inside the value is still encoded.
    assert expand("{/v}", {"v": "../etc"}) == "/..%2Fetc"


def test_non_ascii_values_utf8_encoded() -> None:
    assert expand("{v}", {"v": "\u00fcber \u4e2d"}) == "%C3%BCber%20%E4%B8%AD"
    assert expand("{/v}", {"v": "\u00fc"}) == "/%C3%BC"
    assert expand("{+v}", {"v": "\u00fc/x"}) == "%C3%BC/x"


def test_reserved_expansion_keeps_triplets_but_encodes_lone_percent() -> None:
    assert expand("{+v}", {"v": "a%2Fb%zz/%"}) == "a%2Fb%25zz/%25"
    assert expand("{#v}", {"v": "x y?z"}) == "#x%20y?z"
    # The simple operator re-encodes "%" even when it starts a triplet.
    assert expand("{v}", {"v": "a%2Fb"}) == "a%252Fb"


def test_query_operator_encodes_values_and_keys() -> None:
    result = expand("{?q,r*}", {"q": "a&b=c", "r": {"k k": "v&v"}})
    assert result == "?q=a%26b%3Dc&k%20k=v%26v"


def test_lone_surrogate_value_raises_template_error() -> None:
    with pytest.raises(TemplateError):
        expand("{v}", {"v": "\ud800"})


# --------------------------------------------------------------------------
# Value types and undefined variables
# --------------------------------------------------------------------------


def test_int_and_float_values() -> None:
    assert expand("{a}{/b}{?c,d}", {"a": 7, "b": 0, "c": 1.5, "d": -2}) == (
        "7/0?c=1.5&d=-2"
    )
    assert expand("{?big}", {"big": 1e20}) == "?big=1e%2B20"


def test_list_and_tuple_and_dict_values() -> None:
    assert expand("{/p*}", {"p": ("a", 1, 2.5)}) == "/a/1/2.5"
    assert expand("{?m*}", {"m": {"b": 2, "a": 1}}) == "?b=2&a=1"


def test_undefined_variables_expand_to_nothing() -> None:
    assert expand("/x{/unknown}{?nope,none}{&empty_list}{#empty_map}", {
        "none": None, "empty_list": [], "empty_map": {},
    }) == "/x"
    assert expand("{a}", {}) == ""


def test_none_members_are_skipped() -> None:
    assert expand("{?l,m*}", {"l": [None, "x"], "m": {"a": None, "b": "y"}}) == (
        "?l=x&b=y"
    )
    assert expand("{?l}", {"l": [None]}) == ""


def test_empty_string_is_defined() -> None:
    assert expand("{?a}{;b}{/c}{.d}", {"a": "", "b": "", "c": "", "d": ""}) == (
        "?a=;b/."
    )


def test_unsupported_value_type_raises_type_error() -> None:
    with pytest.raises(TypeError):
        expand("{v}", {"v": b"bytes"})
    with pytest.raises(TypeError):
        expand("{v}", {"v": [["nested"]]})


def test_parse_is_cached(monkeypatch) -> None:
    calls = []
    real = template_module._parse_uncached
    monkeypatch.setattr(template_module, "_parse_uncached", lambda t: calls.append(t) or real(t))
    template_module._PARSED.clear()
    for _ in range(3):
        expand("{/cached}", {"cached": "x"})
    assert calls == ["{/cached}"]


def test_parse_cache_is_bounded() -> None:
    template_module._PARSED.clear()
    for i in range(200):
        variable_names(f"/{i}{{x}}")
    assert len(template_module._PARSED) <= template_module._PARSED_MAX
