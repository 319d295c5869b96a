"""Sampling ticks on an absolute schedule: tick k is due at start + k × interval on a monotonic clock.

A loop that sleeps one interval after each piece of work runs slow by the work and the sleep's overshoot
on every tick, and those errors add up (the seed's loop reached about 73 Hz when asked for 100 Hz). Every
due time here is computed from the start, so a late tick does not delay the next one and nothing drifts
however long the client runs. A tick missed entirely (its work, or a stall, ran past the next due time by
a whole interval) is skipped and counted, never made up in a burst.

This loop runs at the sampling rate, and on a small machine a tick's caches are cold: every step on the way
from one tick to the next costs. So the tick is a callback (cheaper than resuming a generator), the clock is
read once per tick (after the tick's work: how long to sleep, and whether ticks were missed), and a wait of
up to ``MAX_SLEEP_S`` is a plain ``time.sleep``, which costs markedly less per wake-up than ``Event.wait``.
A sleep never ends before its time (Python sleeps again after a signal), so no second clock read is needed
after it; the stop event is checked after each sleep, so a stop request waits at most one sampling interval
(plus the tick in progress). Longer waits go through the stop event itself, which ends them at once on
stop: one wake-up per tick costs less than waking every ``MAX_SLEEP_S`` to look at the event.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from operator import attrgetter, methodcaller


def stop_test(stop_event: threading.Event) -> Callable[[threading.Event], bool]:
    """A test of ``stop_event`` that runs in C: ``threading.Event.is_set`` is a Python method (a frame per
    call), its flag an attribute; other event types are asked through their ``is_set``."""
    if type(stop_event) is threading.Event and isinstance(getattr(stop_event, "_flag", None), bool):
        return attrgetter("_flag")
    return methodcaller("is_set")


class AbsoluteTicker:
    """Calls ``on_tick(k)`` when tick ``k`` is due, until the stop event is set.

    ``clock`` is a monotonic clock in seconds and ``sleep(seconds)`` blocks for at least that long; both are
    injectable so tests can drive the ticker with a fake clock (waits longer than ``MAX_SLEEP_S`` use the
    stop event's own ``wait``).
    """

    MAX_SLEEP_S = 0.25

    def __init__(
        self,
        interval_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        if not (interval_s > 0 and math.isfinite(interval_s)):
            raise ValueError(f"interval must be a positive number of seconds, got {interval_s!r}")
        self.interval_s = float(interval_s)
        self.clock = clock
        self.sleep = sleep
        self.start: float | None = None
        self.ran = 0
        self.skipped = 0  # ticks never run: an earlier tick or a stall ran past their due time

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
        """Run the schedule; tick 0 at once. Returns once ``stop_event`` is set.

        When ticks had to be skipped, ``on_skip(count)`` is called before the tick that follows them. A tick
        that starts late, but less than an interval late, runs at once.
        """
        clock, sleep, event_wait = self.clock, self.sleep, stop_event.wait
        stopped = stop_test(stop_event)
        interval, longest = self.interval_s, self.MAX_SLEEP_S
        start = self.start = clock()
        k = 0
        try:
            while not stopped(stop_event):
                on_tick(k)
                now = clock()
                k += 1
                due = start + k * interval
                late = now - due
                if late >= 0:
                    if late >= interval:  # ticks whose time has passed entirely: skip them, run the latest now
                        behind = int(late // interval)
                        self.skipped += behind
                        k += behind
                        if on_skip is not None:
                            on_skip(behind)
                    continue
                if -late <= longest:
                    sleep(-late)
                    continue
                while not event_wait(-late):  # a long wait: the event ends it at once on stop
                    late = clock() - due
                    if late >= 0:
                        break
                    if -late <= longest:
                        sleep(-late)
                        break
        finally:
            self.ran = k - self.skipped
