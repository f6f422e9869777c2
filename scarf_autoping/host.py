"""What kind of process imported us: facts the delivery engine decides by.

Cheap checks only: this module is on the host's import path, so it reads what the
interpreter already has (``sys.modules``, ``sys.flags``, ``_thread``) and imports nothing.

* :func:`main_interpreter`: a sub-interpreter never starts a thread or registers hooks.
* :func:`uwsgi_process`: uWSGI forks its workers from C, where ``os.register_at_fork``
  hooks never run, so no thread of ours may exist in a uWSGI process at any time.
* :func:`green`: eventlet or gevent has monkey-patched the host.
* :func:`thread_primitives`: the *real* ``_thread`` functions even when a green library
  has patched ``_thread``: our worker is an OS thread that green hubs must not see.
* :func:`dies_with_host`: whether a process started now is killed when this one exits
  (asked at exit only: it reads a file or two under ``/proc``).
* :func:`reaps_children`: whether the host handles SIGCHLD with a Python function of its own.

On the host's import path: no ``from __future__ import annotations`` (importing
``__future__`` costs the host about 0.1 ms), so annotations that need it are strings.
"""

import _thread
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - typing only, kept off the import path
    from collections.abc import Callable

_main: "list[bool]" = []


def main_interpreter() -> bool:
    """False inside a sub-interpreter, where no thread of ours may run.

    CPython 3.12+ says so through ``_thread._is_main_interpreter`` (a C call). CPython
    3.9-3.11 have only their sub-interpreter test module to ask, which costs the first
    call 0.5-1 ms to load, so the answer is cached and the question is asked only for a
    ping that will be sent. It matters there: mod_wsgi runs applications in legacy
    sub-interpreters by default, and a thread of ours alive when one ends aborts the
    process (``Py_EndInterpreter: thread still has a frame``).
    """
    if _main:
        return _main[0]
    answer = True
    try:
        check = getattr(_thread, "_is_main_interpreter", None)
        if check is not None:
            answer = bool(check())
        elif sys.version_info < (3, 12) and sys.implementation.name == "cpython":
            # CPython's own test module: no stubs anywhere (unused-ignore: checked as 3.12+, unreachable).
            import _xxsubinterpreters as interpreters  # type: ignore[import-not-found, unused-ignore]

            answer = interpreters.get_current() == interpreters.get_main()
    except Exception:  # noqa: BLE001 - no way to tell: assume the common case
        answer = True
    _main.append(answer)
    return answer


def uwsgi_process() -> bool:
    """True inside any uWSGI process (master or worker).

    uWSGI's Python plugin puts its embedded ``uwsgi`` module in ``sys.modules`` before the
    application is loaded, so this costs a dictionary look-up and never an import.
    """
    module = sys.modules.get("uwsgi")
    return module is not None and hasattr(module, "worker_id")


def green() -> "str | None":
    """``"gevent"`` or ``"eventlet"`` when that library has patched ``socket``, else None."""
    modules = sys.modules
    monkey = modules.get("gevent.monkey")
    if monkey is not None:
        try:
            if monkey.is_module_patched("socket"):
                return "gevent"
        except Exception:  # noqa: BLE001 - another gevent: assume patched, the safe side
            return "gevent"
    patcher = modules.get("eventlet.patcher")
    if patcher is not None:
        try:
            if patcher.is_monkey_patched("socket"):
                return "eventlet"
        except Exception:  # noqa: BLE001
            return "eventlet"
    return None


def thread_primitives() -> "tuple[Callable[[], _thread.LockType], Callable[..., int]]":
    """``(allocate_lock, start_new_thread)`` as CPython made them, green patching undone."""
    modules = sys.modules
    monkey = modules.get("gevent.monkey")
    if monkey is not None:
        try:
            lock, start = monkey.get_original("_thread", ["allocate_lock", "start_new_thread"])
            return lock, start
        except Exception:  # noqa: BLE001
            pass
    patcher = modules.get("eventlet.patcher")
    if patcher is not None:
        try:
            if not patcher.is_monkey_patched("thread"):
                return _thread.allocate_lock, _thread.start_new_thread
            original = patcher.original("_thread")
            return original.allocate_lock, original.start_new_thread
        except Exception:  # noqa: BLE001
            pass
    return _thread.allocate_lock, _thread.start_new_thread


#: ``readlink /proc/self/ns/pid`` in the initial PID namespace (``PROC_PID_INIT_INO`` in Linux).
_ROOT_PID_NAMESPACE = "pid:[4026531836]"


