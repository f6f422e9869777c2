"""The engine's decisions (scarf_autoping.plans), unit-tested without a process."""

import doctest

import pytest

from scarf_autoping import plans


class J:
    """A job as the plans see it."""

    def __init__(self, name: str, *, detach: bool = True, on_exit: str = "handoff",
                 retry_interval: "float | None" = None) -> None:
        self.name, self.detach, self.on_exit, self.retry_interval = name, detach, on_exit, retry_interval

    def __repr__(self) -> str:
        return self.name


PING, WAIT, EVENT = J("ping"), J("wait", detach=False, on_exit="wait"), J("event", detach=False)
RETRYING = J("retrying", retry_interval=5.0)


def test_the_docstring_examples_hold():
    assert doctest.testmod(plans).failed == 0


@pytest.mark.parametrize(
    "green,reaps,may_import,expected",
    [
        (False, False, True, ([], [PING, RETRYING], [WAIT, EVENT])),
        (False, False, False, ([], [PING, RETRYING], [WAIT, EVENT])),  # no reaper: importing is not the question
        (True, False, True, ([], [PING, WAIT, EVENT, RETRYING], [])),  # green: everything detached
        (True, True, False, ([], [PING, WAIT, EVENT, RETRYING], [])),  # gevent's reaper is not the host's
        (False, True, True, ([], [], [PING, WAIT, EVENT, RETRYING])),  # a reaper: no process of ours
        (False, True, False, ([PING, RETRYING], [], [WAIT, EVENT])),  # ... and our thread may not import threading
    ],
)
def test_dispatch(green, reaps, may_import, expected):
    batch = [PING, WAIT, EVENT, RETRYING]
    assert plans.dispatch(batch, green=green, reaps=reaps, may_import_threading=may_import) == expected


def test_exit_asks_the_host_only_when_something_would_be_handed_over_or_is_out():
    drop, wait, handoff = J("d", on_exit="drop"), J("w", on_exit="wait"), J("h")
    assert not plans.exit_asks_host([drop, wait], out=False)
    assert plans.exit_asks_host([drop, wait], out=True)
    assert plans.exit_asks_host([handoff], out=False)
    assert not plans.exit_asks_host([], out=False)


@pytest.mark.parametrize(
    "dies,reaps,expected",
    [
        (False, False, (["d"], ["w"], ["h"])),
        (True, False, (["d"], ["w", "h"], [])),  # PID 1, an init that exits with us, a service
        (False, True, (["d"], ["w", "h"], [])),  # the host reaps its children
        (True, True, (["d"], ["w", "h"], [])),
    ],
)
def test_exit_plan(dies, reaps, expected):
    unsent = [J("d", on_exit="drop"), J("w", on_exit="wait"), J("h")]
    drop, wait, handoff = plans.exit_plan(unsent, dies_with_host=dies, reaps=reaps)
    assert ([j.name for j in drop], [j.name for j in wait], [j.name for j in handoff]) == expected


def test_exit_plan_with_nothing_to_hand_over_stays_empty_whoever_reaps():
    wait = J("w", on_exit="wait")
    assert plans.exit_plan([wait], dies_with_host=False, reaps=True) == ([], [wait], [])


def test_fork_plan_sends_what_it_can_from_detached_senders():
    old = J("old-retry", retry_interval=2.0)
    once, looping, queue, kept = plans.fork_plan([PING, RETRYING, EVENT, WAIT], [(12.0, old), (9.0, EVENT)],
                                                 now=10.0, deferral_left=0.25, reaps=False)
    assert once == [PING]
    # Retries already due (9.0 < now) wait 0; the one queued waits what is left of the deferral.
    assert looping == [(old, 2.0), (RETRYING, 0.25)]
    assert queue == [EVENT, WAIT]  # sent from the host: they restart the thread
    assert kept == [(9.0, EVENT)]


def test_fork_plan_of_a_host_that_reaps_starts_nothing():
    once, looping, queue, kept = plans.fork_plan([PING, RETRYING, EVENT], [(12.0, EVENT)], now=10.0,
                                                 deferral_left=0.5, reaps=True)
    assert (once, looping) == ([], [])
    assert queue == [PING, EVENT]
    assert kept == [(12.0, EVENT), (10.5, RETRYING)]


def test_fork_plan_after_the_deferral_sends_at_once():
    once, looping, _, _ = plans.fork_plan([PING, RETRYING], [], now=3.0, deferral_left=0.0, reaps=False)
    assert once == [PING] and looping == [(RETRYING, 0.0)]
