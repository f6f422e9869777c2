"""What this user's machine remembers between processes, without any identifier (issue 18).

A small per-user directory (see :func:`scarf_autoping.policy.state_dir`: the XDG state
directory on Linux and BSD, ``~/Library/Application Support`` on macOS, ``%LOCALAPPDATA%``
on Windows; ``SCARF_AUTOPING_STATE_DIR`` overrides it, and set to an empty value means no
state at all). It holds only this, a few kilobytes::

    consent                 saved consent: "off", "off NAME", "on NAME" (scarf-autoping disable|enable)
    hold/NAME~KEY           the import path's note per package and installation: "SENT UNTIL WHY"
    env/HASH                per environment (sys.prefix) and package: "SENT VERSION" of the last delivery
    env/HASH.claim          held by the one process sending that ping right now (O_CREAT|O_EXCL)
    origin/HASH             per endpoint (scheme, host, port): "FAILURES UNTIL" of the back-off
    gone/HASH               per template that answered 410 Gone: "TIME PACKAGE TEMPLATE"
    sent.log                the last pings sent: "TIME<TAB>PACKAGE<TAB>OUTCOME<TAB>URL", at most RECORD_LINES

``HASH`` is a SHA-256 (hex, cut to 32 digits) of what it keys, so the file names say
nothing about paths or user names; ``KEY`` holds only numbers (inodes, a time, a size, a
fingerprint of the template: see :func:`scarf_autoping.policy.stamp_key`) and the
``version=`` the author passed. Nothing here is ever sent anywhere.

Every function here is called in the background (the worker thread, the detached sender,
the command line), never on the import path: the import path reads only ``consent`` and
one ``hold`` file, through :mod:`scarf_autoping.policy`. Every function here **never
raises, never prints, never blocks on anything but the file system**: an unwritable, full,
read-only or garbled directory makes it behave as if there were no state (a ping per
process, as before).

The contract with the delivery engine, in the order of a ping's life:

1. :func:`suppressed` (before starting a sender): a reason not to send (410, back-off).
2. :func:`claim` (in the pipeline, once the version is known, before the request): a
   :class:`Ticket`; ``ticket.skip`` is a reason not to send (once_per, another process is
   sending it right now); it also sets ``values["first_run"]``.
3. :func:`after_attempt` (after each request): the stamp, the back-off, 410, the record;
   releases the claim.

Back-off (:func:`backoff_seconds`): after ``n`` consecutive failures to reach an endpoint
(no answer, a timeout, a 5xx or a 429), nothing is tried from this environment for
``60 * 2 ** (n - 1)`` seconds (1 min, 2, 4, ... capped at a day), or longer when the
server's ``Retry-After`` asks for it (capped at a day too). One answer that is not such a
failure resets it. Pings with a ``retry_interval`` keep their own schedule.
"""

import os

from . import policy

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Iterable, Mapping

#: The first back-off, in seconds, after one failure; it doubles with each failure after.
BACKOFF_FIRST = 60
#: The longest back-off, in seconds (a day).
BACKOFF_CAP = policy.MAX_BACKOFF
#: A claim older than this (seconds, beyond the ping's own timeout) was left by a process
#: that died while sending: it is taken over.
CLAIM_STALE = 60.0
#: The record keeps this many pings, and is trimmed once it is larger than RECORD_BYTES.
RECORD_LINES = 100
RECORD_BYTES = 24 * 1024
#: Each folder keeps at most this many files; the oldest (by modification time) go first.
MAX_FILES = 200
#: The most read from any state file (a larger file is garbage, or not ours).
READ_LIMIT = 64 * 1024

#: The endings of files that are not state but on their way: claims, temporary and stale files.
_PASSING = (".claim", ".tmp", ".stale")

RECORD = "sent.log"
ENVS = "env"
ORIGINS = "origin"
GONE_DIR = "gone"
#: Everything ``forget`` deletes (all but the saved consent).
FORGETTABLE = (policy.HOLDS, ENVS, ORIGINS, GONE_DIR, RECORD)


# --- pure logic ----------------------------------------------------------------------


