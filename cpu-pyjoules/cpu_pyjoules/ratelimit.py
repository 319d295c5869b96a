"""A warning that says how often something happened without flooding the log at kilohertz rates."""

from __future__ import annotations

import logging
import time
from typing import Callable


class RateLimitedWarning:
    """Counts events; logs at most one warning per ``period_s`` with the count since the last one.

    The first event is logged at once (the operator learns about the problem immediately), later ones are
    folded into a periodic summary.
    """

    def __init__(
        self, logger: logging.Logger, what: str, period_s: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.logger = logger
        self.what = what
        self.period_s = period_s
        self.clock = clock
        self.total = 0
        self._pending = 0
        self._last_log: float = float("-inf")

    def event(self, detail: str = "", count: int = 1) -> bool:
        """Record ``count`` events; return True if a warning was logged now."""
        self.total += count
        self._pending += count
        now = self.clock()
        if now - self._last_log < self.period_s:
            return False
        self.logger.warning(
            "%s: %d in the last %s (%d in total)%s",
            self.what,
            self._pending,
            "moment" if self._last_log == float("-inf") else f"{self.period_s:g} s",
            self.total,
            f"; latest: {detail}" if detail else "",
        )
        self._pending = 0
        self._last_log = now
        return True
