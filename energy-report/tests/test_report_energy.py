"""Exact energy from raw counter samples: edges, resets, gaps, neighbouring power, streaming."""

from __future__ import annotations

import random

import pytest

from energy_report.energy import MISSING, NO_DATA_AFTER, NO_DATA_BEFORE, RESET, EnergyAccumulator


def run(start: float, end: float, samples: list[tuple[float, float]]):
    acc = EnergyAccumulator(start, end)
    for t, v in samples:
        acc.add(t, v)
    return acc.finish()


def counter(watts: float, times: list[float], offset: float = 100.0) -> list[tuple[float, float]]:
    return [(t, offset + watts * t) for t in times]


def ticks(lo: float, hi: float, step: float) -> list[float]:
    n = round((hi - lo) / step)
    return [lo + i * step for i in range(n + 1)]


def test_constant_power_is_exact_at_edges_between_samples() -> None:
    # samples every 0.1 s; the window's edges fall between samples
    res = run(1.03, 9.97, counter(20.0, ticks(0, 11, 0.1)))
    assert res.joules == pytest.approx(20.0 * 8.94, rel=1e-12)
    assert res.coverage == pytest.approx(1.0) and res.gaps == [] and res.resets == 0
    assert res.avg_watts == pytest.approx(20.0) and res.samples == 89
    assert res.sampling_interval_s == pytest.approx(0.1)


def test_edge_interpolation_is_linear_within_the_interval() -> None:
    # a step of power inside one interval is spread evenly over it: the edge share is proportional
    samples = [(0.0, 0.0), (1.0, 10.0), (2.0, 30.0), (3.0, 31.0)]
    res = run(0.5, 2.5, samples)
    assert res.joules == pytest.approx(5.0 + 20.0 + 0.5)


def test_a_restart_sums_segments_and_estimates_the_time_between_them() -> None:
    before = counter(10.0, ticks(0, 5, 0.1), offset=500.0)
    after = [(t, 0.3 + 10.0 * (t - 7.0)) for t in ticks(7.0, 12, 0.1)]  # new client counts from ~zero
    res = run(1.0, 11.0, before + after)
    assert res.resets == 1
    (gap,) = res.gaps
    assert (gap.start, gap.end, gap.reason, gap.measured) == (5.0, 7.0, RESET, False)
    assert res.joules == pytest.approx(10.0 * 8.0)
    assert res.joules_estimated_gaps == pytest.approx(10.0 * 2.0)
    assert res.coverage == pytest.approx(0.8)


def test_gap_estimate_averages_the_power_on_both_sides() -> None:
    before = counter(10.0, ticks(0, 5, 0.1))
    after = [(t, 30.0 * (t - 7.0)) for t in ticks(7.0, 30, 0.1)]
    res = run(0.0, 20.0, before + after)
    (gap,) = res.gaps
    assert gap.joules == pytest.approx((10.0 + 30.0) / 2 * 2.0)


def test_missing_samples_without_a_reset_are_listed_but_measured_by_the_counter() -> None:
    times = [t for t in ticks(0, 10, 0.1) if not 4.0 < t < 6.0]
    res = run(0.0, 10.0, counter(7.0, times))
    (gap,) = res.gaps
    assert gap.reason == MISSING and gap.measured and gap.seconds == pytest.approx(2.0)
    assert gap.joules == pytest.approx(14.0)
    assert res.joules == pytest.approx(70.0) and res.joules_estimated_gaps == 0 and res.coverage == 1.0


def test_series_that_start_late_and_stop_early_leave_leading_and_trailing_gaps() -> None:
    res = run(0.0, 10.0, counter(5.0, ticks(2.0, 7.0, 0.1)))
    reasons = [(g.reason, g.start, g.end) for g in res.gaps]
    assert reasons == [(NO_DATA_BEFORE, 0.0, 2.0), (NO_DATA_AFTER, 7.0, 10.0)]
    assert res.joules == pytest.approx(25.0) and res.joules_estimated_gaps == pytest.approx(25.0)
    assert res.coverage == pytest.approx(0.5)


def test_no_samples_at_all() -> None:
    res = run(0.0, 10.0, [])
    assert res.joules == 0 and res.coverage == 0 and res.avg_watts is None
    assert [g.reason for g in res.gaps] == [NO_DATA_BEFORE] and res.joules_estimated_gaps == 0


def test_samples_outside_the_window_only_bracket_it() -> None:
    res = run(5.0, 6.0, counter(3.0, ticks(0, 20, 1.0)))
    assert res.joules == pytest.approx(3.0) and res.samples == 2


def test_short_series_use_the_same_rules_without_a_learned_interval() -> None:
    res = run(0.0, 2.0, [(-1.0, 0.0), (3.0, 8.0)])
    assert res.joules == pytest.approx(4.0) and res.coverage == 1.0 and res.sampling_interval_s == 4.0


def test_jittered_samples_sum_to_the_truth_whatever_the_chunking() -> None:
    rng = random.Random(7)
    t, value, samples = -1.0, 0.0, []
    while t < 101:
        step = rng.uniform(0.05, 0.15)
        watts = rng.uniform(5, 50)
        t += step
        value += watts * step
        samples.append((t, value))

    def truth(at: float) -> float:
        for (ta, va), (tb, vb) in zip(samples, samples[1:], strict=False):
            if ta <= at <= tb:
                return va + (vb - va) * (at - ta) / (tb - ta)
        raise AssertionError(at)

    res = run(0.0, 100.0, samples)
    assert res.joules == pytest.approx(truth(100.0) - truth(0.0), rel=1e-9)
    peak = max((vb - va) / (tb - ta) for (ta, va), (tb, vb) in zip(samples, samples[1:], strict=False) if tb > 0)
    assert res.peak_interval_watts == pytest.approx(peak)


def test_window_must_not_be_empty() -> None:
    with pytest.raises(ValueError):
        EnergyAccumulator(5.0, 5.0)
