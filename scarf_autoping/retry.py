"""When a failed ping is tried again (``autoping(..., retry_interval=...)``): pure logic.

A long-running process whose network is not up yet (a container before its sidecar, a
laptop waking offline) fails its one ping; with a retry interval, the ping is tried again
until one attempt is delivered, for as long as the process lives:

* a network failure, a timeout, any 5xx: again after the interval;
* 429: again after the interval or the ``Retry-After`` the server asked for, whichever
  is later;
* any other 4xx is final (the URL is wrong: trying again would not change that);
* 2xx and 3xx are delivered.

Each wait is jittered (0.8 to 1.2 times), so a fleet that lost its network at once does
not come back at once.

On the host's import path: no ``from __future__ import annotations``.
"""

#: The shortest and the longest retry interval an author may ask for, in seconds.
MIN_INTERVAL = 1.0
MAX_INTERVAL = 86400.0


def check_interval(value: object) -> "float | None":
    """The author's ``retry_interval`` as seconds; ``ValueError`` when it is not 1 s to a day."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not MIN_INTERVAL <= value <= MAX_INTERVAL:
        raise ValueError(
            f"autoping: retry_interval must be None or a number of seconds from {MIN_INTERVAL:g} "
            f"to {MAX_INTERVAL:g} (a day), got {value!r}"
        )
    return float(value)


def retryable(status_code: "int | None", retry_after: "float | None" = None) -> "float | None":
    """None when an attempt's outcome is final; else the least seconds to wait (0: no minimum).

    ``status_code`` is None when no answer came (refused, DNS, TLS, timeout, proxy).
    """
    if status_code is None or status_code >= 500:
        return 0.0
    if status_code == 429:
        return max(0.0, retry_after or 0.0)
    return None


def next_delay(interval: float, at_least: float, fraction: float) -> float:
    """Seconds until the next attempt: the interval jittered by ``fraction`` (0 to 1), never
    less than ``at_least`` (a server's ``Retry-After``), never more than a day."""
    jittered = interval * (0.8 + 0.4 * min(1.0, max(0.0, fraction)))
    return min(MAX_INTERVAL, max(jittered, at_least))


def jitter_fraction() -> float:
    """A random fraction in [0, 1] without importing ``random`` into the host."""
    import os

    return int.from_bytes(os.urandom(2), "big") / 65535
