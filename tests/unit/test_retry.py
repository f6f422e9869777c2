"""The retry policy (``scarf_autoping.retry``): what is retried, the jittered delays and
``Retry-After``, the author's ``retry_interval``. Retries end to end: ``behaviour/test_retry.py``."""

from __future__ import annotations

import pytest

from scarf_autoping import autoping, retry

# --- the policy -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code,after,expected",
    [(None, None, 0.0), (500, None, 0.0), (503, 7.0, 0.0), (429, None, 0.0), (429, 2.0, 2.0),
     (404, None, None), (400, 5.0, None), (410, None, None)],
)
def test_what_is_retried(code, after, expected):
    assert retry.retryable(code, after) == expected


def test_delays_are_jittered_and_honour_retry_after():
    assert retry.next_delay(10.0, 0.0, 0.0) == pytest.approx(8.0)
    assert retry.next_delay(10.0, 0.0, 1.0) == pytest.approx(12.0)
    assert retry.next_delay(1.0, 30.0, 0.5) == 30.0  # the server's Retry-After is later
    assert retry.next_delay(86400.0, 0.0, 1.0) == 86400.0
    assert 0.0 <= retry.jitter_fraction() <= 1.0


@pytest.mark.parametrize("value", [0.5, 0, -1, 86401, float("nan"), True, "60"])
def test_retry_interval_out_of_range_is_the_authors_mistake(value, monkeypatch):
    monkeypatch.setenv("DO_NOT_TRACK", "1")
    with pytest.raises(ValueError, match="retry_interval"):
        autoping("pkg-retry-bad", "https://x.invalid/{package}", retry_interval=value)
