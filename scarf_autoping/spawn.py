"""Start the detached sender: a separate Python process that delivers pings for us.

The host hands pings over when it must not do the work itself: at interpreter exit (so
a short-lived program exits at once), at a fork during the deferral (so no thread of
ours is alive when ``fork()`` returns), in uWSGI (which forks from C), and in a
long-lived process after the deferral (so ``requests`` is never imported in the host).

How the process is started, and why:

* ``os.posix_spawn`` (``vfork`` + ``exec`` in glibc): the host is suspended only until
  the ``exec``, Python's fork hooks do not run and CPython's multi-threaded fork warning
  does not apply. Where there is no ``posix_spawn`` (Windows), :func:`spawn` says so and
  the caller sends from the host instead.
* A new session, stdin/stdout/stderr on the null device, every inheritable descriptor
  closed: nothing of the host's terminal, pipes or sockets is held, so a caller reading
  the host's output gets EOF when the host exits. The only descriptor passed on is, when
  asked for, the write end of our own result pipe, as descriptor 3.
* ``python -I -S -c BOOTSTRAP``: isolated from ``PYTHON*`` variables, no ``site``, and a
  command line that is the same for every host. Every local user can read it, so
  nothing of the host's (paths, template, event bodies, passwords) may be on it: the
  settings (one ASCII JSON text, data and never code, encoded here by hand so the host
  need not import ``json``) are written into a pipe before the spawn, and the sender
  reads them from its stdin. Settings that do not fit in the pipe at once mean no
  sender (the caller falls back). :data:`BOOTSTRAP` imports our package from the path
  entry it was imported from here, a directory or a zip archive (``python app.pyz``,
  shiv, pex), and the sender *appends* the host's path entries but its working
  directory and its script's directory: the standard library comes first, as in a fresh
  interpreter, and a ``random.py`` of the user's is never imported. The host's whole
  path is used only to find distribution metadata. The host's bytecode settings
  (``-B``, ``PYTHONDONTWRITEBYTECODE``, ``-X pycache_prefix``, which ``-I`` would drop)
  are applied before anything is imported.
* The host's environment is passed on as it is: proxies and CA bundles are honoured.
* ``orphan=True`` (every sender but the exit hand-over's, which is the host's direct
  child for the moment the host has left to live, and one started by a host that is
  PID 1): the sender is
  never the host's child. A child would be the host's to meet: its exit sends the host
  ``SIGCHLD``, a host that calls ``os.wait()`` (or a fork that stops our thread) can reap
  it before we do, and uWSGI's master logs every child it reaps. It is started through
  ``/bin/sh -c '"$@" &'`` and the shell, gone within a millisecond or two, is reaped at
  once, so the sender is re-parented to init (or the nearest subreaper). Without a shell
  (a distroless image) the sender forks itself as the very first thing, before it reads
  its settings or imports anything, and its first process exits: the host waits only
  for the interpreter's start. A shell that exits non-zero started nothing (it could
  not fork): the sender is then started without it; a first process that exits
  non-zero started nothing either: :func:`spawn` says so and the caller falls back. The
  end of an orphan is seen as the end of its result pipe. The shell (or first process)
  is still the host's child for that moment, so a host that handles ``SIGCHLD`` itself
  (a Python handler that may call ``os.wait()``) is never given one: the worker does not
  call :func:`spawn` then, and sends from the host instead (``host.reaps_children``).
* A host that is PID 1 is init for its namespace: an orphan would be re-parented to the
  host itself, so there the sender is its direct child, reaped by our thread.

On the host's import path: no ``from __future__ import annotations``.
"""

import os
import sys

try:
    # gevent wraps os.posix_spawn to watch the child from its hub (which raises outside
    # gevent's own loop, after the process has started), eventlet patches os.read and
    # os.waitpid: the posix module itself is never patched, so we call it.
    import posix as _posix
