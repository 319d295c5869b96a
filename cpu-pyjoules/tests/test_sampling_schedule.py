"""The absolute schedule (cpu_pyjoules.schedule), driven by an injected clock: no drift, no bursts."""

from __future__ import annotations

import logging
import os
import random
import threading

import pytest

from cpu_pyjoules.rapl_reader import RaplReader
from cpu_pyjoules.sampling import GLITCH, sample_ticks
from cpu_pyjoules.schedule import AbsoluteSchedule
from monitoring_client.errors import EnvironmentProblem
from monitoring_client.ratelimited_log import RateLimitedLog
from testkit.wait import wait_until


class FakeTime:
    """A clock whose waits overshoot by a random amount, like a loaded machine's sleeps."""

    def __init__(self, overshoot_s: float = 0.0, seed: int = 1, undershoot: bool = False) -> None:
        self.now = 5000.0
        self.overshoot_s = overshoot_s
        self.rng = random.Random(seed)
        self.undershoot = undershoot
        self.stop_at = float("inf")

    def clock(self) -> float:
        return self.now

    def wait(self, seconds: float) -> bool:
        assert seconds > 0
        if self.undershoot and self.rng.random() < 0.3:
            self.now += seconds * 0.5  # woke up early
        else:
            self.now += seconds + self.rng.uniform(0, self.overshoot_s)
        return self.now >= self.stop_at


def run(schedule, stop, work, max_ticks):
    """Collect (tick, time) pairs; ``work(k)`` advances the fake clock by the work time of tick k."""
    seen = []
    enough = threading.Event()
    stop_or_enough = stop if stop.is_set() else enough

    def on_tick(k):
        seen.append((k, schedule.clock()))
        work(k)
        if len(seen) >= max_ticks:
            enough.set()

    schedule.run(stop_or_enough, on_tick)
    return seen


def test_no_drift_over_ten_thousand_ticks():
    t = FakeTime(overshoot_s=0.0003)
    schedule = AbsoluteSchedule(0.001, clock=t.clock, wait=t.wait)
    seen = run(schedule, threading.Event(), lambda k: setattr(t, "now", t.now + 0.0002), 10_000)
    start = schedule.start
    assert [k for k, _ in seen] == list(range(10_000))
    for k, at in seen:
        lateness = at - (start + k * 0.001)
        assert 0 <= lateness <= 0.0003 + 1e-9  # each tick at most one overshoot late, never early
    # a sleep-after-work loop would now be 10 000 x (0.2 ms work + ~0.15 ms overshoot) = ~3.5 s behind
    assert seen[-1][1] - start < 9.9995


def test_early_wakeups_do_not_run_ticks_early():
    t = FakeTime(undershoot=True)
    schedule = AbsoluteSchedule(0.1, clock=t.clock, wait=t.wait)
    seen = run(schedule, threading.Event(), lambda k: None, 200)
    assert [k for k, _ in seen] == list(range(200))
    assert all(at >= schedule.due(k) for k, at in seen)


def test_late_ticks_are_skipped_not_burst():
    t = FakeTime()
    interval = 0.01
    schedule = AbsoluteSchedule(interval, clock=t.clock, wait=t.wait)

    def work(k):
        t.now += 0.035 if k == 5 else 0.001  # tick 5 stalls for 3.5 intervals

    seen = run(schedule, threading.Event(), work, 12)
    ticks = [k for k, _ in seen]
    assert ticks == [0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 13]  # 6 and 7 skipped
    assert schedule.skipped == 2
    times = [at for _, at in seen]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert min(gaps) >= interval / 2  # tick 8 runs late (at 8.5 intervals), tick 9 waits for its own due time
    assert seen[6][1] - schedule.start == pytest.approx(0.085, abs=1e-9)
    assert seen[7][1] - schedule.start == pytest.approx(0.09, abs=1e-9)


def test_stop_event_ends_the_schedule():
    t = FakeTime()
    t.stop_at = t.now + 0.25
    schedule = AbsoluteSchedule(0.1, clock=t.clock, wait=t.wait)
    seen = run(schedule, threading.Event(), lambda k: None, 100)
    assert [k for k, _ in seen] == [0, 1, 2]

    stopped = threading.Event()
    stopped.set()
    never = []
    AbsoluteSchedule(0.1, clock=t.clock, wait=t.wait).run(stopped, never.append)
    assert never == []


def test_skipped_ticks_are_reported_before_the_tick_after_them():
    t = FakeTime()
    schedule = AbsoluteSchedule(0.01, clock=t.clock, wait=t.wait)
    events = []
    stop = threading.Event()

    def on_tick(k):
        events.append(("tick", k))
        t.now += 0.035 if k == 2 else 0.001
        if k >= 6:
            stop.set()

    schedule.run(stop, on_tick, lambda missed: events.append(("skipped", missed)))
    assert events == [("tick", 0), ("tick", 1), ("tick", 2), ("skipped", 2), ("tick", 5), ("tick", 6)]


def test_default_wait_wakes_up_on_stop():
    stop = threading.Event()
    schedule = AbsoluteSchedule(3600.0)  # real clock: the second tick is an hour away
    seen = []
    runner = threading.Thread(target=schedule.run, args=(stop, seen.append))
    runner.start()
    wait_until(lambda: seen == [0], timeout=10, message="the first tick")
    stop.set()
    runner.join(timeout=10)
    assert not runner.is_alive(), "the schedule kept waiting after stop was set"
    assert seen == [0]


def test_default_wait_with_short_intervals_stops_too():
    stop = threading.Event()
    schedule = AbsoluteSchedule(0.005)  # short waits use time.sleep and check the event after each
    seen = []

    runner = threading.Thread(target=schedule.run, args=(stop, seen.append))
    runner.start()
    wait_until(lambda: len(seen) >= 5, timeout=10, message="five ticks")
    stop.set()
    runner.join(timeout=10)
    assert not runner.is_alive()
    assert seen == sorted(set(seen))  # strictly increasing tick numbers


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf")])
def test_interval_must_be_positive(bad):
    with pytest.raises(ValueError):
        AbsoluteSchedule(bad)


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

    def emit(reading):
        emitted.append(reading)
        if len(emitted) == 1:
            paths[1].write_text("garbage\n")  # the next tick cannot parse this counter
        if len(emitted) == 2:
            stop.set()

    def wait(seconds):
        if len(emitted) == 1 and warnings.total(GLITCH) == 1:
            paths[1].write_text("250\n")  # good again after one glitch
        return t.wait(seconds)

    with RaplReader(paths) as reader:
        sample_ticks(AbsoluteSchedule(0.1, clock=t.clock, wait=wait), reader, emit, stop, warnings)
    assert [values for _, _, values in emitted] == [[100, 200], [100, 250]]
    assert warnings.total(GLITCH) == 1
    assert all(type(t_ns) is int and type(wall_ms) is int for t_ns, wall_ms, _ in emitted)


def test_sample_ticks_raises_the_readers_error_when_a_counter_cannot_be_read(tmp_path):
    t = FakeTime()
    with RaplReader(counters(tmp_path, "1\n")) as reader:
        os.close(reader.fds[0])  # the descriptor goes bad under the sampler
        with pytest.raises(EnvironmentProblem, match="energy_uj_0"):
            sample_ticks(
                AbsoluteSchedule(0.1, clock=t.clock, wait=t.wait),
                reader,
                lambda reading: None,
                threading.Event(),
                RateLimitedLog(logging.getLogger("test"), 60.0),
            )
