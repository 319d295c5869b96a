"""Wrap correction and the plausibility rules: exact energy across wraps, never a negative value."""

from __future__ import annotations

import random

import pytest

from cpu_pyjoules.wraparound import STEP_ALLOWANCE_NS, CounterTracker

MS = 1_000_000  # ns


def feed(tracker, readings):
    """readings: [(raw, t_ns)] -> list of update() results."""
    return [tracker.update(raw, t) for raw, t in readings]


def test_first_reading_is_a_baseline():
    tracker = CounterTracker(1000_000_000, ceiling_w=500)
    assert tracker.update(123, 0) is None
    assert tracker.update(2_623, 100 * MS) == (2_500, 100 * MS)
    assert tracker.total_uj == 2_500 and tracker.dropped == 0


def test_wrap_is_corrected_with_the_zone_range():
    tracker = CounterTracker(max_range_uj=10_000_000, ceiling_w=500)
    results = feed(tracker, [(9_000_000, 0), (1_500_000, 100 * MS)])
    assert results[1] == (2_500_000, 100 * MS)  # 1.0 J to the wrap + 1.5 J after it
    assert tracker.wraps == 1


@pytest.mark.parametrize(
    "range_j, min_wraps",
    [
        (400, 10),  # 25 W: a wrap every 16 s, several a minute
        (6, 700),  # a wrap every 240 ms, with intervals of up to 200 ms: nearly one wrap per interval
    ],
)
def test_several_wraps_a_minute_lose_nothing(range_j, min_wraps):
    """A 25 W zone sampled at irregular 50-200 ms intervals for 3 minutes."""
    rng = random.Random(7)
    watts, range_uj = 25.0, range_j * 1_000_000
    tracker = CounterTracker(range_uj, ceiling_w=1500)
    true_uj, t_ns, emitted = 1_234_567, 0, 0
    assert tracker.update(true_uj % range_uj, t_ns) is None
    while t_ns < 180_000 * MS:
        dt = rng.randint(50 * MS, 200 * MS)
        t_ns += dt
        true_uj += int(watts * dt / 1000)
        delta, interval = tracker.update(true_uj % range_uj, t_ns)
        assert delta >= 0 and interval == dt
        assert delta * 1000 / interval == pytest.approx(watts, rel=1e-3)
        emitted += delta
    assert tracker.wraps >= min_wraps
    assert emitted == tracker.total_uj == true_uj - 1_234_567
    assert tracker.dropped == 0


def test_unknown_range_drops_a_backwards_reading():
    tracker = CounterTracker(max_range_uj=None, ceiling_w=500)
    results = feed(tracker, [(9_000_000, 0), (1_000_000, 100 * MS)])
    assert results[1] is None and tracker.dropped == 1 and tracker.total_uj == 0


def test_above_the_ceiling_is_dropped():
    tracker = CounterTracker(max_range_uj=10**12, ceiling_w=100)
    # 100 W for 100 ms is 10 J; allow the step tolerance; 50 J is impossible
    limit = 100 * (100 * MS + STEP_ALLOWANCE_NS) // 1000
    assert feed(tracker, [(0, 0), (limit, 100 * MS)])[1] == (limit, 100 * MS)
    assert tracker.update(limit + 50_000_000, 200 * MS) is None
    assert tracker.dropped == 1


def test_a_single_glitch_loses_no_energy():
    """One torn/odd reading between good ones: the next good reading spans both intervals."""
    tracker = CounterTracker(max_range_uj=10**12, ceiling_w=500)
    results = feed(tracker, [(1_000_000, 0), (3_500_000, 100 * MS), (999_999_999, 200 * MS), (8_500_000, 300 * MS)])
    assert results[1] == (2_500_000, 100 * MS)
    assert results[2] is None
    assert results[3] == (5_000_000, 200 * MS)  # from the last good reading, over two intervals
    assert tracker.total_uj == 7_500_000
    assert tracker.dropped == 1


def test_a_real_jump_reanchors_at_the_new_value():
    """A counter that restarts from a new value (e.g. driver reload) is followed after one reading."""
    tracker = CounterTracker(max_range_uj=10**12, ceiling_w=500)
    results = feed(
        tracker, [(500_000_000_000, 0), (500_002_500_000, 100 * MS), (7_000, 200 * MS), (2_507_000, 300 * MS)]
    )
    assert results[2] is None
    assert results[3] == (2_500_000, 100 * MS)  # measured from the new anchor
    assert tracker.total_uj == 5_000_000


def test_no_interval_gives_nothing():
    tracker = CounterTracker(max_range_uj=10**6, ceiling_w=500)
    assert feed(tracker, [(10, 5 * MS), (20, 5 * MS)]) == [None, None]


def test_random_garbage_never_yields_negative_or_impossible_values():
    rng = random.Random(3)
    range_uj = 50_000_000
    tracker = CounterTracker(range_uj, ceiling_w=300)
    t = 0
    for _ in range(20_000):
        t += rng.randint(0, 20 * MS)
        raw = rng.choice([rng.randint(0, range_uj), rng.randint(-10, 10**13)])
        result = tracker.update(raw, t)
        if result is not None:
            delta, interval = result
            assert delta >= 0 and interval > 0
            assert delta * 1000 <= 300 * (interval + STEP_ALLOWANCE_NS)
    assert tracker.total_uj >= 0
