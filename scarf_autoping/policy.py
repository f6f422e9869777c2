"""Opt-out, CI and once-per-process-tree decisions, made from an environment mapping.

Every function takes the environment as a plain mapping so it can be tested without
touching ``os.environ``. This is the one place where the project's environment
variables are parsed; the import-time ping, the event logger and the command line all
ask here. Two reads of the per-user state directory are here too, because they are on
the import path (see :mod:`scarf_autoping.state` for the rest): the saved consent
(:func:`saved_consent`, one ``open`` of a file that usually does not exist) and the
package's note (:func:`held`). They use ``os`` and ``sys`` only, imported inside the
functions (both are loaded at start-up), and hash nothing.

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

#: Where the per-user state lives (see :mod:`scarf_autoping.state`); set but empty: no
#: state at all, nothing read or written (behaviour as before the state existed).
STATE_DIR = "SCARF_AUTOPING_STATE_DIR"
#: The name of the state directory under the platform's base directory.
STATE_NAME = "scarf-autoping"
#: The saved consent file (``scarf-autoping disable|enable``), in the state directory.
CONSENT = "consent"
#: The folder of the import path's per-package notes (one tiny file per package and
#: environment; see :func:`held`), in the state directory.
HOLDS = "hold"
#: ``once_per`` values and their periods in seconds (``process``: no period, every process).
ONCE_PER = {"process": 0, "day": 86400, "week": 7 * 86400}
#: The ``until`` value of a hold that never ends by itself (410 Gone; ``scarf-autoping forget``).
GONE = 1 << 62
#: The longest back-off a hold may ask for: a day (a larger value is garbage and ignored).
MAX_BACKOFF = 86400


class _BytesEnviron:
    """``get`` on the interpreter's own ``bytes`` environment, as ``os.environ.get`` reads it
    (the file system encoding, ``surrogateescape``), without its Python-level key encoding."""

    __slots__ = ("_data", "_encoding")

    def __init__(self, data: "dict[bytes, bytes]", encoding: str) -> None:
        self._data = data
        self._encoding = encoding

    def get(self, key: str, default: "str | None" = None) -> "str | None":
        value = self._data.get(key.encode(self._encoding, "surrogateescape"))
        return default if value is None else value.decode(self._encoding, "surrogateescape")


def environ() -> "Mapping[str, str]":
    """``os.environ`` for reading, as cheaply as the platform allows: the import path makes
    about twenty look-ups, and each ``os.environ.get`` costs about 2 µs.

    On POSIX, ``os.environ`` keeps its values in a ``bytes`` dictionary and encodes every
    key in Python first: this view looks in that dictionary directly (the same one, so the
    host's own changes to ``os.environ`` are seen), a quarter of the cost. Elsewhere, or if
    ``os.environ`` is not the interpreter's own ``os._Environ`` with that dictionary (a
    host that replaced it), it is ``os.environ`` itself. Only ``get`` may be used on it.
    """
    import os
    import sys

    data = getattr(os.environ, "_data", None)
    if os.name != "posix" or type(os.environ) is not getattr(os, "_Environ", None) or type(data) is not dict:
        return os.environ  # not the interpreter's own mapping (a host replaced it): ask it
    return _BytesEnviron(data, sys.getfilesystemencoding())  # type: ignore[return-value]  # only get() is used


def is_set(value: "str | None") -> bool:
    """True when an environment value counts as switched on (not empty/0/false/no/off)."""
    return value is not None and value.strip().lower() not in FALSY


def is_false(value: "str | None") -> bool:
    """True when a value is explicitly false-like (``0``/``false``/``no``/``off``), not merely empty."""
    return value is not None and value.strip().lower() in FALSY - {""}


def normalize(package: str, *, strip: bool = True) -> str:
    """PEP 503 normalisation: lower case, runs of ``-``, ``_`` and ``.`` become one ``-``.

    ``strip``: white space at either end is dropped first (``False``: kept, as
    ``importlib.metadata`` keeps it in a directory's name).

    >>> normalize(" Acme.__Widgets ")
    'acme-widgets'
    """
    name = (package.strip() if strip else package).lower().replace("_", "-").replace(".", "-")
    while "--" in name:
        name = name.replace("--", "-")
    return name


def package_variable(package: str) -> str:
    """The per-package opt-out variable: ``my-package`` -> ``MY_PACKAGE_NO_ANALYTICS``.

    Derived from the PEP 503 normalised name, so every spelling of one distribution
    (``My.Package``, ``my_package``) has the same variable: it is upper-cased and every
    run of characters that are not ASCII letters or digits becomes a single ``_``. This is
    decided at import time from the name the author passed; when that is an import name
    of a differently named distribution, the distribution's own variable is honoured too,
    where the name is resolved (see :func:`scarf_autoping.naming.distribution_opt_out`).
    """
    name = normalize(package).upper()
    bare = name.replace("-", "")
    if bare.isascii() and bare.isalnum():  # the usual name: no loop
        return name.replace("-", "_").strip("_") + "_NO_ANALYTICS"
    out = []
    prev_sep = False
    for ch in name:
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
    name = normalize(package)
    if name.isascii() and name.isprintable() and not any(ch in name for ch in " %,"):  # the usual name
        return name
    out = []
    for byte in name.encode("utf-8", "surrogatepass"):
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


def state_dir(env: "Mapping[str, str]") -> "str | None":
    """The per-user state directory for ``env``, or None when there is none (nothing is kept).

    :data:`STATE_DIR` wins (empty: None); else ``%LOCALAPPDATA%\\scarf-autoping`` on
    Windows, ``~/Library/Application Support/scarf-autoping`` on macOS, and
    ``$XDG_STATE_HOME/scarf-autoping`` or ``~/.local/state/scarf-autoping`` elsewhere. Only
    absolute bases count; a missing or relative ``HOME`` means no state (never the
    password database: that import would cost the host). The directory may not exist.
    """
    import os  # loaded at start-up: a look-up in sys.modules, nothing more
    import sys

    override = env.get(STATE_DIR)
    if override is not None:
        override = override.strip()
        return override if override and os.path.isabs(override) else None
    if os.name == "nt":
        base = env.get("LOCALAPPDATA") or ""
        return base.rstrip("\\/") + "\\" + STATE_NAME if os.path.isabs(base) else None
    home = (env.get("HOME") or "").rstrip("/")
    if sys.platform == "darwin":
        return home + "/Library/Application Support/" + STATE_NAME if home.startswith("/") else None
    xdg = (env.get("XDG_STATE_HOME") or "").rstrip("/")
    if xdg.startswith("/"):
        return xdg + "/" + STATE_NAME
    return home + "/.local/state/" + STATE_NAME if home.startswith("/") else None


def read_small(path: str, limit: int = 4096) -> "bytes | None":
    """At most ``limit`` bytes of the file at ``path``; None when it cannot be read. Never raises."""
    import os

    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except (OSError, ValueError):  # ValueError: a NUL in the path
        return None
    try:
        return os.read(fd, limit)
    except OSError:  # a directory, a FIFO with nobody writing, an I/O error
        return None
    finally:
        try:
            os.close(fd)
        except OSError:
            pass


def parse_consent(data: "bytes | None") -> "dict[str, str]":
    """The saved consent file's rules: ``{"*": "off"}`` and ``{"<package>": "on" | "off"}``.

    One rule a line: ``off`` (every package), ``off NAME`` or ``on NAME`` (one package, by
    its :func:`marker_name`). Anything else is ignored, so a file mangled by hand fails
    toward what it still says clearly.
    """
    rules: dict[str, str] = {}
    for line in (data or b"").decode("utf-8", "replace").splitlines():
        words = line.split()
        if words == ["off"]:
            rules["*"] = "off"
        elif len(words) == 2 and words[0] in ("on", "off") and words[1] != "*":
            rules[words[1]] = words[0]
    return rules


def saved_consent(
    env: "Mapping[str, str]", package: "str | None", directory: "str | None | bool" = True
) -> "tuple[str | None, str | None]":
    """``(setting, path)``: the saved ``"on"``/``"off"`` for ``package`` (None: nothing saved).

    A package's own rule wins over the rule for every package. One open of a file that
    usually does not exist: this runs on the host's import path. ``directory``: the state
    directory when the caller has it (None: there is none); by default, ``state_dir(env)``.
    """
    if directory is True:
        directory = state_dir(env)
    if not isinstance(directory, str):
        return None, None
    import os

    path = directory + os.sep + CONSENT
    data = read_small(path)
    if not data:
        return None, path
    rules = parse_consent(data)
    if package is not None:
        own = rules.get(marker_name(package))
        if own is not None:
            return own, path
    return rules.get("*"), path


#: The characters :func:`file_part` keeps as they are.
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")


def file_part(text: str) -> str:
    """``text`` as part of a file name on any platform: ``[a-z0-9._-]`` kept, the rest ``%XX``
    (and a leading ``.``, so no name is hidden or ``..``)."""
    if text and text[0] != "." and _NAME_CHARS.issuperset(text):
        return text
    out: "list[str]" = []
    for byte in text.encode("utf-8", "surrogatepass"):
        ch = chr(byte)
        out.append(ch if ch in "abcdefghijklmnopqrstuvwxyz0123456789-_" or (ch == "." and out) else f"%{byte:02X}")
    return "".join(out)


#: A 63-bit prime drawn at random (seed 20261204): no power of 256 up to the 10,000th is
#: within 256 of a multiple of it, so edits of a few bytes cannot cancel out in
#: :func:`call_print` (a modulus near a power of two, such as 2**61 - 1, would let bytes a
#: fixed distance apart trade places).
PRINT_MODULUS = 0x7312814DF578D8ED


def call_print(*parts: str) -> str:
    """A stable fingerprint of ``parts`` (the same in every process), cheap enough for the import path.

    ``hash()`` changes with each process, and ``hashlib`` (or ``_sha256``, a shared
    library) costs the host several hundred microseconds: this is the text, each part
    prefixed with its length, in UTF-8, as one number modulo :data:`PRINT_MODULUS`, in hex.
    A change of one byte always changes it; one of a few bytes changes it but with
    odds of about 2**-63. It tells the author's own calls apart (a changed template or
    variable name); it is not meant to withstand someone crafting a collision.

    >>> call_print("0.1.0", "https://x.example/t/{package}")
    '668e4fd2134577e'
    >>> call_print("0.1.0", "https://x.example/t/{v}", "v") == call_print("0.1.0", "https://x.example/t/{v}v")
    False
    """
    data = "".join(f"{len(part)}:{part}" for part in parts).encode("utf-8", "surrogatepass") + b"\1"
    return f"{int.from_bytes(data, 'little') % PRINT_MODULUS:x}"


def stamp_key(module_file: "object", version: "str | None", call: str = "") -> "str | None":
    """The import path's key for "this package, installed here, called so": None when there is none.

    Numbers only, nothing to read back: the device and inode of ``sys.prefix`` and the
    inode, modification time and size of the calling package's ``__init__.py`` (an
    upgrade or a reinstall writes a new file), then ``call`` (the :func:`call_print` of
    what the template check depends on, so that a held process may skip that check), then
    ``version`` when the author gives it. Two ``os.stat`` calls; no hashing here
    (``hashlib`` costs the host milliseconds), the background keys things by SHA-256 (see
    :mod:`scarf_autoping.state`).
    """
    if not isinstance(module_file, str) or not module_file:
        return None
    import os
    import sys

    try:
        where = os.stat(sys.prefix)
        mine = os.stat(module_file)
    except (OSError, ValueError, TypeError):  # a module in a zip, a frozen app
        return None
    key = f"{where.st_dev:x}.{where.st_ino:x}.{mine.st_ino:x}.{mine.st_mtime_ns:x}.{mine.st_size:x}"
    if call:
        key += "." + call
    if version is not None:
        key += "." + file_part(version)[:40]
    return key


def hold_path(directory: str, package: str, key: str) -> "str | None":
    """The file of the import path's note for ``package`` under ``key`` (None: too long a name)."""
    import os

    name = file_part(normalize(package)) + "~" + key
    if len(name) > 200:
        return None
    return directory + os.sep + HOLDS + os.sep + name


