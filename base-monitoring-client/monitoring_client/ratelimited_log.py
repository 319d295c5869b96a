"""Warnings that stay readable when the same problem repeats thousands of times a second.

A buggy implementation can emit a bad record on every tick; logging each one would bury everything else
(and cost more than the collection itself). The first occurrence of each kind is logged at once with its
detail, later ones are counted and summarised at most once per interval.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _KeyState:
    last_logged: float
    suppressed: int
    latest: str
    samples: int = 0


class RateLimitedLog:
    """Log the first event of each key immediately, then one summary per key per ``interval_s``."""

    def __init__(
        self,
        logger: logging.Logger,
        interval_s: float = 10.0,
        *,
        level: int = logging.WARNING,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._interval = interval_s
        self._level = level
        self._clock = clock
        self._lock = threading.Lock()
        self._state: dict[str, _KeyState] = {}
        self._totals: dict[str, int] = {}

    def report(self, key: str, message: str, count: int = 1, *, samples: int = 0) -> None:
        """Record ``count`` events of kind ``key``; ``message`` describes the latest one. ``samples``: how
        many samples the events concern, summed in the summaries (for events such as refused requests)."""
        now = self._clock()
        with self._lock:
            self._totals[key] = self._totals.get(key, 0) + count
            state = self._state.get(key)
            if state is None:
                self._state[key] = _KeyState(now, count - 1, message)
                line = message
            else:
                state.suppressed += count
                state.samples += samples
                state.latest = message
                if now - state.last_logged < self._interval:
                    return
                line = self._summary(key, state, now)
        self._logger.log(self._level, "%s", line)

    def total(self, key: str) -> int:
        """How many events of kind ``key`` were reported since start (logged or summarised)."""
        with self._lock:
            return self._totals.get(key, 0)

    def flush(self) -> None:
        """Log the pending summaries (at shutdown, so no suppressed count goes unreported)."""
        now = self._clock()
        with self._lock:
            lines = [self._summary(k, st, now) for k, st in self._state.items() if st.suppressed]
        for line in lines:
            self._logger.log(self._level, "%s", line)

    @staticmethod
    def _summary(key: str, state: _KeyState, now: float) -> str:
        samples = f" ({state.samples} samples)" if state.samples else ""
        elapsed = now - state.last_logged
        line = f"{state.suppressed} more {key}{samples} in the last {elapsed:.0f}s; latest: {state.latest}"
        state.last_logged, state.suppressed, state.samples = now, 0, 0
        return line
