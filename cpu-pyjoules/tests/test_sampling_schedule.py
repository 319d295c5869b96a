"""The sampling loop (cpu_pyjoules.sampling) on the base client's absolute schedule, driven by a fake clock.

The schedule itself (no drift, skipped ticks, stop) is tested with the base client (``test_ticker.py``)."""

from __future__ import annotations

import logging
import os
import threading

import pytest

from cpu_pyjoules.rapl_reader import RaplReader
from cpu_pyjoules.sampling import GLITCH, sample_ticks
from monitoring_client.device_loop import ReadingBatches
from monitoring_client.errors import EnvironmentProblem
from monitoring_client.ratelimited_log import RateLimitedLog
from monitoring_client.ticker import AbsoluteTicker


class FakeTime:
    """A clock that moves only when the schedule sleeps."""

    def __init__(self) -> None:
        self.now = 5000.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def counters(tmp_path, *texts):
    paths = []
    for i, text in enumerate(texts):
        path = tmp_path / f"energy_uj_{i}"
        path.write_text(text)
        paths.append(path)
    return paths


def test_sample_ticks_reads_every_counter_skips_unparsable_text_and_reports_it(tmp_path):
    paths = counters(tmp_path, "100\n", "200\n")
    t = FakeTime()
    stop, emitted = threading.Event(), []
    warnings = RateLimitedLog(logging.getLogger("test"), 60.0)

    def emit(readings):  # every reading on its own (max_readings=1)
        (reading,) = readings
        emitted.append(reading)
        if len(emitted) == 1:
            paths[1].write_text("garbage\n")  # the next tick cannot parse this counter
        if len(emitted) == 2:
            stop.set()

    def sleep(seconds):
        if len(emitted) == 1 and warnings.total(GLITCH) == 1:
            paths[1].write_text("250\n")  # good again after one glitch
        t.sleep(seconds)

    with RaplReader(paths) as reader:
        batches = ReadingBatches(emit, max_readings=1)
        sample_ticks(AbsoluteTicker(0.1, clock=t.clock, sleep=sleep), reader, batches, stop, warnings)
    assert [values for _, _, values in emitted] == [[100, 200], [100, 250]]
    assert warnings.total(GLITCH) == 1
    assert all(type(t_ns) is int and type(wall_ms) is int for t_ns, wall_ms, _ in emitted)


def test_sample_ticks_raises_the_readers_error_when_a_counter_cannot_be_read(tmp_path):
    t = FakeTime()
    with RaplReader(counters(tmp_path, "1\n")) as reader:
        os.close(reader.fds[0])  # the descriptor goes bad under the sampler
        with pytest.raises(EnvironmentProblem, match="energy_uj_0"):
            sample_ticks(
                AbsoluteTicker(0.1, clock=t.clock, sleep=t.sleep),
                reader,
                ReadingBatches(lambda readings: None),
                threading.Event(),
                RateLimitedLog(logging.getLogger("test"), 60.0),
            )
