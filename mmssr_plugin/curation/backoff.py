"""Waiting between teacher requests: the shared Retry-After pause, stoppable sleeps, header parsing."""

from __future__ import annotations

import email.utils
import threading
import time

# Longest Retry-After honoured, seconds.
MAX_RETRY_AFTER = 600.0


class Stopped(Exception):
    """The run is stopping; this sample is left for a rerun."""


class RateGate:
    """Shared pause: after a 429 with Retry-After no request starts before the time it names."""

    def __init__(self, stop: threading.Event) -> None:
        self._lock = threading.Lock()
        self._not_before = 0.0
        self._stop = stop

    def hold(self, seconds: float) -> None:
        """Start no request in the next ``seconds``."""
        with self._lock:
            self._not_before = max(self._not_before, time.monotonic() + seconds)

    def wait(self) -> None:
        """Block until requests may start again (raises Stopped when the run stops)."""
        while True:
            with self._lock:
                delay = self._not_before - time.monotonic()
            if delay <= 0:
                break
            sleep_or_stop(self._stop, delay)
        if self._stop.is_set():
            raise Stopped


def sleep_or_stop(stop: threading.Event, seconds: float) -> None:
    """Sleep, waking early (raising Stopped) when the run stops."""
    if seconds > 0 and stop.wait(seconds):
        raise Stopped


def parse_retry_after(value: str | None) -> float | None:
    """Seconds named by a Retry-After header (delta seconds or an HTTP date), capped; None if absent."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)
