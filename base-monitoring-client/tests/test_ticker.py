"""The absolute schedule: due times from the start, skipped ticks counted, never made up in a burst."""

from __future__ import annotations

import threading

import pytest

from monitoring_client.ticker import AbsoluteTicker

MS = 1_000_000


class FakeTime:
    """A clock in ns that moves only when the ticker sleeps or the test says so."""

    def __init__(self) -> None:
        self.now = 10 * MS
        self.sleeps: list[float] = []

    def clock(self) -> int:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += round(seconds * 1e9)


def run(ticker: AbsoluteTicker, fake: FakeTime, work_ms: list[int]) -> list[tuple[int, int]]:
    """Run one tick per entry of ``work_ms`` (time the tick's work takes); return (tick, time) pairs."""
    stop = threading.Event()
    seen = []
    for tick in ticker.ticks(stop):
        seen.append((tick, fake.now - 10 * MS))
        fake.now += work_ms[len(seen) - 1] * MS
        if len(seen) == len(work_ms):
            stop.set()
    return seen


def test_ticks_come_at_start_plus_k_intervals_whatever_the_work_takes() -> None:
    fake = FakeTime()
    ticker = AbsoluteTicker(0.1, clock_ns=fake.clock, sleep=fake.sleep)
    seen = run(ticker, fake, [3, 40, 0, 99, 7])
    assert seen == [(k, k * 100 * MS) for k in range(5)]
    assert ticker.ran == 5 and ticker.skipped == 0


def test_a_stall_skips_the_missed_ticks_and_counts_them() -> None:
    fake = FakeTime()
    ticker = AbsoluteTicker(0.1, clock_ns=fake.clock, sleep=fake.sleep)
    seen = run(ticker, fake, [350, 1, 1])  # tick 0 overruns until 350 ms: ticks 1, 2 and 3 are past
    assert seen == [(0, 0), (3, 350 * MS), (4, 400 * MS)]
    assert ticker.skipped == 2 and ticker.ran == 3


def test_long_waits_go_through_the_stop_event() -> None:
    fake = FakeTime()
    ticker = AbsoluteTicker(10, clock_ns=fake.clock, sleep=fake.sleep)
    stop = threading.Event()
    ticks = ticker.ticks(stop)
    assert next(ticks) == 0
    stop.set()  # the 10 s wait returns at once because the event is set
    assert list(ticks) == []
    assert fake.sleeps == []


@pytest.mark.parametrize("interval", [0, -1, float("inf"), float("nan")])
def test_bad_intervals_are_refused(interval: float) -> None:
    with pytest.raises(ValueError):
        AbsoluteTicker(interval)
