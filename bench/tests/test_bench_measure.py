"""Tick statistics on synthetic tick times: the arithmetic the schedule figures rest on."""

from __future__ import annotations

import random

from bench.measure import TickStats, due_phase, percentile

MS = 1_000_000


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([5], 99) == 5


def test_a_schedule_that_skips_two_slots_took_all_but_two() -> None:
    ticks = [k * MS + 20_000 for k in range(100) if k not in (40, 41)]
    stats = TickStats.from_times(0.001, ticks)
    assert (stats.due, stats.taken) == (100, 98)
    assert max(stats.lateness_ms) < 0.001  # every tick 20 µs after its slot, like the first


def test_ticks_quicker_than_the_first_are_not_counted_as_almost_an_interval_late() -> None:
    rng = random.Random(7)
    first = 60_000  # the first tick is slow (cold reads)
    ticks = [first] + [k * MS + rng.randint(5_000, 50_000) for k in range(1, 2000)]
    stats = TickStats.from_times(0.001, ticks)
    assert stats.late(99) < 0.05  # without the correction about half would show ~0.95 ms
    assert -60_000 <= due_phase([t - first for t in ticks], MS) < -50_000


def test_a_drifting_loop_takes_fewer_slots_than_due() -> None:
    ticks = [int(k * 1.37 * MS) for k in range(1000)]
    stats = TickStats.from_times(0.001, ticks)
    assert 0.72 < stats.taken_fraction < 0.74
    assert abs(stats.rate_hz - 1000 / 1.37) < 1
