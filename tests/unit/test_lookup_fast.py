"""What the sender reads without the heavy modules, against those modules themselves.

* :mod:`scarf_autoping.mailheaders` against ``email.message_from_string`` (random texts);
* the distribution look-up by name (``naming._by_distribution_name``) against
  ``importlib.metadata``, on real ``*.dist-info`` and ``*.egg-info`` directories, and the
  cases where it must step aside (ambiguity, zip archives, eggs, a finder of a tool's own);
* the facts read per name (``facts.collect(names)``) against reading them all.
"""

from __future__ import annotations

import email
import sys
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scarf_autoping import facts, naming
from scarf_autoping.mailheaders import fields

if sys.version_info >= (3, 10):
    import importlib.metadata as md
else:  # pragma: no cover - 3.9
    import importlib_metadata as md


# --- email's header fields ----------------------------------------------------------------------

PIECES = ["Name", "Version", ":", ": ", " ", "\t", "\r", "\n", "\r\n", "From ", "\x0c", "\x85", "é", "-", "1.0",
          "a", "X-Y", "\ufeff"]


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=30).map("".join))
def test_fields_are_what_email_reads(text):
    assert fields(text) == [(k, str(v)) for k, v in email.message_from_string(text).items()]


@pytest.mark.parametrize("text", [
    "Metadata-Version: 2.1\nName: acme\nVersion: 1.0\n\nLong description\nVersion: 9\n",
    "From someone\nName: acme\nVersion:\t 2.0 \n",
    " leading continuation\nName: a\n",
    "Name: a\nVersion: 1.0\n  folded\n",
    "\ufeffName: bom\n",
])
def test_metadata_examples(text):
    assert fields(text) == [(k, str(v)) for k, v in email.message_from_string(text).items()]


# --- the look-up by distribution name -----------------------------------------------------------


def dist_info(site: Path, directory: str, text: str, filename: str = "METADATA") -> Path:
    info = site / directory
    info.mkdir(parents=True, exist_ok=True)
    (info / filename).write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return info


@pytest.fixture
def search(monkeypatch, site):
    site.mkdir(parents=True, exist_ok=True)
    monkeypatch.setattr(naming, "search_path", [str(site)])
    return site


def importlib_says(name: str, path: list[str]) -> tuple[str | None, str | None] | None:
    for dist in md.distributions(name=name, path=path):
        return dist.metadata.get("Name"), dist.metadata.get("Version")
    return None


@pytest.mark.parametrize("spelling", ["Acme.Widgets", "acme_widgets", "ACME--widgets", "acme-widgets", "acme.widgets"])
def test_every_spelling_finds_what_importlib_metadata_finds(search, spelling):
    dist_info(search, "acme_widgets-2.0.dist-info", "Metadata-Version: 2.1\nName: Acme.Widgets\nVersion: 2.0\n")
    assert naming._by_distribution_name(spelling) == importlib_says(spelling, [str(search)]) == ("Acme.Widgets", "2.0")


@pytest.mark.parametrize("directory,filename,text", [
    ("legacy-1.0.egg-info", "PKG-INFO", "Metadata-Version: 1.1\nName: legacy\nVersion: 1.0\n"),
    ("Legacy.Name-3.dist-info", "METADATA", "Name: legacy\nVersion: 3\n  .1\n"),
    ("legacy-1.0.dist-info", "METADATA", "Metadata-Version: 2.1\nName: legacy\n"),
    ("legacy-1.0.dist-info", "METADATA", "From me\nName: legacy\nVersion: 7\n"),
    ("legacy-1.0.dist-info", "METADATA", "\ufeffName: legacy\nVersion: 7\n"),
])
def test_odd_metadata_is_read_as_importlib_metadata_reads_it(search, directory, filename, text):
    dist_info(search, directory, text, filename)
    assert naming._by_distribution_name("legacy") == importlib_says("legacy", [str(search)])


def test_the_resolved_name_and_version_are_unchanged(search):
    dist_info(search, "acme_widgets-2.0.dist-info", "Name: Acme.Widgets\nVersion:  2.0 \n")
    found = naming._lookup("acme_widgets")
    assert (found.name, found.version, found.problem) == ("acme-widgets", "2.0", None)


def test_an_ambiguous_name_is_left_to_importlib_metadata(search, tmp_path):
    dist_info(search, "acme-1.0.dist-info", "Name: acme\nVersion: 1.0\n")
    dist_info(search, "acme-2.0.dist-info", "Name: acme\nVersion: 2.0\n")
    assert naming._by_distribution_name("acme") is None
    assert naming._lookup("acme").version == importlib_says("acme", [str(search)])[1]


