"""host.dies_with_host, tested without a process tree: is this host the main process
of a systemd service (then it waits for its ping at exit instead of handing it over)?
End to end: ``behaviour/test_exit.py``."""

from __future__ import annotations

import pytest
from helpers import linux_only


@linux_only
@pytest.mark.parametrize(("parent", "expected"), [
    (OSError, True),  # hidden (hidepid=2, ProtectProc=invisible: the manager runs as root) or gone
    ({b"": b"/system.slice/app.service", b"name=systemd": b"/system.slice/app.service"}, False),  # in the unit
    ({b"": b"/system.slice/app.service"}, False),  # the same, seen in one hierarchy only
    ({b"": b"/init.scope", b"name=systemd": b"/init.scope"}, True),  # started by the service manager
    ({b"": b"/user.slice/user-1000.slice/user@1000.service/init.scope"}, True),  # by a user's manager
])
def test_a_service_main_process_is_told_by_its_parents_cgroup(monkeypatch, parent, expected):
    from scarf_autoping import host

    def cgroups(pid: object) -> dict[bytes, bytes]:
        if pid == "self":
            return {b"": b"/system.slice/app.service", b"name=systemd": b"/system.slice/app.service"}
        if parent is OSError:
            raise PermissionError(13, "hidden")
        return parent  # type: ignore[return-value]

    monkeypatch.setattr(host, "_systemd_cgroups", cgroups)
    assert host._main_process_of_a_service(1) is expected
