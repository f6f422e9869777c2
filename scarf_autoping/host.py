"""What kind of process imported us: facts the delivery engine decides by.

Cheap checks only: this module is on the host's import path, so it reads what the
interpreter already has (``sys.modules``, ``sys.flags``, ``_thread``) and imports nothing.

* :func:`main_interpreter`: a sub-interpreter never starts a thread or registers hooks.
* :func:`uwsgi_process`: uWSGI forks its workers from C, where ``os.register_at_fork``
  hooks never run, so no thread of ours may exist in a uWSGI process at any time.
* :func:`green`: eventlet or gevent has monkey-patched the host.
* :func:`thread_primitives`: the *real* ``_thread`` functions even when a green library
  has patched ``_thread``: our worker is an OS thread that green hubs must not see.

On the host's import path: no ``from __future__ import annotations`` (importing
``__future__`` costs the host about 0.1 ms), so annotations that need it are strings.
"""

import _thread
import sys

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
            import _xxsubinterpreters as interpreters

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


def thread_primitives() -> "tuple[object, object]":
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


def frozen() -> bool:
    """True in a frozen application (PyInstaller, cx_Freeze, py2exe): ``sys.executable`` is the app."""
    return bool(getattr(sys, "frozen", False))
