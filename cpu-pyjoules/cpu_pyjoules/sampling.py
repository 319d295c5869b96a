"""The sampling loop: read every counter on each tick of an absolute schedule and hand the reading on.

Shared by the collector thread (``pipeline.Collector``) and the sampler child process
(``sampler_process``), so both stamp and check readings the same way. Kept free of heavy imports (no
pyJoules, no protobuf) because the child process imports it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

from cpu_pyjoules.rapl_reader import READ_SIZE, CounterGlitch, RaplReader
from monitoring_client.device_loop import ReadingBatches, late_ticks_reporter
from monitoring_client.ratelimited_log import RateLimitedLog
from monitoring_client.ticker import AbsoluteTicker

RawReading = tuple[int, int, list[int]]  # (monotonic ns, wall-clock ms, counters in zone order)


# Kind of rate-limited log line (a key of RateLimitedLog, also the words of its periodic summaries); late
# ticks are reported as device_loop.LATE.
GLITCH = "unparsable counter readings"

# Reading every counter takes some microseconds; one that took longer than this was interrupted.
SLOW_READ_NS = 1_000_000


def sample_ticks(
    schedule: AbsoluteTicker,
    reader: RaplReader,
    batches: ReadingBatches,
    stop_event: threading.Event,
    warnings: RateLimitedLog,
    *,
    monotonic_ns: Callable[[], int] = time.monotonic_ns,
    wall_ns: Callable[[], int] = time.time_ns,
) -> None:
    """Run ``schedule`` until ``stop_event``; each tick adds ``(monotonic_ns, wall_ms, counters)`` to ``batches``.

    The reading is stamped with the midpoint of two monotonic clock reads around it; a read that was
    preempted (slower than ``SLOW_READ_NS``) is redone so the stamp matches the counters. Unparsable
    counter text skips the tick; ticks the schedule skipped because it ran late are reported. Both are
    rate-limited warnings.
    """
    # The tick is a closure over locals, reads the counters inline and batches the reading inline (no call):
    # it runs at the sampling rate with cold caches, where every call and attribute lookup costs. On an error
    # the reader's own read() is called, which raises the right exception (or succeeds, if the problem was
    # transient).
    read, pread, fds = reader.read, os.pread, reader.fds
    sizes, offsets = [READ_SIZE] * len(fds), [0] * len(fds)

    def tick(_k: int) -> None:
        try:
            t0 = monotonic_ns()
            try:
                values = list(map(int, map(pread, fds, sizes, offsets)))
            except (OSError, ValueError):
                values = read()
            t1 = monotonic_ns()
            if t1 - t0 > SLOW_READ_NS:
                t0 = monotonic_ns()
                values = read()
                t1 = monotonic_ns()
        except CounterGlitch as exc:
            warnings.report(GLITCH, f"unparsable RAPL counter text, sample skipped: {exc}")
            return
        batch = batches.batch
        batch.append(((t0 + t1) >> 1, wall_ns() // 1_000_000, values))
        if t1 >= batches.due_ns or len(batch) >= batches.max_readings:
            batches.flush()

    schedule.run(stop_event, tick, late_ticks_reporter(warnings))