except ImportError:  # pragma: no cover - Windows: no posix_spawn, no sender
    # Typed as posix: os stands in, and interpreter() finds no posix_spawn on it (no sender).
    _posix = os  # type: ignore[misc]

#: The descriptor the sender writes its results to, when a result pipe is passed.
RESULT_FD = 3
#: The descriptor the shell gets the settings on: the stdin of its background job is the
#: null device, so the job's stdin is taken from here (``<&4``).
SHELL_SETTINGS_FD = 4
#: The most bytes of settings: they are all written into the pipe before the sender
#: starts, without blocking, and a pipe holds 64 KiB on Linux (4 KiB under pressure).
MAX_SETTINGS = 60_000
#: The shell that makes an orphan of the sender (POSIX: a background job of a shell that exits).
SHELL = "/bin/sh"
#: The first byte of the settings when the sender must fork at once (no shell orphans it).
FORK = b"F"

#: The sender's program, the same on every command line: ``python -I -S -c BOOTSTRAP``.
#: On its stdin: one byte (:data:`FORK` or ``-``); ``B`` or ``-`` (write no bytecode), the
#: hex of the file system encoded ``sys.pycache_prefix``, a newline; the settings' JSON
#: (see :mod:`scarf_autoping.sender`), a newline. It forks before anything else when told
#: to (and exits 1, nothing started, if it cannot), reads up to the second newline (never
#: waiting for an end of file: a fork of the host may hold the pipe's write end), puts the
#: null device back on descriptor 0, applies the bytecode settings, and only then imports
#: ``json``, our package (from the path entry ``home`` only, whatever else the path holds)
#: and the sender.
BOOTSTRAP = """\
import posix,sys
if posix.read(0,1)==b'F':
 try:
  if posix.fork():posix._exit(0)
 except OSError:posix._exit(1)
try:
 d=b''
 while d.count(b'\\n')<2:
  c=posix.read(0,65536)
  if not c:posix._exit(0)
  d+=c
 posix.close(0)
 posix.open('/dev/null',posix.O_RDONLY)
 h,j=d.split(b'\\n')[:2]
 sys.dont_write_bytecode=h[:1]==b'B'
 if h[1:]:sys.pycache_prefix=bytes.fromhex(h[1:].decode()).decode(sys.getfilesystemencoding(),sys.getfilesystemencodeerrors())
 import json
 s=json.loads(j)
 from importlib.machinery import PathFinder
 class F:
  @staticmethod
  def find_spec(n,p=None,t=None):
   if n=='scarf_autoping':return PathFinder.find_spec(n,[s['home']])
 sys.meta_path.insert(0,F)
 try:from scarf_autoping import sender
 finally:sys.meta_path.remove(F)
 sender.main(s)
except BaseException:pass
posix._exit(0)
"""

_interpreter: "list[str | None]" = []


def interpreter() -> "str | None":
    """A Python interpreter to run the sender with, or None where there is none we trust.

    ``sys.executable`` when it is a Python interpreter; inside an embedding program
    (``sys.executable`` is uWSGI, Apache, ...) the interpreter next to ``sys.exec_prefix``
    of the same version; None in a frozen application, where our package was not
    imported from a path entry (a directory or a zip archive) the sender can import it
    from, or where nothing fits.
    """
    if _interpreter:
        return _interpreter[0]
    found = None
    try:
        if not getattr(sys, "frozen", False) and hasattr(_posix, "posix_spawn") and _importable(home()):
            exe = sys.executable or ""
            name = os.path.basename(exe).lower()
            if exe and name.startswith(("python", "pypy")) and os.access(exe, os.X_OK):
                found = exe
            else:
                version = f"{sys.version_info[0]}.{sys.version_info[1]}"
                for prefix in dict.fromkeys((sys.exec_prefix, sys.base_exec_prefix)):
                    for base in (f"python{version}", "python3"):
                        candidate = os.path.join(prefix, "bin", base)
                        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                            found = candidate
                            break
                    if found:
                        break
    except Exception:  # noqa: BLE001 - an odd platform: no sender, send from the host
        found = None
    _interpreter.append(found)
    return found