def backoff_seconds(failures: int, retry_after: "float | None" = None) -> int:
    """Seconds to hold off after ``failures`` consecutive failures (0 for none), capped at a day."""
    if failures <= 0:
        return 0
    wait = BACKOFF_FIRST * 2 ** min(failures - 1, 20)
    if retry_after:
        wait = max(wait, int(retry_after))
    return int(min(wait, BACKOFF_CAP))


def unreachable(http_status: "int | None") -> bool:
    """True for an outcome that counts toward the back-off: no answer, a 5xx or a 429."""
    return http_status is None or http_status >= 500 or http_status == 429


def origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url`` (or of a template: its host is written out), lower case."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url.lower()
    end = next((i for i, ch in enumerate(rest) if ch in "/?#{"), len(rest))
    return f"{scheme.lower()}://{rest[:end].rpartition('@')[2].lower()}"


def without_password(url: str) -> str:
    """``url`` with any ``user:password@`` removed: the record never keeps credentials."""
    from .template import split_userinfo

    parts = split_userinfo(url)
    return url if parts is None else parts[0] + parts[2]


def digest(*parts: str) -> str:
    """A one-way key: SHA-256 of ``parts`` (NUL-separated), 32 hex digits.

    CPython's own ``_sha2`` (3.12+) or ``_sha256`` module where there is one (loading
    ``hashlib`` also loads OpenSSL's bindings: milliseconds more), else ``hashlib``.
    """
    data = "\0".join(parts).encode("utf-8", "surrogatepass")
    try:
        from _sha2 import sha256  # type: ignore[import-not-found]
    except ImportError:
        try:
            from _sha256 import sha256  # type: ignore[import-not-found]  # no stubs either
        except ImportError:
            from hashlib import sha256
    return str(sha256(data).hexdigest())[:32]


def parse_ints(data: "bytes | None", count: int) -> "list[int] | None":
    """The first ``count`` whitespace-separated non-negative integers of ``data``, or None."""
    try:
        words = (data or b"").decode("ascii").split()
        numbers = [int(w) for w in words[:count]]
    except (UnicodeDecodeError, ValueError):
        return None
    if len(numbers) != count or any(n < 0 for n in numbers):
        return None
    return numbers


def parse_record(data: "bytes | None") -> "list[tuple[float, str, str, str]]":
    """The record's entries ``(time, package, outcome, url)``, oldest first; garbage lines skipped."""
    entries = []
    for line in (data or b"").decode("utf-8", "replace").splitlines():
        fields = line.split("\t")
        if len(fields) != 4:
            continue
        try:
            when = float(fields[0])
        except ValueError:
            continue
        entries.append((when, fields[1], fields[2], fields[3]))
    return entries


def record_line(when: float, package: str, outcome: str, url: str) -> bytes:
    """One line of the record: tabs and line breaks in the fields become spaces; each field is cut."""
    fields = [f"{when:.0f}", package[:100], outcome[:120], without_password(url)[:400]]
    return ("\t".join(f.replace("\t", " ").replace("\n", " ").replace("\r", " ") for f in fields) + "\n").encode(
        "utf-8", "backslashreplace")


def uses_first_run(template: str) -> bool:
    """Whether the template asks for ``{first_run}``."""
    from .template import variable_names

    try:
        return "first_run" in variable_names(template)
    except Exception:  # noqa: BLE001 - a template the sender cannot read is not ours to judge here
        return False


# --- files ---------------------------------------------------------------------------


def _join(*parts: str) -> str:
    return os.sep.join(parts)


def read(path: str, limit: int = READ_LIMIT) -> "bytes | None":
    """The file's bytes (at most ``limit``), None when it cannot be read. Never raises."""
    return policy.read_small(path, limit)


def write(path: str, data: bytes) -> bool:
    """Replace the file at ``path`` with ``data`` atomically (a temporary file, then ``os.replace``).

    Creates the folders (``0o700``). False when it could not be written; never raises.
    """
    folder = os.path.dirname(path)
    temp = f"{path}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.replace(temp, path)
        return True
    except (OSError, ValueError):
        try:
            os.unlink(temp)
        except (OSError, ValueError):
            pass
        return False


def remove(path: str) -> None:
    try:
        os.unlink(path)
    except (OSError, ValueError):
        pass