def stamp_time(seconds: float) -> str:
    """A time in a hold file: whole seconds, 12 digits, so that times compare as text."""
    return f"{max(0, int(seconds)):012d}"


def hold_text(sent: float, until: float, why: str) -> bytes:
    """A hold file's content: ``SENT UNTIL WHY`` (see :func:`parse_hold`)."""
    return f"{stamp_time(sent)} {stamp_time(until)} {why or '-'}\n".encode("ascii")


def _hold_fields(data: "bytes | None") -> "tuple[str, str, str] | None":
    """The three fields of a hold file as text, or None for garbage.

    Never ``int()``: the first conversion of a text to an int costs a process about 30 µs
    (CPython 3.11), and decoding as ASCII would import its codec; the times are compared
    as 12-digit texts instead.
    """
    fields = (data or b"").split()
    if len(fields) != 3 or not fields[2].isascii():
        return None
    sent, until = fields[0], fields[1]
    if len(sent) != 12 or len(until) != 12 or not sent.isdigit() or not until.isdigit():
        return None
    return sent.decode("utf-8"), until.decode("utf-8"), fields[2].decode("utf-8")


def parse_hold(data: "bytes | None", now: float) -> "tuple[float, float, str]":
    """``(sent, until, why)`` from a hold file (``SENT UNTIL WHY``); zeros for garbage.

    ``sent``: when a ping was last delivered under this key (0: never, or a time in the
    future, which a clock set back or a hand edit would give). ``until``: nothing is tried
    before then (a back-off, at most a day ahead, or :data:`GONE` with ``why`` ``gone``).
    ``why``: ``-``, ``gone``, or ``backoff:HASH`` (HASH names the endpoint's back-off).
    """
    fields = _hold_fields(data)
    if fields is None:
        return 0.0, 0.0, ""
    sent, until, why = int(fields[0]), int(fields[1]), fields[2]
    if not 0 <= sent <= now + 60:
        sent = 0
    if why == "gone":
        until = GONE
    elif not 0 <= until <= now + MAX_BACKOFF + 60:
        until = 0
    return float(sent), float(until), why