def dies_with_host() -> bool:
    """True when a process started now would be killed as this one exits (Linux).

    Asked at exit, and only when something would be handed over: a detached sender
    started then would die with us in these cases, so exit waits for the ping instead:

    * this process is PID 1: its exit kills every process left in its PID namespace;
    * its parent is PID 1 of a PID namespace that is not the machine's (tini, dumb-init,
      ``docker run --init``, a shell-form ``CMD``: ``/bin/sh -c`` as PID 1): that init
      exits right after its one child, and the namespace with it;
    * it is the main process of a systemd service (its cgroup is a ``.service`` unit and
      its parent, the service manager, is outside it): with the default
      ``KillMode=control-group``, systemd kills what is left in the unit when it exits.

    What cannot be seen from here: an init further up (a grandparent), a process of a
    service that is not its main process, a CI runner or logind that kills what is left
    by cgroup. A service with ``KillMode=process`` is counted although the sender would
    live. ``docker exec`` (parent outside the namespace, PID 0) is not counted: there the
    container's init outlives us. (Process-group kills never reach the sender: it runs in
    a session of its own.)
    """
    import os  # loaded at interpreter start: a dictionary look-up, as for sys

    try:
        if os.getpid() == 1:
            return True
        parent = os.getppid()
        if parent == 1 and _nested_pid_namespace():
            return True
        # systemd starts a system service's main process itself (parent 1), and sets
        # INVOCATION_ID for every unit's processes (v232+): only then is /proc read.
        return (parent == 1 or "INVOCATION_ID" in os.environ) and _main_process_of_a_service(parent)
    except Exception:  # noqa: BLE001 - no /proc, an odd platform: the common case
        return False


def _nested_pid_namespace() -> bool:
    """True when this process's PID namespace is not the machine's initial one.

    ``NSpid`` in ``/proc/self/status`` cannot tell on its own: a container mounts its own
    ``/proc``, which shows only the container's level.
    """
    import os

    try:
        return os.readlink("/proc/self/ns/pid") != _ROOT_PID_NAMESPACE
    except OSError:
        pass
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"NSpid:"):
                    return len(line.split()) > 2
    except OSError:
        pass
    return False


def _systemd_cgroups(pid: "int | str") -> "dict[bytes, bytes]":
    """The cgroup paths of ``pid`` in the hierarchies systemd tracks units in (v2 ``0::``, v1 ``name=systemd``)."""
    with open(f"/proc/{pid}/cgroup", "rb") as cgroup:
        data = cgroup.read()
    found = {}
    for line in data.splitlines():
        number, _, rest = line.partition(b":")
        controllers, _, path = rest.partition(b":")
        if (number == b"0" and not controllers) or controllers == b"name=systemd":
            found[controllers] = path
    return found


def _main_process_of_a_service(parent: int) -> bool:
    """Our cgroup is a ``.service`` unit and our parent is not in it (the service manager)."""
    try:
        ours = {key: path for key, path in _systemd_cgroups("self").items()
                if path.rsplit(b"/", 1)[-1].endswith(b".service")}
    except OSError:
        return False
    if not ours:
        return False
    try:
        theirs = _systemd_cgroups(parent)
    except OSError:  # hidden (hidepid, ProtectProc=invisible: the manager runs as root) or gone
        return True
    common = [key for key in ours if key in theirs]
    return not common or any(theirs[key] != ours[key] for key in common)


def reaps_children() -> bool:
    """True when the host handles SIGCHLD with a Python function of its own.

    Such a handler runs for every child that ends, ours too (the ``/bin/sh`` that makes
    an orphan of the sender is, for a moment, the host's child): one that calls
    ``os.wait()`` gets ``ChildProcessError`` or reaps ours instead of its own. There is no
    portable, thread-safe way to start a process that is not the caller's child, so while
    such a handler is installed no process of ours is started. SIG_IGN and SIG_DFL are
    fine; a handler set in C cannot be seen cheaply, and is left alone. gunicorn's arbiter
    is the exception: it reaps with ``waitpid(-1, WNOHANG)`` and ignores pids it does not
    know, and its master forks: sending from it would put our thread in front of its forks.
    """
    signal = sys.modules.get("signal")
    if signal is None:
        return False
    try:
        handler = signal.getsignal(signal.SIGCHLD)
        return callable(handler) and getattr(handler, "__module__", None) != "gunicorn.arbiter"
    except Exception:  # noqa: BLE001 - no SIGCHLD (Windows), a patched signal module
        return False
