"""An absolute sampling schedule: tick k is due at start + k × interval on a monotonic clock.

A loop that sleeps ``interval`` after each piece of work runs slow by the work time plus the sleep's
overshoot on every tick (the seed's loop fell well short of the asked rate). Computing every due
time from the start instead makes errors not accumulate: a tick that runs a little late does not delay the
next one. A tick that is missed entirely (the process was descheduled for longer than an interval) is
skipped and counted, never made up in a burst: after a stall the next tick is the most recent one due.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class AbsoluteSchedule:
    """Runs a callback at each tick's due time until ``stop_event`` is set.

    ``clock`` returns seconds on a monotonic scale; ``wait(seconds)`` blocks for at most that long and
    returns True when the schedule must stop. Both are injectable so tests can drive the schedule with a
    fake clock. The default wait uses ``time.sleep`` for short waits (a plain nanosleep costs markedly less
    CPU per wake-up than ``Event.wait``, which matters at kilohertz rates; stop is then noticed within
    ``SHORT_WAIT_S``) and ``stop_event.wait`` for long ones, which wakes up at once on stop.
    """

    SHORT_WAIT_S = 0.25

    def __init__(
        self,
        interval_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        wait: Callable[[float], bool] | None = None,
    ) -> None:
        if not (interval_s > 0 and math.isfinite(interval_s)):
            raise ValueError(f"interval must be a positive number of seconds, got {interval_s!r}")
        self.interval_s = float(interval_s)
        self.clock = clock
        self.wait = wait
        self.start: float | None = None
        self.skipped = 0  # ticks never run because an earlier tick or a stall ran past their due time

    def due(self, k: int) -> float:
        """Due time of tick ``k`` (after the schedule started)."""
        assert self.start is not None, "schedule not started"
        return self.start + k * self.interval_s

    def run(
        self,
        stop_event: threading.Event,
        on_tick: Callable[[int], object],
        on_skip: Callable[[int], object] | None = None,
    ) -> None:
        """Call ``on_tick(k)`` when tick ``k`` is due, until ``stop_event`` is set; tick 0 runs at once.

        When ticks had to be skipped (the loop ran late), ``on_skip(count)`` is called before the tick
        that follows them. This loop runs at the sampling rate with cold caches: every operation on the
        way from one tick to the next costs, so the default wait is inlined and the rest kept to a few
        comparisons (a callback costs less than resuming a generator).
        """
        clock = self.clock
        custom_wait = self.wait
        sleep, is_set, event_wait, short = time.sleep, stop_event.is_set, stop_event.wait, self.SHORT_WAIT_S
        interval = self.interval_s
        start = self.start = clock()
        due = start
        k = 0
        while not is_set():
            now = clock()
            while now < due:  # a wait may end a little early: wait again for the rest
                seconds = due - now
                if custom_wait is not None:
                    if custom_wait(seconds):
                        return
                elif seconds <= short:
                    sleep(seconds)
                    if is_set():
                        return
                elif event_wait(seconds):
                    return
                now = clock()
            if now - due >= interval:
                # Ticks k .. k+behind-1 are all past; run only the latest one that is due.
                behind = int((now - due) // interval)
                self.skipped += behind
                k += behind
                if on_skip is not None:
                    on_skip(behind)
            on_tick(k)
            k += 1
            due = start + k * interval