def to_json(value: object) -> str:
    """JSON for ``None``, booleans, numbers, strings, lists and string-keyed dicts, ASCII only.

    ``json.dumps(value, ensure_ascii=True)`` does the same; this keeps ``json`` out of a
    host that is exiting. Lone surrogates (undecodable bytes in a path) survive the
    round trip, as with ``json``.
    """
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return repr(float(value)) if isinstance(value, float) else str(int(value))
    if isinstance(value, str):
        out = ['"']
        for ch in value:
            code = ord(ch)
            if ch == '"' or ch == "\\":
                out.append("\\" + ch)
            elif 0x20 <= code < 0x7F:
                out.append(ch)
            elif code > 0xFFFF:
                code -= 0x10000
                out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
            else:
                out.append(f"\\u{code:04x}")
        out.append('"')
        return "".join(out)
    if isinstance(value, dict):
        return "{" + ",".join(to_json(str(k)) + ":" + to_json(v) for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(to_json(v) for v in value) + "]"
    return to_json(str(value))


def home() -> str:
    """The path entry our package was imported from: a directory, or a zip archive."""
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _importable(entry: str) -> bool:
    """Whether a path entry is a directory, a zip archive or a directory in one."""
    probe = entry
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            return False
        probe = parent
    return probe == entry or os.path.isfile(probe)


def _getcwd() -> str:
    try:
        return os.getcwd()
    except OSError:  # removed while we run
        return ""


def search_path() -> "list[str]":
    """The host's module search path as absolute entries, in its order, working directory
    included, and :func:`home` (last, unless it is on it): where the sender finds
    distribution metadata, as the host would."""
    entries: list[str] = []
    cwd = None
    for entry in sys.path:
        if not isinstance(entry, str):
            continue
        if not entry or not os.path.isabs(entry):
            if cwd is None:
                cwd = _getcwd()
            if not cwd:
                continue
            entry = os.path.normpath(os.path.join(cwd, entry))
        if entry not in entries:
            entries.append(entry)
    if home() not in entries:
        entries.append(home())
    return entries


def _identity(path: str) -> "tuple[int, int] | None":
    try:
        found = os.stat(path)
    except (OSError, ValueError):
        return None
    return found.st_dev, found.st_ino


def own_entries(entries: "list[str]") -> "list[int]":
    """The indices in ``entries`` (see :func:`search_path`) of the host's own directories,
    which the sender does not import from: what the interpreter itself put first on the
    path (the script's directory, or the working directory for ``-c``, ``-m`` and the
    REPL) and any other spelling of the working directory (``''``, ``'.'``).

    The host's own files there (a ``random.py``, a script named ``requests.py``) are the
    host's: a fresh interpreter would not import them, and neither does the sender. A
    directory that is also on the path on purpose (``PYTHONPATH=/app`` run from ``/app``)
    and :func:`home` are kept.
    """
    cwd = _getcwd()
    here = _identity(cwd) if cwd else None
    main = getattr(sys.modules.get("__main__"), "__file__", None)
    script = _identity(os.path.dirname(os.path.abspath(main))) if isinstance(main, str) else None
    # -I and -P (3.11+) put nothing first: the first entry is then the standard library's.
    first = not (sys.flags.isolated or getattr(sys.flags, "safe_path", False))
    implicit: "set[tuple[int, int] | None]" = set()
    explicit: "set[tuple[int, int] | None]" = set()
    known: "dict[str, tuple[int, int] | None]" = {}
    for index, entry in enumerate(sys.path):
        if not isinstance(entry, str):
            continue
        if not os.path.isabs(entry):
            identity = _identity(os.path.join(cwd, entry)) if cwd else None
            (implicit if identity == here else explicit).add(identity)
        else:
            identity = known[entry] = _identity(entry)
            (implicit if index == 0 and first and identity in (here, script) else explicit).add(identity)
    own = implicit - explicit - {None}
    if not own:
        return []
    mine = home()
    return [index for index, entry in enumerate(entries)
            if entry != mine and (known[entry] if entry in known else _identity(entry)) in own]


def _inheritable_fds(keep: "int | None") -> "list[int]":
    """The host's inheritable descriptors above 2 (the ones ``exec`` would pass on)."""
    fds: list[int] = []
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        try:
            names = os.listdir("/dev/fd")
        except OSError:
            names = [str(fd) for fd in range(3, 256)]
    for name in names:
        try:
            fd = int(name)
            if fd > 2 and fd != keep and os.get_inheritable(fd):
                fds.append(fd)
        except (ValueError, OSError):
            pass
    return fds


def orphans() -> bool:
    """Whether ``spawn(..., orphan=True)`` leaves no child of ours behind (not under PID 1)."""
    try:
        return os.getpid() != 1
    except Exception:  # noqa: BLE001
        return False


def spawn(
    jobs: "list[dict[str, object]]",
    *,
    delay: float = 0.0,
    result_fd: "int | None" = None,
    orphan: bool = False,
    loop: bool = False,
) -> "int | None":
    """Start one detached sender for ``jobs``; its pid, or None when it could not be started.

    ``delay``: seconds the sender sleeps before it imports anything (keeps it out of the
    way of a host that is starting up). ``result_fd``: the write end of a pipe the sender
    reports each outcome to (see :mod:`scarf_autoping.sender`). ``orphan``: the sender is
    not left as the host's child (unless :func:`orphans` says it cannot be); the pid
    returned is then that of the process that started it, already reaped.
    ``loop``: the sender retries jobs that have a ``retry_interval`` for as long as this
    process lives (no thread of ours will). Never raises.
    """
    try:
        exe = interpreter()
        if exe is None:
            return None
        orphan = orphan and orphans()
        entries = search_path()
        settings = to_json({
            "jobs": jobs,
            "home": home(),
            "path": entries,
            "skip": own_entries(entries),
            "delay": max(0.0, float(delay)),
            "report": result_fd is not None,
            "loop": loop,
            "host": os.getpid(),
        })
        argv = [exe, "-I", "-S"]
        if sys.flags.utf8_mode:
            argv += ["-X", "utf8"]
        argv += ["-c", BOOTSTRAP]
        shell = orphan and os.access(SHELL, os.X_OK)
    except BaseException:  # noqa: BLE001 - no process, no problem: the caller falls back
        return None
    if shell:
        pid = _start(argv, settings, result_fd, orphan=True, shell=True)
        if pid is not None:
            return pid
        # The shell could not start it (it could not fork): the sender forks itself instead.
    return _start(argv, settings, result_fd, orphan=orphan, shell=False)


def _start(argv: "list[str]", settings: str, result_fd: "int | None", *, orphan: bool, shell: bool) -> "int | None":
    """One attempt of :func:`spawn`: through the shell, or the sender directly (forking
    itself first when it must be an orphan)."""
    settings_fd = None
    try:
        message = _message(settings, fork=orphan and not shell)
        if len(message) > MAX_SETTINGS:
            return None
        path = argv[0]
        target = 0
        if shell:
            # A background job's stdin is the null device: the job takes it from descriptor 4.
            target = SHELL_SETTINGS_FD
            path, argv = SHELL, [SHELL, "-c", f'"$@" <&{target} {target}<&- &', "sh", *argv]
        settings_fd = _settings_pipe(message)
        if settings_fd is None:
            return None
        actions: "list[tuple[int | str, ...]]" = []
        if result_fd is not None:
            actions.append((os.POSIX_SPAWN_DUP2, result_fd, RESULT_FD))
        actions.append((os.POSIX_SPAWN_DUP2, settings_fd, target))
        if target:
            actions.append((os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0))
        actions += [
            (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ]
        keep = RESULT_FD if result_fd is not None else None
        actions += [(os.POSIX_SPAWN_CLOSE, fd) for fd in _inheritable_fds(keep) if fd != target]
    except BaseException:  # noqa: BLE001 - no process, no problem: the caller falls back
        _close(settings_fd)
        return None
    # Nothing may run between a successful spawn and the return: a caller told "no
    # process" sends the ping itself, and it must never be sent twice.
    try:
        pid = _posix.posix_spawn(path, argv, os.environ, file_actions=actions, setsid=True, setsigmask=())
    except BaseException:  # noqa: BLE001 - the spawn itself failed: nothing was started
        _close(settings_fd)
        return None
    _close(settings_fd)
    if orphan:
        status = 0
        try:
            # The shell has started the sender in the background and exits (or the sender
            # has forked and its first process exits): a millisecond or two, on our side.
            status = _posix.waitpid(pid, 0)[1]
        except OSError:  # reaped by someone else (a SIGCHLD handler): started all the same
            pass
        # A KeyboardInterrupt here is the host's own Ctrl-C: it goes on to the host.
        if status != 0:
            return None  # the shell could not fork, or the sender could not: nothing started
    return pid


def _message(settings: str, *, fork: bool) -> bytes:
    """What the sender reads on its stdin (see :data:`BOOTSTRAP`)."""
    prefix = getattr(sys, "pycache_prefix", None)
    head = (FORK if fork else b"-") + (b"B" if sys.dont_write_bytecode else b"-")
    if isinstance(prefix, str) and prefix:
        # The sender works in "/": a relative prefix is the host's working directory's.
        head += os.fsencode(os.path.join(_getcwd(), prefix)).hex().encode("ascii")
    return head + b"\n" + settings.encode("ascii") + b"\n"


def _settings_pipe(message: bytes) -> "int | None":
    """The read end of a pipe that holds all of ``message``, or None (it does not fit).

    The read end is numbered above :data:`SHELL_SETTINGS_FD`, so that none of the
    ``dup2`` actions of :func:`spawn` can overwrite it or be a no-op that keeps
    close-on-exec. Both ends are close-on-exec; the write end is closed here.
    """
    read_end: "int | None"
    read_end, write_end = _posix.pipe()
    low: list[int] = []
    try:
        _posix.set_blocking(write_end, False)
        # Never blocks: a pipe that cannot take it all now fails the spawn.
        if _posix.write(write_end, message) != len(message):
            raise OSError("the settings do not fit in the pipe")
        while read_end <= SHELL_SETTINGS_FD:
            low.append(read_end)
            read_end = _posix.dup(read_end)
    except OSError:
        if read_end not in low:  # a failed dup() leaves read_end as the number already listed
            low.append(read_end)
        read_end = None
    finally:
        _close(write_end)
        for fd in low:  # each once: a number closed twice may be the host's by then
            _close(fd)
    return read_end


def _close(fd: "int | None") -> None:
    if fd is not None:
        try:
            _posix.close(fd)
        except OSError:
            pass


def result_pipe() -> "tuple[int, int] | None":
    """``(read_end, write_end)`` for the sender's results: non-blocking reads, never descriptor 3.

    Both ends are non-inheritable; :func:`spawn` passes the write end on as descriptor 3
    explicitly (``dup2`` clears close-on-exec on the copy). A write end that is itself
    descriptor 3 would make that ``dup2`` a no-op that keeps close-on-exec, so it is moved.
    """
    try:
        read_end, write_end = _posix.pipe()
        if write_end == RESULT_FD:
            moved = _posix.dup(write_end)
            _posix.close(write_end)
            write_end = moved
        _posix.set_blocking(read_end, False)
        return read_end, write_end
    except Exception:  # noqa: BLE001 - out of descriptors: no pipe, the caller copes
        return None
