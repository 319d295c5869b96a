"""The two halves of the seed's contract for clients that sample devices on a schedule.

``run_sampler`` is the body of ``get_power``: on each tick of an :class:`~monitoring_client.ticker.AbsoluteTicker`
it calls the client's ``read()`` (a few file reads or library calls, nothing else), stamps the values with
the midpoint of two monotonic clock reads around it and the wall clock in ms, and hands
``(monotonic_ns, wall_ms, values)`` on to the raw queue in lists, one a second (:class:`ReadingBatches`:
a put per tick would cost more than the reading); it puts :data:`END` when it returns, for any reason.

:class:`BatchProcessor` is the body of ``process_data``: it wakes once per ``batch_period_s``, hands every
reading queued meanwhile to the client's ``handle(reading, out)`` (the arithmetic and the record dicts),
and puts the records as one list. Waking a thread costs more CPU than handling a reading, so everything
that can wait for the next push waits here instead of in the sampler. It returns once stopped, after
``END`` (or a grace period), with its queue drained, so a shutdown loses no reading that was taken.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from monitoring_client.ratelimited_log import RateLimitedLog
from monitoring_client.ticker import AbsoluteTicker

logger = logging.getLogger(__name__)

Reading = tuple[int, int, Any]  # (monotonic ns, wall-clock ms, the client's values)
Record = dict[str, object]

# Samplers hand readings on in batches: one queue put per this many seconds (or BATCH_READINGS readings).
BATCH_S = 1.0
BATCH_READINGS = 512

# Kinds of rate-limited log lines (keys of RateLimitedLog, also the words of its periodic summaries).
SKIPPED_READ = "unreadable samples"
LATE = "late-tick reports"
MERGED = "merged samples"
WARNING_PERIOD_S = 60.0


class SkipTick(Exception):
    """Raised by ``read()`` when this tick's values cannot be used (a torn value): the tick is skipped."""


class _End:
    def __repr__(self) -> str:
        return "END"


END = _End()  # last item the sampler puts on the raw queue


