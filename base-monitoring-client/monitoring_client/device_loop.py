"""The two halves of the seed's contract for clients that sample devices on a schedule.

``run_sampler`` is the body of ``get_power``: on each tick of an :class:`~monitoring_client.ticker.AbsoluteTicker`
it calls the client's ``read()`` (a few file reads or library calls, nothing else), stamps the values with
the midpoint of two monotonic clock reads around it and the wall clock in ms, and hands
``(monotonic_ns, wall_ms, values)`` on to the raw queue in lists, one a second (:class:`ReadingBatches`:
a put per tick would cost more than the reading); it puts :data:`END` when it returns, for any reason.

:class:`BatchProcessor` is the body of ``process_data``: it wakes when the sampler hands a list on, passes
each reading to the client's ``handle(reading)`` (the arithmetic; the samples go to a
:class:`~monitoring_client.series_batch.SeriesBuffer`) and puts what the client's ``take()`` returns (series
batches) as one list. Waking a thread costs more CPU than handling a reading, so everything that can wait
for the next push waits here instead of in the sampler. It returns once stopped, after ``END`` (or a grace
period), with its queue drained, so a shutdown loses no reading that was taken.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from monitoring_client.ratelimited_log import RateLimitedLog
from monitoring_client.series_batch import samples_in
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


def late_ticks_reporter(log: RateLimitedLog) -> Callable[[int], None]:
    """The ticker's ``on_skip`` of a sampler: skipped ticks as a rate-limited warning."""

    def skipped(missed: int) -> None:
        log.report(LATE, f"{missed} sampling tick(s) skipped because the sampler ran late", missed)

    return skipped


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

    def tick(_k: int) -> None:
        # ReadingBatches.__call__ inlined: a call less per tick.
        t0 = monotonic_ns()
        try:
            values = read()
        except SkipTick as exc:
            log.report(SKIPPED_READ, f"sample skipped: {exc}")
            return
        t1 = monotonic_ns()
        batch = batches.batch
        batch.append(((t0 + t1) >> 1, wall_ns() // 1_000_000, values))
        if t1 >= batches.due_ns or len(batch) >= batches.max_readings:
            batches.flush()

    try:
        schedule.run(stop_event, tick, late_ticks_reporter(log))
    finally:
        batches.flush()  # what the last second read, before END
        output_queue.put(END)


class BatchProcessor:
    """The body of ``process_data``: turns the sampler's readings into what goes on the processed queue.

    ``handle(readings)`` adds the samples of a list of readings, in order, to the client's series (a
    ``SeriesBuffer``, say); after each list ``take()`` returns what to hand on (series batches or records),
    put as one list. A reading whose wall-clock millisecond is not after the previous one's (two samples in
    one ms, or the clock stepped back) is left out: a remote-write receiver refuses non-increasing
    timestamps, and the next reading covers the interval (energy is integrated over monotonic time), so
    nothing is lost. Readings come in lists or one by one (tuples); anything else the sampler puts (a
    setup message) goes to ``on_item``, in its place in the stream.
    """

    MAX_BATCH = 512  # readings per list handed on, so samples flow on during a long backlog

    def __init__(
        self,
        handle: Callable[[list[Reading]], None],
        take: Callable[[], list[Any]],
        *,
        on_item: Callable[[Any], None] | None = None,
        drain_grace_s: float = 2.0,
        idle_wait_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.handle = handle
        self.take = take
        self.on_item = on_item
        self.drain_grace_s = drain_grace_s
        self.idle_wait_s = idle_wait_s
        self.clock = clock
        self.last_wall_ms = -1
        self.readings = 0
        self.samples_out = 0
        # Merged samples are normal at kHz rates (timestamps have millisecond resolution): INFO, not WARNING.
        self.notices = RateLimitedLog(logger, WARNING_PERIOD_S, level=logging.INFO)

    def run(self, input_queue: queue.Queue[Any], output_queue: queue.Queue[Any], stop_event: threading.Event) -> None:
        # Blocks on the queue: the sampler puts its readings once a second as one list, so this thread wakes
        # right after it, about once a second whatever the sampling rate. Once stopped (the base client stops
        # it after get_power returned) it drains the queue and returns after the sampler's END, or after the
        # grace period if END never comes.
        get = input_queue.get
        ended = False
        stop_seen_at: float | None = None
        while True:
            stopping = stop_event.is_set()
            if stopping and stop_seen_at is None:
                stop_seen_at = self.clock()
            if ended and not stopping:  # the sampler has returned: nothing comes before the stop
                stop_event.wait(self.idle_wait_s)
                continue
            first: list[Any] = []
            try:
                first.append(get(timeout=0.05 if stopping else self.idle_wait_s))
            except queue.Empty:
                pass
            ended = self.drain(input_queue, output_queue, first) or ended
            if stopping and input_queue.empty():
                assert stop_seen_at is not None
                if ended or self.clock() - stop_seen_at >= self.drain_grace_s:
                    return

    def drain(self, input_queue: queue.Queue[Any], output_queue: queue.Queue[Any], first: list[Any]) -> bool:
        """Handle ``first`` and everything queued now, handing on after at most MAX_BATCH readings.

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
            if all(type(item) is list or type(item) is tuple or item is END for item in items):
                ended = END in items or ended
                self._handle(items)
            else:  # a setup message among them: one item at a time, in order
                for item in items:
                    if item is END:
                        ended = True
                    elif type(item) is list or type(item) is tuple:
                        self._handle([item])
                    elif self.on_item is not None:
                        self.on_item(item)
                    else:
                        raise TypeError(f"unexpected item on the raw queue: {item!r}")
            out = self.take()
            if out:
                output_queue.put(out)
                self.samples_out += samples_in(out)
            if empty:
                return ended
            items = []

    def _handle(self, items: list[Any]) -> None:
        """Hand the readings of ``items`` (lists of readings, single ones, END) to ``handle``, in order, less
        those not after the previous one's millisecond."""
        kept: list[Reading] = []
        last = self.last_wall_ms
        for item in items:
            if item is END:
                continue
            for reading in item if type(item) is list else (item,):
                wall_ms = reading[1]
                if wall_ms <= last:
                    self.notices.report(
                        MERGED, f"sample merged into the next one: wall clock {wall_ms} ms <= previous {last} ms"
                    )
                    continue
                last = wall_ms
                kept.append(reading)
        self.last_wall_ms = last
        if kept:
            self.readings += len(kept)
            self.handle(kept)


class ReadingBatches:
    """Hands a sampler's readings ``(monotonic_ns, ...)`` on as lists, not one by one.

    A queue put wakes the thread waiting on the queue, and waking a thread costs more CPU than reading the
    counters: one list per ``period_s`` (or per ``max_readings``) makes the consumer wake about once a
    second whatever the sampling rate, and the sampler's own tick an append. Call :meth:`flush` when
    sampling ends, so the last readings are not left behind.
    """

    __slots__ = ("_put", "_period_ns", "max_readings", "_clock_ns", "due_ns", "batch", "_emitted")

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
        self.max_readings = max_readings
        self._clock_ns = clock_ns
        self.due_ns = clock_ns() + self._period_ns  # the end of the current period
        self.batch: list[Reading] = []
        self._emitted = 0

    @property
    def count(self) -> int:
        """Readings emitted so far (handed on, or still in the batch)."""
        return self._emitted + len(self.batch)

    def __call__(self, reading: Reading) -> None:
        batch = self.batch
        batch.append(reading)
        if reading[0] >= self.due_ns or len(batch) >= self.max_readings:
            self.flush()

    def flush(self) -> None:
        """Hand on what is batched (nothing when empty); once its period is over, start the next one.

        Periods follow each other on a fixed grid (one more period from the end of the last), so a sampler
        hands on every ``period_s`` exactly, and its consumer wakes with the same rhythm.
        """
        if self.batch:
            batch, self.batch = self.batch, []
            self._emitted += len(batch)
            self._put(batch)
        now = self._clock_ns()
        if now >= self.due_ns:
            self.due_ns += self._period_ns
            if self.due_ns <= now:  # a stall longer than a period: the grid starts again from now
                self.due_ns = now + self._period_ns