def held(
    directory: "str | None", package: str, key: "str | None", once_per: str, retrying: bool
) -> "str | None":
    """Why this process must not ping ``package`` (None: it may), from one small file.

    The import path's look at the state (see :mod:`scarf_autoping.state`, which writes it):
    a ping delivered from this environment within the ``once_per`` period, a back-off after
    failures to reach the endpoint (not for pings that retry on their own schedule), or an
    endpoint that answered 410 Gone. One ``open`` of a file that usually does not exist.
    ``directory``: the state directory (:func:`state_dir`), None for none.
    """
    if key is None or directory is None:
        return None
    path = hold_path(directory, package, key)
    fields = _hold_fields(read_small(path, 256) if path is not None else None)
    if fields is None:
        return None
    sent, until, why = fields
    if why == "gone":
        return "the endpoint answered 410 Gone: never pinged again from here ('scarf-autoping forget' undoes it)"
    import time

    now = time.time()
    if not retrying and stamp_time(now) < until <= stamp_time(now + MAX_BACKOFF + 60):
        return "backed off after failures to reach the endpoint (offline?)"
    period = ONCE_PER.get(once_per, 0)
    if period and stamp_time(now - period) < sent <= stamp_time(now + 60):
        return f"pinged within the last {'day' if period == 86400 else 'week'} from this environment " \
               f"(once_per={once_per!r})"
    return None


