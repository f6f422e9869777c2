"""Property tests: no value, however hostile, changes the shape of the URL.

For arbitrary text in every variable (any unicode, ``/``, ``?``, ``#``, ``%``, ``..``,
spaces, CR/LF, NUL), the expanded URL keeps the template's scheme, host and port, its
number of path segments and its query parameter names; it has no fragment unless the
template has one, and contains no CR, LF or space. Values come back out intact when
percent-decoded, so encoding loses nothing either.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scarf_autoping import expand
from scarf_autoping.facts import BUILTIN_NAMES, variables

#: Characters that would change a URL's shape if they slipped through unencoded.
NASTY = ["/", "?", "#", "%", "&", "=", "+", ";", ",", ":", "@", " ", "\r", "\n", "\x00", "\t", "\\",
         "..", ".", "%2F", "%00", "%zz", "../..", "{", "}", "\u00e9", "\u2028", "\ufeff", "\U0001f600"]

#: Arbitrary text, with the nasty pieces much more likely than chance would make them.
hostile = st.lists(st.one_of(st.sampled_from(NASTY), st.text(max_size=8)), max_size=8).map("".join)

NAMES = list(BUILTIN_NAMES)
HOSTS = ["https://x.gateway.scarf.sh", "http://127.0.0.1:8080", "https://telemetry.example.com:8443/base"]

#: The shapes authors write: one variable per path segment, a query, both, and RFC 6570
#: operators that must also keep every value inside its own segment or parameter.
SHAPES = {
    "path": "/t/" + "/".join(f"{{{name}}}" for name in NAMES),
    "query": "/q{?" + ",".join(NAMES) + "}",
    "mixed": "/m/{package}/{version}/{platform}{?python,arch,distro,ci}",
    "segments": "/s{/package,version,os}/end{?distro}",
    "continuation": "/c?fixed=1{&package,version}",
    "label-and-params": "/l/x{.package}{;version,os}",
}


def _segments(url: str) -> int:
    return len(urlsplit(url).path.split("/"))


def _check_shape(template: str, url: str) -> None:
    """The invariants shared by every property below."""
    # The skeleton: the same template expanded with harmless values.
    skeleton = expand(template, dict.fromkeys(NAMES, "v"))
    got, want = urlsplit(url), urlsplit(skeleton)
    assert "\r" not in url and "\n" not in url and " " not in url, url
    assert "\x00" not in url and "\t" not in url, url
    assert (got.scheme, got.netloc, got.hostname, got.port) == (want.scheme, want.netloc, want.hostname, want.port)
    assert _segments(url) == _segments(skeleton), (url, skeleton)
    assert [k for k, _ in parse_qsl(got.query, keep_blank_values=True)] == \
        [k for k, _ in parse_qsl(want.query, keep_blank_values=True)], (url, skeleton)
    assert got.fragment == want.fragment == ""
    assert url.isascii(), url


@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("shape", list(SHAPES), ids=list(SHAPES))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.fixed_dictionaries({name: hostile for name in NAMES}))
def test_any_values_keep_the_url_shape(host, shape, values):
    template = host + SHAPES[shape]
    # Empty strings included: the library never passes one ("unknown" instead), but they
    # are defined values in RFC 6570 and must not change the shape either.
    _check_shape(template, expand(template, values))


@settings(max_examples=200, deadline=None)
@given(values=st.fixed_dictionaries({name: hostile for name in NAMES}))
def test_path_values_decode_back_to_themselves(values):
    template = "https://x.gateway.scarf.sh" + SHAPES["path"]
    url = expand(template, values)
    segments = urlsplit(url).path.split("/")[2:]
    assert [unquote(s, errors="strict") for s in segments] == [values[name] for name in NAMES]


@settings(max_examples=200, deadline=None)
@given(values=st.fixed_dictionaries({name: hostile for name in NAMES}))
def test_query_values_decode_back_to_themselves(values):
    template = "https://x.gateway.scarf.sh" + SHAPES["query"]
    url = expand(template, values)
    pairs = [(k, unquote(v, errors="strict")) for k, v in (p.split("=", 1) for p in urlsplit(url).query.split("&"))]
    assert pairs == [(name, values[name]) for name in NAMES]


@settings(max_examples=100, deadline=None)
@given(
    package=hostile.filter(str.strip),
    version=st.one_of(st.none(), hostile),
    flavour=hostile,
    shape=st.sampled_from(["path", "query", "mixed"]),
)
def test_what_autoping_expands_keeps_the_shape(package, version, flavour, shape):
    """The values as the worker builds them (cleaned facts, the author's values), end to end."""
    template = "https://x.gateway.scarf.sh" + SHAPES[shape] + "/{flavour}"
    if "?" in template:
        template = "https://x.gateway.scarf.sh/f/{flavour}" + SHAPES[shape]
    values = variables(package, version, False, {"flavour": flavour})
    assert all(values[name] for name in NAMES)  # never an empty segment
    url = expand(template, values)
    skeleton = expand(template, {**dict.fromkeys(NAMES, "v"), "flavour": "v"})
    got, want = urlsplit(url), urlsplit(skeleton)
    assert "\r" not in url and "\n" not in url and " " not in url, url
    assert (got.scheme, got.netloc) == (want.scheme, want.netloc)
    assert _segments(url) == _segments(skeleton)
    assert [k for k, _ in parse_qsl(got.query, keep_blank_values=True)] == \
        [k for k, _ in parse_qsl(want.query, keep_blank_values=True)]