def run_sampler(
    read: Callable[[], object],
    output_queue: queue.Queue[Any],
    interval_s: float,
    stop_event: threading.Event,
    *,
    warnings: RateLimitedLog | None = None,
    ticker: AbsoluteTicker | None = None,
    monotonic_ns: Callable[[], int] = time.monotonic_ns,
    wall_ns: Callable[[], int] = time.time_ns,
) -> None:
    """Sample ``read()`` every ``interval_s`` until ``stop_event``; put readings, then END, on ``output_queue``.

    ``SkipTick`` from ``read`` skips the tick, ticks the schedule skipped because it ran late are reported;
    both as rate-limited warnings. Any other exception ends the loop (the base client then shuts down).
    """
    log = warnings or RateLimitedLog(logger, WARNING_PERIOD_S)
    schedule = ticker or AbsoluteTicker(interval_s)
    batches = ReadingBatches(output_queue.put, clock_ns=monotonic_ns)
    skipped_seen = 0
    try:
        for _ in schedule.ticks(stop_event):
            t0 = monotonic_ns()
            try:
                values = read()
            except SkipTick as exc:
                log.report(SKIPPED_READ, f"sample skipped: {exc}")
                continue
            t1 = monotonic_ns()
            batches(((t0 + t1) >> 1, wall_ns() // 1_000_000, values))
            if schedule.skipped != skipped_seen:
                missed = schedule.skipped - skipped_seen
                log.report(LATE, f"{missed} sampling tick(s) skipped because the sampler ran late", missed)
                skipped_seen = schedule.skipped
    finally:
        batches.flush()  # what the last second read, before END
        output_queue.put(END)


class BatchProcessor:
    """Drains readings once per ``batch_period_s`` and turns them into records with ``handle``.

    ``handle(reading, out)`` appends the records of one reading to ``out``. A reading whose wall-clock
    millisecond is not after the previous one's (two samples in one ms, or the clock stepped back) is not
    handed on: a remote-write receiver refuses non-increasing timestamps, and the next reading covers the
    interval (energy is integrated over monotonic time), so nothing is lost.
    """

    MAX_BATCH = 512  # readings per list of records, so records flow on during a long backlog

    def __init__(
        self,
        handle: Callable[[Reading, list[Record]], None],
        *,
        batch_period_s: float = 1.0,
        drain_grace_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.handle = handle
        self.batch_period_s = batch_period_s
        self.drain_grace_s = drain_grace_s
        self.clock = clock
        self.last_wall_ms = -1
        self.readings = 0
        self.records_out = 0
        # Merged samples are normal at kHz rates (timestamps have millisecond resolution): INFO, not WARNING.
        self.notices = RateLimitedLog(logger, WARNING_PERIOD_S, level=logging.INFO)

    def run(self, input_queue: queue.Queue[Any], output_queue: queue.Queue[Any], stop_event: threading.Event) -> None:
        # Running: one wake-up per period, whatever the sampling rate.
        ended = False
        while not stop_event.wait(self.batch_period_s):
            ended = self.drain(input_queue, output_queue, []) or ended
        # Stopped (the base client stops us after get_power returned): the rest, up to the sampler's END.
        give_up_at = self.clock() + self.drain_grace_s
        ended = self.drain(input_queue, output_queue, []) or ended
        while not ended and self.clock() < give_up_at:
            try:
                first = [input_queue.get(timeout=0.05)]
            except queue.Empty:
                continue
            ended = self.drain(input_queue, output_queue, first)

    def drain(self, input_queue: queue.Queue[Any], output_queue: queue.Queue[Any], first: list[Any]) -> bool:
        """Handle ``first`` and everything queued now, in lists of at most MAX_BATCH readings.

        Returns True if END was among them.
        """
        get_nowait = input_queue.get_nowait
        ended = False
        items = first
        while True:
            empty = False
            try:
                while len(items) < self.MAX_BATCH:
                    items.append(get_nowait())
            except queue.Empty:
                empty = True
            out: list[Record] = []
            for item in items:
                if item is END:
                    ended = True
                elif type(item) is list:  # a batch of readings
                    for reading in item:
                        self._reading(reading, out)
                else:
                    self._reading(item, out)
            if out:
                output_queue.put(out)
                self.records_out += len(out)
            if empty:
                return ended
            items = []

    def _reading(self, reading: Reading, out: list[Record]) -> None:
        wall_ms = reading[1]
        if wall_ms <= self.last_wall_ms:
            self.notices.report(
                MERGED, f"sample merged into the next one: wall clock {wall_ms} ms <= previous {self.last_wall_ms} ms"
            )
            return
        self.last_wall_ms = wall_ms
        self.readings += 1
        self.handle(reading, out)


class ReadingBatches:
    """Hands a sampler's readings ``(monotonic_ns, ...)`` on as lists, not one by one.

    A queue put wakes the thread waiting on the queue, and waking a thread costs more CPU than reading the
    counters: one list per ``period_s`` (or per ``max_readings``) makes the consumer wake about once a
    second whatever the sampling rate, and the sampler's own tick an append. Call :meth:`flush` when
    sampling ends, so the last readings are not left behind.
    """

    __slots__ = ("_put", "_period_ns", "_max", "_clock_ns", "_due_ns", "batch", "count")

    def __init__(
        self,
        put: Callable[[list[Reading]], object],
        period_s: float = BATCH_S,
        max_readings: int = BATCH_READINGS,
        *,
        clock_ns: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self._put = put
        self._period_ns = int(period_s * 1e9)
        self._max = max_readings
        self._clock_ns = clock_ns
        self._due_ns = clock_ns() + self._period_ns
        self.batch: list[Reading] = []
        self.count = 0  # readings emitted so far (handed on or still in the batch)

    def __call__(self, reading: Reading) -> None:
        batch = self.batch
        batch.append(reading)
        self.count += 1
        if reading[0] >= self._due_ns or len(batch) >= self._max:
            self.flush()

    def flush(self) -> None:
        """Hand on what is batched (nothing when empty) and start the next period."""
        if self.batch:
            batch, self.batch = self.batch, []
            self._put(batch)
        self._due_ns = self._clock_ns() + self._period_ns