class Decision:
    """Whether a ping may be sent, and if not, why (a short text naming the variable).

    ``rule``: what decided: ``"variable"`` (an opt-out variable), ``"saved"`` (the saved
    setting of ``scarf-autoping disable|enable``), ``"parent"`` (a parent process pinged),
    ``"ci"`` or ``"default"``. ``state``: the state directory (:func:`state_dir`) when the
    decision got as far as the saved setting, else None.
    """

    __slots__ = ("ci", "enabled", "reason", "rule", "state")

    def __init__(self, enabled: bool, reason: "str | None", ci: bool, rule: str = "default",
                 state: "str | None" = None) -> None:
        self.enabled = enabled
        self.reason = reason
        self.ci = ci
        self.rule = rule
        self.state = state

    def __repr__(self) -> str:
        return f"Decision(enabled={self.enabled!r}, reason={self.reason!r}, ci={self.ci!r})"


def decide(env: "Mapping[str, str]", package: "str | None", skip_ci: bool = True) -> "Decision":
    """Decide whether ``package`` may ping in the environment ``env``.

    Order: an explicit opt-out wins (its variable is named in the reason), then the saved
    setting (``scarf-autoping disable [--package NAME]``: one look at a file that usually
    does not exist), then a parent process that already pinged this package, then CI
    detection when ``skip_ci`` is true. A saved ``enable`` only undoes a ``disable``: it
    wins over neither the variables nor CI detection.
    """
    ci_name = ci_reason(env)
    ci = ci_name is not None
    name = opt_out_reason(env, package)
    if name is not None:
        return Decision(False, f"opted out by {name}", ci, "variable")
    directory = state_dir(env)
    saved, path = saved_consent(env, package, directory)
    if saved == "off":
        return Decision(False, f"turned off by 'scarf-autoping disable' (saved in {path})", ci, "saved", directory)
    if package is not None and already_pinged(env, package):
        return Decision(False, f"already pinged by a parent process ({PINGED})", ci, "parent", directory)
    if skip_ci and ci:
        return Decision(False, f"CI detected ({ci_name})", ci, "ci", directory)
    return Decision(True, None, ci, "saved" if saved == "on" else "default", directory)
