"""Progress lines on standard error for work that takes more than a moment.

Quiet for the first ``delay_s`` (short reports print nothing), then at most one line per ``every_s``; on a
terminal the line is rewritten in place. Standard output stays clean for tables, JSON and CSV.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO


class Progress:
    def __init__(
        self,
        enabled: bool = True,
        *,
        stream: TextIO | None = None,
        delay_s: float = 1.0,
        every_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.delay_s = delay_s
        self.every_s = every_s
        self.clock = clock
        self._t0 = clock()
        self._last = float("-inf")
        self._open_line = False
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def restart(self) -> None:
        self._t0 = self.clock()
        self._last = float("-inf")

    def update(self, message: str, *, force: bool = False) -> None:
        if not self.enabled:
            return
        now = self.clock()
        if not force and (now - self._t0 < self.delay_s or now - self._last < self.every_s):
            return
        self._last = now
        if self._tty:
            self.stream.write("\r\033[K" + message)
            self._open_line = True
        else:
            self.stream.write(message + "\n")
        self.stream.flush()

    def done(self) -> None:
        """End an in-place line so that what follows starts on its own line."""
        if self._open_line:
            self.stream.write("\n")
            self.stream.flush()
            self._open_line = False

    def note(self, message: str) -> None:
        """A line that is always shown (a warning the user should see even without progress)."""
        self.done()
        self.stream.write(message + "\n")
        self.stream.flush()
