"""The absolute schedule, driven by an injected clock: due times from the start, no drift, skipped ticks
counted and never made up in a burst; a stop ends it promptly with the real clock too."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable

import pytest

from monitoring_client.ticker import AbsoluteTicker
from testkit.wait import wait_until


class FakeTime:
    """A clock that moves when the ticker sleeps (each sleep overshoots by a random amount, as on a loaded
    machine, never undershoots) or when a tick's work says so."""

    def __init__(self, overshoot_s: float = 0.0, seed: int = 1) -> None:
        self.now = 5000.0
        self.overshoot_s = overshoot_s
        self.rng = random.Random(seed)
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.sleeps.append(seconds)
        self.now += seconds + self.rng.uniform(0, self.overshoot_s)

    def ticker(self, interval_s: float) -> AbsoluteTicker:
        return AbsoluteTicker(interval_s, clock=self.clock, sleep=self.sleep)


def run(ticker: AbsoluteTicker, t: FakeTime, work: Callable[[int], float], ticks: int) -> list[tuple[int, float]]:
    """(tick, time since start) of the first ``ticks`` ticks; ``work(k)`` is tick k's duration in seconds."""
    seen: list[tuple[int, float]] = []
    stop = threading.Event()

    def on_tick(k: int) -> None:
        seen.append((k, t.now - 5000.0))
        t.now += work(k)
        if len(seen) == ticks:
            stop.set()

    ticker.run(stop, on_tick)
    return seen


def test_no_drift_over_ten_thousand_ticks() -> None:
    t = FakeTime(overshoot_s=0.0003)
    ticker = t.ticker(0.001)
    seen = run(ticker, t, lambda k: 0.0002, 10_000)
    assert [k for k, _ in seen] == list(range(10_000))
    for k, at in seen:
        lateness = at - k * 0.001
        assert -1e-9 <= lateness <= 0.0003 + 1e-9  # each tick at most one overshoot late, never early
    # a sleep-after-work loop would now be 10 000 x (0.2 ms work + ~0.15 ms overshoot) = ~3.5 s behind
    assert seen[-1][1] < 9.9995
    assert ticker.ran == 10_000 and ticker.skipped == 0


def test_ticks_come_at_start_plus_k_intervals_whatever_the_work_takes() -> None:
    t = FakeTime()
    seen = run(t.ticker(0.1), t, lambda k: [0.003, 0.04, 0.0, 0.099, 0.007][k], 5)
    assert seen == [(k, pytest.approx(k * 0.1)) for k in range(5)]


def test_a_stall_skips_the_ticks_it_missed_and_runs_the_latest_at_once() -> None:
    t = FakeTime()
    ticker = t.ticker(0.01)
    seen = run(ticker, t, lambda k: 0.035 if k == 5 else 0.001, 12)  # tick 5 overruns by three intervals
    assert [k for k, _ in seen] == [0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 13]  # 6 and 7 skipped
    assert ticker.skipped == 2
    assert seen[6][1] == pytest.approx(0.085)  # tick 8 late (at 8.5 intervals), at once
    assert seen[7][1] == pytest.approx(0.09)  # tick 9 waits for its own due time: no burst
    gaps = [b[1] - a[1] for a, b in zip(seen, seen[1:], strict=False)]
    assert min(gaps) >= 0.005


def test_a_tick_less_than_an_interval_late_still_runs() -> None:
    t = FakeTime()
    ticker = t.ticker(0.01)
    seen = run(ticker, t, lambda k: 0.015 if k == 2 else 0.001, 6)
    assert [k for k, _ in seen] == [0, 1, 2, 3, 4, 5] and ticker.skipped == 0
    assert seen[3][1] == pytest.approx(0.035)


def test_skipped_ticks_are_reported_before_the_tick_after_them() -> None:
    t = FakeTime()
    events: list[tuple[str, int]] = []
    stop = threading.Event()

    def on_tick(k: int) -> None:
        events.append(("tick", k))
        t.now += 0.035 if k == 2 else 0.001
        if k >= 6:
            stop.set()

    t.ticker(0.01).run(stop, on_tick, lambda missed: events.append(("skipped", missed)))
    assert events == [("tick", 0), ("tick", 1), ("tick", 2), ("skipped", 2), ("tick", 5), ("tick", 6)]


def test_a_set_stop_event_runs_no_tick() -> None:
    stopped = threading.Event()
    stopped.set()
    never: list[int] = []
    FakeTime().ticker(0.1).run(stopped, never.append)
    assert never == []


def test_a_long_wait_ends_at_once_on_stop() -> None:
    stop = threading.Event()
    ticker = AbsoluteTicker(3600.0)  # real clock: the second tick is an hour away
    seen: list[int] = []
    runner = threading.Thread(target=ticker.run, args=(stop, seen.append))
    runner.start()
    wait_until(lambda: seen == [0], timeout=10, message="the first tick")
    stop.set()
    runner.join(timeout=10)
    assert not runner.is_alive(), "the ticker kept waiting after stop was set"
    assert seen == [0]


def test_short_sleeps_see_the_stop_after_each_tick() -> None:
    stop = threading.Event()
    ticker = AbsoluteTicker(0.005)
    seen: list[int] = []
    runner = threading.Thread(target=ticker.run, args=(stop, seen.append))
    runner.start()
    wait_until(lambda: len(seen) >= 5, timeout=10, message="five ticks")
    stop.set()
    runner.join(timeout=10)
    assert not runner.is_alive()
    assert seen == sorted(set(seen))  # strictly increasing tick numbers


def test_waits_up_to_max_sleep_are_plain_sleeps() -> None:
    t = FakeTime()
    run(t.ticker(AbsoluteTicker.MAX_SLEEP_S), t, lambda k: 0.0, 3)
    assert t.sleeps == [pytest.approx(AbsoluteTicker.MAX_SLEEP_S)] * 3  # after each tick: the stop is seen after it


@pytest.mark.parametrize("interval", [0, -1, float("inf"), float("nan")])
def test_bad_intervals_are_refused(interval: float) -> None:
    with pytest.raises(ValueError):
        AbsoluteTicker(interval)