def _prune(folder: str, keep: int = MAX_FILES) -> None:
    """Remove the oldest files of ``folder`` beyond ``keep`` (claims and temporary files too)."""
    try:
        names = os.listdir(folder)
    except (OSError, ValueError):
        return
    if len(names) <= keep:
        return
    dated = []
    for name in names:
        try:
            dated.append((os.stat(_join(folder, name)).st_mtime, name))
        except (OSError, ValueError):
            continue
    dated.sort()
    for _, name in dated[: max(0, len(dated) - keep * 3 // 4)]:
        remove(_join(folder, name))


def _now() -> float:
    import time

    return time.time()


# --- the pipeline's calls --------------------------------------------------------------


def _directory(spec: "Mapping[str, object]") -> "str | None":
    """The state directory a ping's spec was made with (None: no state, or not an ``autoping`` ping)."""
    directory = spec.get("state")
    return directory if isinstance(directory, str) and directory and "once_per" in spec else None


def _retrying(spec: "Mapping[str, object]") -> bool:
    return bool(spec.get("retry_interval"))


def _hold(directory: str, spec: "Mapping[str, object]", sent: float, until: float, why: str) -> None:
    """Write the import path's note for this package and installation (when it has a key)."""
    key = spec.get("stamp")
    if not isinstance(key, str):
        return
    path = policy.hold_path(directory, str(spec.get("package")), key)
    if path is None:
        return
    old_sent, _, _ = policy.parse_hold(read(path, 256), _now())
    if write(path, policy.hold_text(sent or old_sent, 0 if why == "gone" else until, why)):
        _prune(os.path.dirname(path))


def _unhold(directory: str, why: str) -> None:
    """Lift the import path's notes that say ``why`` (a back-off of an endpoint now reached)."""
    folder = _join(directory, policy.HOLDS)
    try:
        names = os.listdir(folder)[: MAX_FILES * 2]
    except (OSError, ValueError):
        return
    now = _now()
    for name in names:
        if name.endswith(_PASSING):
            continue
        path = _join(folder, name)
        sent, until, old = policy.parse_hold(read(path, 256), now)
        if old == why:
            write(path, policy.hold_text(sent, 0, "-"))


def suppressed(spec: "Mapping[str, object]") -> "str | None":
    """Why this ping must not be tried now (None: go ahead): its template answered 410 Gone,
    or its endpoint is in a back-off (not for a ping with a ``retry_interval``).

    For the worker thread before it starts a sender, and for :func:`claim`. Also writes
    the import path's note, so the next process of this installation stops at its import.
    """
    try:
        directory = _directory(spec)
        if directory is None:
            return None
        template = str(spec.get("template"))
        gone = read(_join(directory, GONE_DIR, digest(template)), 4096)
        if gone is not None and parse_ints(gone, 1) is not None:
            _hold(directory, spec, 0, policy.GONE, "gone")
            return "the endpoint answered 410 Gone: never pinged again from here ('scarf-autoping forget' undoes it)"
        if _retrying(spec):
            return None
        numbers = parse_ints(read(_join(directory, ORIGINS, digest(origin(template))), 256), 2)
        now = _now()
        if numbers is not None and now < numbers[1] <= now + BACKOFF_CAP + 60:
            _hold(directory, spec, 0, numbers[1], "backoff:" + digest(origin(template)))
            return (f"backed off for {numbers[1] - now:.0f} s after {numbers[0]} failure(s) to reach the endpoint "
                    "(offline?)")
        return None
    except Exception:  # noqa: BLE001 - the state never stops a ping by raising
        return None


class Ticket:
    """What :func:`claim` decided for one attempt: ``skip`` (a reason not to send, or None),
    ``first_run`` (``"true"``, ``"false"`` or ``"unknown"``), and the claim it holds."""

    __slots__ = ("claim", "env_path", "first_run", "keep", "skip", "version")

    def __init__(self, skip: "str | None" = None, first_run: str = "unknown") -> None:
        self.skip = skip
        self.first_run = first_run
        self.claim: "str | None" = None
        self.env_path: "str | None" = None
        self.keep = False  # write the stamp after a delivery (once_per, or {first_run})
        self.version = ""

    def __repr__(self) -> str:
        return f"<Ticket skip={self.skip!r} first_run={self.first_run!r} claim={self.claim is not None}>"


#: What :func:`_take` found.
TAKEN, HELD, FAILED = "taken", "held", "failed"


def _take(path: str, stale: float) -> str:
    """Create the claim file at ``path`` exclusively: :data:`TAKEN`, :data:`HELD` (another
    process holds it) or :data:`FAILED` (the state cannot be written: go on without it).
    One older than ``stale`` seconds is taken over.

    The claim is written whole before it appears (a temporary file, then ``os.link``, which
    fails when the name exists), so a claim that does not read ``PID NEWLINE`` is garbage
    and is taken over at once, as is one left by a process that died sending.
    """
    mine = f"{os.getpid()}\n".encode("ascii")
    for _ in range(3):
        try:
            temp = f"{path}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
            if not write(temp, mine):
                return FAILED
            try:
                os.link(temp, path)
                return TAKEN
            except FileExistsError:
                pass
            except OSError:  # no hard links here: an exclusive create instead
                try:
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                    try:
                        os.write(fd, mine)
                    finally:
                        os.close(fd)
                    return TAKEN
                except FileExistsError:
                    pass
            finally:
                remove(temp)
            try:
                age = _now() - os.stat(path).st_mtime
            except OSError:
                continue  # released meanwhile: try again
            held = read(path, 64) or b""
            if held[-1:] == b"\n" and held[:-1].isdigit() and -stale <= age <= stale:
                return HELD
            # Left by a process that died sending, garbage, or a clock set back: take it over.
            # Renamed first, so of two processes that both saw it only one removes it.
            aside = f"{path}.{os.getpid()}.{os.urandom(4).hex()}.stale"
            try:
                os.rename(path, aside)
            except FileNotFoundError:
                continue
            except OSError:
                return FAILED
            remove(aside)
        except (OSError, ValueError):
            return FAILED
    return FAILED


def claim(spec: "Mapping[str, object]", values: "dict[str, str]") -> "Ticket":
    """Decide, just before the request, whether this process sends the ping; set ``{first_run}``.

    ``values``: the template's values (the version is known by now); ``values["first_run"]``
    is set to the ticket's. With ``once_per`` ``"day"`` or ``"week"``, or a template that
    uses ``{first_run}``, the process takes this environment's claim on the package (one
    process at a time sends; with ``once_per`` the others send nothing, with only
    ``{first_run}`` they send ``false``), then reads the last delivery: delivered within the
    period with the same version, nothing is sent. Never raises; without a state directory
    the ticket says go, ``first_run`` ``"unknown"``.
    """
    ticket = Ticket()
    try:
        directory = _directory(spec)
        if directory is None:
            return ticket
        why = suppressed(spec)
        if why is not None:
            ticket.skip = why
            return ticket
        once_per = str(spec.get("once_per"))
        period = policy.ONCE_PER.get(once_per, 0)
        first = uses_first_run(str(spec.get("template")))
        if not (period or first):
            return ticket
        import sys

        prefix = spec.get("prefix") if isinstance(spec.get("prefix"), str) else sys.prefix
        version = values.get("version", "unknown")
        ticket.version = version
        env_path = _join(directory, ENVS, digest(str(prefix), policy.normalize(str(spec.get("package")))))
        stale = CLAIM_STALE + float(spec.get("timeout") or 3.0)  # type: ignore[arg-type]
        taken = _take(env_path + ".claim", stale)
        if taken == FAILED:
            return ticket  # a state that cannot be written: a ping per process, as without one
        if taken == HELD:
            if period:
                ticket.skip = f"another process is sending it right now (once_per={once_per!r})"
            else:
                ticket.first_run = "false"  # the process that holds the claim reports the first run
            return ticket
        ticket.claim = env_path + ".claim"
        ticket.env_path = env_path
        ticket.keep = True
        data = read(env_path, 1024)
        last = None
        sent = 0.0
        if data:
            words = data.decode("utf-8", "replace").split()
            if len(words) == 2 and words[0].isdigit():
                sent, last = float(words[0]), words[1]
        now = _now()
        if period and last == _version_word(version) and 0 < sent <= now + 60 and now - sent < period:
            release(ticket)
            _hold(directory, spec, sent, 0, "-")
            ticket.skip = f"pinged {(now - sent) / 3600:.1f} h ago from this environment (once_per={once_per!r})"
            return ticket
        ticket.first_run = "false" if last == _version_word(version) else "true"
        return ticket
    except Exception:  # noqa: BLE001 - the state never stops a ping by raising
        release(ticket)
        return ticket
    finally:
        values["first_run"] = ticket.first_run


def _version_word(version: str) -> str:
    """The version as one word of the env file (PEP 440 versions are already)."""
    return policy.file_part(version)[:100] or "unknown"


def release(ticket: "Ticket") -> None:
    """Give up the ticket's claim (if it holds one). Never raises."""
    path, ticket.claim = ticket.claim, None
    if path is not None:
        remove(path)


def after_attempt(
    spec: "Mapping[str, object]",
    ticket: "Ticket | None",
    http_status: "int | None",
    url: "str | None",
    *,
    delivered: bool,
    outcome: str,
    retry_after: "float | None" = None,
) -> None:
    """Remember one attempt: the record, the stamp, the back-off, 410 Gone; release the claim.

    ``http_status``: the answer's status code, None when none came (refused, DNS, TLS, a
    timeout). ``outcome``: the short text shown by ``scarf-autoping status``. Never raises.
    """
    try:
        directory = _directory(spec)
        if directory is None:
            return
        now = _now()
        package = str(spec.get("package"))
        template = str(spec.get("template"))
        _append_record(directory, now, package, ("sent" if delivered else "failed") + f" ({outcome})",
                       url or template)
        origin_path = _join(directory, ORIGINS, digest(origin(url or template)))
        if delivered or not unreachable(http_status):
            if read(origin_path, 256) is not None:
                remove(origin_path)  # reached: the back-off starts again from nothing
                _unhold(directory, "backoff:" + os.path.basename(origin_path))
        if delivered:
            if ticket is not None and ticket.keep and ticket.env_path is not None:
                if write(ticket.env_path, f"{int(now)} {_version_word(ticket.version)}\n".encode("ascii")):
                    _prune(os.path.dirname(ticket.env_path))
            if policy.ONCE_PER.get(str(spec.get("once_per")), 0):
                _hold(directory, spec, now, 0, "-")
        elif http_status == 410:
            write(_join(directory, GONE_DIR, digest(template)),
                  f"{int(now)} {policy.file_part(package)[:100]} {template}\n".encode("utf-8", "backslashreplace"))
            _prune(_join(directory, GONE_DIR))
            _hold(directory, spec, 0, policy.GONE, "gone")
        elif unreachable(http_status):
            numbers = parse_ints(read(origin_path, 256), 2) or [0, 0]
            failures = numbers[0] + 1
            until = int(now) + backoff_seconds(failures, retry_after)
            write(origin_path, f"{failures} {until} {origin(url or template)}\n".encode("utf-8", "backslashreplace"))
            _prune(os.path.dirname(origin_path))
            if not _retrying(spec):
                _hold(directory, spec, 0, until, "backoff:" + os.path.basename(origin_path))
    except Exception:  # noqa: BLE001 - remembering is best effort
        pass
    finally:
        if ticket is not None:
            release(ticket)


def _append_record(directory: str, now: float, package: str, outcome: str, url: str) -> None:
    """Append one line to the record (one ``write``: lines of concurrent processes do not mix)."""
    path = _join(directory, RECORD)
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_BINARY", 0), 0o600)
        try:
            os.write(fd, record_line(now, package, outcome, url))
            size = os.fstat(fd).st_size
        finally:
            os.close(fd)
    except (OSError, ValueError):
        return
    if size > RECORD_BYTES:
        _trim_record(path, size)


def _trim_record(path: str, size: int) -> None:
    """Keep the record's last RECORD_LINES entries, within RECORD_BYTES (a huge file: emptied)."""
    data = read(path, READ_LIMIT) if size <= READ_LIMIT else b""
    lines = [record_line(*entry) for entry in parse_record(data)[-RECORD_LINES:]]
    while sum(map(len, lines)) > RECORD_BYTES * 3 // 4:
        del lines[0]
    write(path, b"".join(lines))


# --- what the command line shows and deletes --------------------------------------------


def record(env: "Mapping[str, str]") -> "list[tuple[float, str, str, str]]":
    """The last pings sent from this user's environments, oldest first (at most RECORD_LINES)."""
    directory = policy.state_dir(env)
    if directory is None:
        return []
    return parse_record(read(_join(directory, RECORD), READ_LIMIT))[-RECORD_LINES:]


def backoffs(env: "Mapping[str, str]") -> "list[tuple[str, int, int]]":
    """Endpoints in a back-off now: ``(origin, failures, until)``."""
    directory = policy.state_dir(env)
    out = []
    now = _now()
    for data in _files(directory, ORIGINS):
        numbers = parse_ints(data, 2)
        words = data.decode("utf-8", "replace").split()
        if numbers is not None and len(words) == 3 and numbers[1] > now:
            out.append((words[2], numbers[0], numbers[1]))
    return sorted(out)


def gone(env: "Mapping[str, str]") -> "list[tuple[int, str, str]]":
    """Templates that answered 410 Gone: ``(time, package, template)``."""
    directory = policy.state_dir(env)
    out = []
    for data in _files(directory, GONE_DIR):
        words = data.decode("utf-8", "replace").split(None, 2)
        if len(words) == 3 and words[0].isdigit():
            out.append((int(words[0]), words[1], words[2].strip()))
    return sorted(out)


def _files(directory: "str | None", folder: str) -> "Iterable[bytes]":
    if directory is None:
        return
    try:
        names = sorted(os.listdir(_join(directory, folder)))
    except (OSError, ValueError):
        return
    for name in names[:MAX_FILES * 2]:
        if name.endswith(_PASSING):
            continue
        data = read(_join(directory, folder, name), 4096)
        if data:
            yield data


def forget(env: "Mapping[str, str]") -> "tuple[str | None, int]":
    """Delete every state file but the saved consent; ``(directory, files removed)``."""
    directory = policy.state_dir(env)
    if directory is None:
        return None, 0
    removed = 0
    for name in FORGETTABLE:
        path = _join(directory, name)
        if os.path.isdir(path) and not os.path.islink(path):
            try:
                names = os.listdir(path)
            except OSError:
                names = []
            for entry in names:
                try:
                    os.unlink(_join(path, entry))
                    removed += 1
                except OSError:
                    pass
            try:
                os.rmdir(path)
            except OSError:
                pass
        elif os.path.lexists(path):
            try:
                os.unlink(path)
                removed += 1
            except OSError:
                pass
    return directory, removed


def set_consent(env: "Mapping[str, str]", enabled: bool, package: "str | None") -> "tuple[str | None, bool]":
    """Save ``enable``/``disable`` (for every package, or one); ``(consent file, written)``.

    ``disable``: off for every package (and no package stays on); ``disable --package``:
    off for that one; ``enable``: undoes ``disable`` (packages turned off one by one stay
    off); ``enable --package``: on for that one, even while every other is off (until the
    next ``disable`` or ``enable`` for every package).
    """
    directory = policy.state_dir(env)
    if directory is None:
        return None, False
    path = _join(directory, policy.CONSENT)
    rules = policy.parse_consent(read(path, 65536))
    if package is None:
        if enabled:
            rules = {name: rule for name, rule in rules.items() if rule == "off" and name != "*"}
        else:
            rules = {name: rule for name, rule in rules.items() if rule == "off"}
            rules["*"] = "off"
    else:
        name = policy.marker_name(package)
        if enabled:
            rules.pop(name, None)
            if rules.get("*") == "off":
                rules[name] = "on"
        else:
            rules[name] = "off"
    lines = ["off"] if rules.get("*") == "off" else []
    lines += [f"{rule} {name}" for name, rule in sorted(rules.items()) if name != "*"]
    if not lines:
        if os.path.lexists(path):
            remove(path)
            return path, not os.path.lexists(path)
        return path, True
    return path, write(path, ("\n".join(lines) + "\n").encode("utf-8"))
