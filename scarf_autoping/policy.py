"""Opt-out, CI and once-per-process-tree decisions, made from an environment mapping.

Pure logic: every function takes the environment as a plain mapping so it can be tested
without touching ``os.environ``. This is the one place where the project's environment
variables are parsed; the import-time ping, the event logger and the command line all
ask here.

On the host's import path: no ``from __future__ import annotations`` (importing
``__future__`` costs the host about 0.1 ms), so annotations that need it are strings.
"""

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - typing only, kept off the import path
    from collections.abc import Mapping

#: Values that do *not* count as "set". Anything else (``1``, ``true``, ``yes``,
#: ``enabled``, a typo) does, so a mistake fails toward privacy.
FALSY = frozenset({"", "0", "false", "no", "off"})

#: Variables that turn every ping off, for every package.
GLOBAL_OPT_OUTS = ("DO_NOT_TRACK", "SCARF_NO_ANALYTICS")

#: Scarf's npm library reads this one the other way round: ``SCARF_ANALYTICS=false`` opts out.
SCARF_ANALYTICS = "SCARF_ANALYTICS"

#: Variables that CI services set.
CI_VARIABLES = (
    "CI",
    "GITHUB_ACTIONS",
    "GITLAB_CI",
    "CIRCLECI",
    "TRAVIS",
    "JENKINS_URL",
    "BUILDKITE",
    "TF_BUILD",
    "CODEBUILD_BUILD_ID",
    "TEAMCITY_VERSION",
    "BITBUCKET_BUILD_NUMBER",
)

#: Set in ``os.environ`` by a process that scheduled a ping, so that child interpreters
#: inheriting the environment (multiprocessing spawn/forkserver, subprocess) do not ping
#: the same package again. A comma-separated list of normalised package names.
PINGED = "SCARF_AUTOPING_PINGED"

#: ``SCARF_AUTOPING_DEBUG=1`` prints one line per ping to stderr.
DEBUG = "SCARF_AUTOPING_DEBUG"


def is_set(value: "str | None") -> bool:
    """True when an environment value counts as switched on (not empty/0/false/no/off)."""
    return value is not None and value.strip().lower() not in FALSY


def is_false(value: "str | None") -> bool:
    """True when a value is explicitly false-like (``0``/``false``/``no``/``off``), not merely empty."""
    return value is not None and value.strip().lower() in FALSY - {""}


def normalize(package: str) -> str:
    """PEP 503 normalisation: lower case, runs of ``-``, ``_`` and ``.`` become one ``-``."""
    out = []
    prev_sep = False
    for ch in package.strip().lower():
        if ch in "-_.":
            if not prev_sep:
                out.append("-")
            prev_sep = True
        else:
            out.append(ch)
            prev_sep = False
    return "".join(out)


def package_variable(package: str) -> str:
    """The per-package opt-out variable: ``my-package`` -> ``MY_PACKAGE_NO_ANALYTICS``.

    Derived from the PEP 503 normalised name, so every spelling of one distribution
    (``My.Package``, ``my_package``) has the same variable: it is upper-cased and every
    run of characters that are not ASCII letters or digits becomes a single ``_``. This is
    decided at import time from the name the author passed; when that is an import name
    of a differently named distribution, the distribution's own variable is honoured too,
    where the name is resolved (see :func:`scarf_autoping.naming.distribution_opt_out`).
    """
    out = []
    prev_sep = False
    for ch in normalize(package).upper():
        if ch.isascii() and ch.isalnum():
            out.append(ch)
            prev_sep = False
        elif not prev_sep:
            out.append("_")
            prev_sep = True
    return "".join(out).strip("_") + "_NO_ANALYTICS"


def opt_out_reason(env: "Mapping[str, str]", package: "str | None" = None) -> "str | None":
    """The name of the variable that opts this package out, or None when pings are allowed."""
    for name in GLOBAL_OPT_OUTS:
        if is_set(env.get(name)):
            return name
    if is_false(env.get(SCARF_ANALYTICS)):
        return SCARF_ANALYTICS
    if package is not None:
        name = package_variable(package)
        if is_set(env.get(name)):
            return name
    return None


def ci_reason(env: "Mapping[str, str]") -> "str | None":
    """The name of the first CI variable that is set, or None outside CI."""
    for name in CI_VARIABLES:
        if is_set(env.get(name)):
            return name
    return None


def marker_name(package: str) -> str:
    """The package as it is listed in :data:`PINGED`: normalised, then ASCII only.

    Every byte of the UTF-8 form outside printable ASCII (and ``%``, ``,``) becomes
    ``%XX``, so the value can be written to the environment under any locale (a C locale
    without UTF-8 mode cannot encode ``é``).
    """
    out = []
    for byte in normalize(package).encode("utf-8", "surrogatepass"):
        out.append(chr(byte) if 0x20 < byte < 0x7F and byte not in (0x25, 0x2C) else f"%{byte:02X}")
    return "".join(out)


def already_pinged(env: "Mapping[str, str]", package: str) -> bool:
    """True when a parent process recorded in :data:`PINGED` that it pinged this package."""
    listed = env.get(PINGED)
    if not listed:
        return False
    return marker_name(package) in listed.split(",")


def mark_pinged(env_value: "str | None", package: str) -> str:
    """The new value of :data:`PINGED` after adding ``package`` to ``env_value``."""
    names = [n for n in (env_value or "").split(",") if n]
    key = marker_name(package)
    if key not in names:
        names.append(key)
    return ",".join(names)


def debug_enabled(env: "Mapping[str, str]") -> bool:
    """True when the user asked for one line per ping on stderr."""
    return is_set(env.get(DEBUG))


class Decision:
    """Whether a ping may be sent, and if not, why (a short text naming the variable)."""

    __slots__ = ("ci", "enabled", "reason")

    def __init__(self, enabled: bool, reason: "str | None", ci: bool) -> None:
        self.enabled = enabled
        self.reason = reason
        self.ci = ci

    def __repr__(self) -> str:
        return f"Decision(enabled={self.enabled!r}, reason={self.reason!r}, ci={self.ci!r})"


def decide(env: "Mapping[str, str]", package: "str | None", skip_ci: bool = True) -> "Decision":
    """Decide whether ``package`` may ping in the environment ``env``.

    Order: an explicit opt-out wins (its variable is named in the reason), then a parent
    process that already pinged this package, then CI detection when ``skip_ci`` is true.
    """
    ci_name = ci_reason(env)
    ci = ci_name is not None
    name = opt_out_reason(env, package)
    if name is not None:
        return Decision(False, f"opted out by {name}", ci)
    if package is not None and already_pinged(env, package):
        return Decision(False, f"already pinged by a parent process ({PINGED})", ci)
    if skip_ci and ci:
        return Decision(False, f"CI detected ({ci_name})", ci)
    return Decision(True, None, ci)
