"""A warning that says how often something happened without flooding the log at kilohertz rates."""

from __future__ import annotations

import logging
import time
from typing import Callable


class RateLimitedWarning:
    """Counts events; logs at most one message per ``period_s`` with the count since the last one.

    The first event is logged at once (the operator learns about the problem immediately), later ones are
    folded into a periodic summary. ``level`` is WARNING by default; conditions that are normal at high
    sampling rates use INFO.
    """

    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        period_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        level: int = logging.WARNING,
    ) -> None:
        self.logger = logger
        self.what = what
        self.period_s = period_s
        self.clock = clock
        self.level = level
        self.total = 0
        self._pending = 0
        self._last_log: float = float("-inf")

    def event(self, detail: str = "", count: int = 1) -> bool:
        """Record ``count`` events; return True if a message was logged now."""
        self.total += count
        self._pending += count
        now = self.clock()
        if now - self._last_log < self.period_s:
            return False
        latest = f"; latest: {detail}" if detail else ""
        if self._last_log == float("-inf"):
            self.logger.log(
                self.level,
                "%s: %d (further ones are summarised every %g s)%s",
                self.what,
                self._pending,
                self.period_s,
                latest,
            )
        else:
            self.logger.log(
                self.level,
                "%s: %d in the last %g s (%d in total)%s",
                self.what,
                self._pending,
                self.period_s,
                self.total,
                latest,
            )
        self._pending = 0
        self._last_log = now
        return True