def test_the_same_name_in_two_directories_is_left_to_importlib_metadata(monkeypatch, tmp_path):
    first, second = tmp_path / "one", tmp_path / "two"
    dist_info(first, "acme-1.0.dist-info", "Name: acme\nVersion: 1.0\n")
    dist_info(second, "acme-2.0.dist-info", "Name: acme\nVersion: 2.0\n")
    monkeypatch.setattr(naming, "search_path", [str(first), str(second)])
    assert naming._by_distribution_name("acme") is None
    assert naming._lookup("acme").version == "1.0"  # importlib.metadata's: the first on the path


def test_a_zip_archive_or_an_egg_on_the_path_is_left_to_importlib_metadata(monkeypatch, tmp_path):
    site = tmp_path / "site"
    dist_info(site, "acme-1.0.dist-info", "Name: acme\nVersion: 1.0\n")
    archive = tmp_path / "app.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("other-1.0.dist-info/METADATA", "Name: other\nVersion: 1.0\n")
    monkeypatch.setattr(naming, "search_path", [str(archive), str(site)])
    assert naming._by_distribution_name("acme") is None
    egg = tmp_path / "thing-1.0.egg"
    egg.mkdir()
    monkeypatch.setattr(naming, "search_path", [str(egg), str(site)])
    assert naming._by_distribution_name("acme") is None
    monkeypatch.setattr(naming, "search_path", [str(tmp_path / "missing"), str(site)])
    assert naming._by_distribution_name("acme") == ("acme", "1.0")


def test_unreadable_metadata_is_left_to_importlib_metadata(search):
    dist_info(search, "acme-1.0.dist-info", b"Name: acme\nVersion: \xff\n")
    assert naming._by_distribution_name("acme") is None
    dist_info(search, "empty-1.0.dist-info", "")
    assert naming._by_distribution_name("empty") is None


def test_a_finder_of_a_tools_own_is_left_to_importlib_metadata(search, monkeypatch):
    dist_info(search, "acme-1.0.dist-info", "Name: acme\nVersion: 1.0\n")

    class Finder:
        @staticmethod
        def find_spec(*args: object) -> None:
            return None

        @staticmethod
        def find_distributions(*args: object) -> list[object]:
            return []

    monkeypatch.setattr(sys, "meta_path", [Finder, *sys.meta_path])
    assert naming._by_distribution_name("acme") is None


def test_names_that_are_not_installed_are_left_to_importlib_metadata(search):
    dist_info(search, "acme-1.0.dist-info", "Name: acme\nVersion: 1.0\n")
    assert naming._by_distribution_name("acm") is None
    assert naming._by_distribution_name("") is None
    assert naming._by_distribution_name("   ") is None


NAMES = st.text(alphabet="aAbB-_.1", min_size=1, max_size=6).filter(lambda s: any(c.isalnum() for c in s))


@settings(max_examples=60, deadline=None)
@given(installed=st.lists(NAMES, min_size=1, max_size=4), query=NAMES)
def test_random_names_and_spellings_agree_with_importlib_metadata(tmp_path_factory, installed, query):
    site = tmp_path_factory.mktemp("site")
    for index, name in enumerate(installed):
        dist_info(site, f"{name}-{index}.dist-info", f"Name: {name}\nVersion: {index}\n")
    saved = naming.search_path
    naming.search_path = [str(site)]
    try:
        fast = naming._by_distribution_name(query)
    finally:
        naming.search_path = saved
    if fast is not None:
        assert fast == importlib_says(query, [str(site)])


# --- facts, each read when needed ----------------------------------------------------------------


def test_each_fact_read_alone_is_the_one_read_with_all_the_others():
    everything = facts.collect()
    assert list(everything) == list(facts.PLATFORM_NAMES)
    for name in facts.PLATFORM_NAMES:
        assert facts.collect([name]) == {name: everything[name]}, name


def test_variables_for_a_template_hold_what_it_names_and_the_same_values():
    full = facts.variables("pkg", "1.0", False, {"flavour": "gpu"}, interface="jupyter")
    some = facts.variables("pkg", "1.0", False, {"flavour": "gpu"}, interface="jupyter",
                           names=["package", "python", "arch", "interface", "flavour"])
    assert some == {k: full[k] for k in ("python", "arch", "interface", "package", "version", "ci", "flavour")}
