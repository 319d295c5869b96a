"""The absolute schedule (cpu_pyjoules.schedule), driven by an injected clock: no drift, no bursts."""

from __future__ import annotations

import random
import threading

import pytest

from cpu_pyjoules.schedule import AbsoluteSchedule
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
    for k in schedule.ticks(stop):
        seen.append((k, schedule.clock()))
        work(k)
        if len(seen) >= max_ticks:
            break
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
    assert list(AbsoluteSchedule(0.1, clock=t.clock, wait=t.wait).ticks(stopped)) == []


def test_default_wait_wakes_up_on_stop():
    stop = threading.Event()
    schedule = AbsoluteSchedule(3600.0)  # real clock: the second tick is an hour away
    ticks = schedule.ticks(stop)
    assert next(ticks) == 0
    rest = []
    runner = threading.Thread(target=lambda: rest.extend(ticks))
    runner.start()
    stop.set()
    runner.join(timeout=10)
    assert not runner.is_alive(), "the schedule kept waiting after stop was set"
    assert rest == []


def test_default_wait_with_short_intervals_stops_too():
    stop = threading.Event()
    schedule = AbsoluteSchedule(0.005)  # short waits use time.sleep and check the event after each
    seen = []

    def run_it():
        for k in schedule.ticks(stop):
            seen.append(k)

    runner = threading.Thread(target=run_it)
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
