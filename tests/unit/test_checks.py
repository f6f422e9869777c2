"""The template's half of the argument checks (scarf_autoping.checks), and the split with the face."""

from __future__ import annotations

import doctest

import pytest

import scarf_autoping
from scarf_autoping import checks
from scarf_autoping.template import TemplateError


def test_doctests():
    assert doctest.testmod(checks, optionflags=doctest.ELLIPSIS).failed == 0


@pytest.mark.parametrize(("template", "names", "error"), [
    ("https://x.example/{package}/{colour}", [], TemplateError),
    ("https://x.example/{package}/{version}", ["version"], ValueError),
    ("https://x.example/{+v}", ["v"], TemplateError),
    ("ftp://x.example/{v}", ["v"], TemplateError),
    ("https://x.example/{v", ["v"], TemplateError),
])
def test_check_template_refuses_what_the_library_cannot_use(template, names, error):
    with pytest.raises(error):
        checks.check_template(template, names)


def test_check_arguments_is_both_halves_unless_told():
    check = scarf_autoping.check_arguments
    assert check("p", "https://x.example/{package}/{v}", None, {"v": 1}, 3.0, 1.0) == {"v": "1"}
    with pytest.raises(ValueError, match="timeout"):
        check("p", "https://x.example/{package}", None, None, 0, 1.0, template_checks=False)
    with pytest.raises(TemplateError, match="unknown variable"):
        check("p", "https://x.example/{w}", None, {"v": "1"}, 3.0, 1.0)
    assert check("p", "https://x.example/{w}", None, {"v": "1"}, 3.0, 1.0, template_checks=False) == {"v": "1"}


def test_the_face_names_stay_importable_from_the_package():
    from scarf_autoping import ScarfEventLogger, expand
    from scarf_autoping import TemplateError as Face

    assert Face is TemplateError
    assert expand("/{a}", {"a": "b c"}) == "/b%20c" and ScarfEventLogger.__name__ == "ScarfEventLogger"
    with pytest.raises(AttributeError):
        scarf_autoping.no_such_name  # noqa: B018
    assert {"TemplateError", "expand", "check_arguments", "ScarfEventLogger", "autoping"} <= set(dir(scarf_autoping))
