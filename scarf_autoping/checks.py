"""The author's template, checked at the call: the half of the argument checks that parses.

:func:`scarf_autoping.check_arguments` checks every argument's type and range on the host's
import path without importing anything. What is left needs the RFC 6570 parser and the
built-in names: the URL's scheme and host, every variable known, no variable clashing with
a built-in, no ``{+var}`` or ``{#var}``. It depends on the template, the author's variable
*names* and this library's version only, which is why a process that finds a fresh stamp
may skip it (see :func:`scarf_autoping.policy.call_print`): a process that pinged under
that stamp checked exactly these.

>>> check_template("https://x.example/t/{package}/{version}", {})
>>> check_template("https://x.example/t/{package}/{colour}", {})
Traceback (most recent call last):
scarf_autoping.template.TemplateError: autoping: unknown variable {colour} in template ...
"""

from .facts import BUILTIN_NAMES
from .template import TemplateError, check_url, reserved_names, variable_names

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Iterable


def check_template(template: str, names: "Iterable[str]") -> None:
    """Raise :class:`TemplateError` (or ``ValueError``) for a template the library cannot use.

    ``names``: the author's own variable names (``variables=``).
    """
    known = set(BUILTIN_NAMES)
    for name in names:
        if name in known:
            raise ValueError(f"autoping: variables[{name!r}] clashes with the built-in variable {{{name}}}")
    known.update(names)
    check_url(template)
    for name in variable_names(template):
        if name not in known:
            raise TemplateError(
                f"autoping: unknown variable {{{name}}} in template {template!r}; "
                f"known names: {', '.join(sorted(known))}"
            )
    reserved = reserved_names(template)
    if reserved:
        raise TemplateError(
            f"autoping: {{+{reserved[0]}}} and {{#{reserved[0]}}} pass '/', '?' and '@' through unencoded, "
            f"so a value could add path segments or change the host; use {{{reserved[0]}}} "
            f"or {{/{reserved[0]}}} in template {template!r}"
        )
