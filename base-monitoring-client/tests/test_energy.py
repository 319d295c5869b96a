"""Energy arithmetic: counter totals that never go down, exact trapezoid integration."""

from __future__ import annotations

import pytest

from monitoring_client.energy import CounterAccumulator, TrapezoidIntegrator

S = 1_000_000_000  # ns per second


def feed(acc: CounterAccumulator, readings: list[tuple[int, int]]) -> list[int]:
    return [acc.update(raw, t) for raw, t in readings]


def test_a_steady_counter_adds_its_deltas() -> None:
    acc = CounterAccumulator(max_units_per_s=1000)
    assert feed(acc, [(500, 0), (600, S // 10), (700, 2 * S // 10)]) == [0, 100, 100]
    assert acc.total == 200 and acc.resets == 0 and acc.wraps == 0


def test_a_wrap_at_the_known_range_is_corrected() -> None:
    acc = CounterAccumulator(max_units_per_s=1000, wrap_at=1000)
    assert feed(acc, [(950, 0), (50, S // 10)]) == [0, 100]
    assert acc.wraps == 1 and acc.resets == 0 and acc.total == 100


def test_a_restart_without_estimate_counts_what_the_counter_counted_since() -> None:
    acc = CounterAccumulator(max_units_per_s=1000)
    assert feed(acc, [(10_000, 0), (40, S // 10), (140, 2 * S // 10)]) == [0, 40, 100]
    assert acc.resets == 1 and acc.total == 140


def test_a_restart_uses_the_callers_estimate_clamped_to_the_ceiling() -> None:
    acc = CounterAccumulator(max_units_per_s=1000)
    acc.update(10_000, 0)
    assert acc.update(40, S // 10, estimate=99.6) == 100
    assert acc.update(0, 2 * S // 10, estimate=5000.0) == 100  # 0.1 s at 1000 units/s at most
    assert acc.update(0, 3 * S // 10, estimate=-3.0) == 0
    assert acc.total == 200 and acc.resets == 2


def test_an_impossible_forward_jump_adds_nothing_and_the_counter_is_followed_from_there() -> None:
    acc = CounterAccumulator(max_units_per_s=1000)
    assert feed(acc, [(0, 0), (10**9, S // 10), (10**9 + 100, 2 * S // 10)]) == [0, 0, 100]
    assert acc.resets == 1 and acc.total == 100


def test_a_single_garbage_reading_costs_at_most_its_intervals_when_estimated() -> None:
    acc = CounterAccumulator(max_units_per_s=1000)
    acc.update(0, 0)
    assert acc.update(10**12, S // 10, estimate=100) == 100
    assert acc.update(200, 2 * S // 10, estimate=100) == 100  # backwards from the garbage: a reset
    assert acc.update(300, 3 * S // 10) == 100
    assert acc.total == 300


def test_an_allowance_tolerates_coarse_counter_steps() -> None:
    strict = CounterAccumulator(max_units_per_s=1000)
    lenient = CounterAccumulator(max_units_per_s=1000, allowance_s=1.0)
    for acc in (strict, lenient):
        acc.update(0, 0)
        acc.update(900, S // 100)  # 0.9 s worth of steps arriving in 10 ms
    assert strict.total == 0 and strict.resets == 1
    assert lenient.total == 900 and lenient.resets == 0


def test_the_total_never_decreases_whatever_the_counter_does() -> None:
    acc = CounterAccumulator(max_units_per_s=50, wrap_at=1000)
    raws = [5, 9, 999, 3, 3, 0, 700, 2, 2**40, 1, 17]
    totals = []
    for i, raw in enumerate(raws):
        acc.update(raw, i * S)
        totals.append(acc.total)
    assert totals == sorted(totals)


@pytest.mark.parametrize("kwargs", [{"max_units_per_s": 0}, {"max_units_per_s": 1, "wrap_at": 0}])
def test_bad_parameters_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        CounterAccumulator(**kwargs)  # type: ignore[arg-type]


def test_trapezoid_is_exact_for_piecewise_linear_power() -> None:
    integ = TrapezoidIntegrator(1e-12)  # mW x ns
    integ.add(100_000, 0)  # 100 W
    integ.add(100_000, S)  # constant: 100 J
    integ.add(200_000, 2 * S)  # ramp 100 -> 200 W: 150 J
    assert integ.joules == pytest.approx(250.0, rel=1e-15)
    assert integ.twice == 2 * 250 * 10**12


def test_trapezoid_uses_the_readings_own_times_not_a_nominal_interval() -> None:
    integ = TrapezoidIntegrator(1e-15)  # µW x ns
    t = 0
    for gap in (100, 130, 70, 400, 100):  # late and early ticks, one skipped
        integ.add(5_000_000, t)  # 5 W
        t += gap * 1_000_000
    integ.add(5_000_000, t)
    assert integ.joules == pytest.approx(5.0 * t / S, rel=1e-12)


def test_trapezoid_counts_negative_power_as_zero_and_ignores_non_increasing_times() -> None:
    integ = TrapezoidIntegrator(1e-12)
    integ.add(-5_000, 0)
    integ.add(-5_000, S)
    assert integ.joules == 0.0
    integ.add(1_000, 2 * S)  # ramp 0 -> 1 W over 1 s
    assert integ.joules == pytest.approx(0.5)
    integ.add(900_000, 2 * S)  # same time again: no area, the earlier reading stays the anchor
    integ.add(1_000, 3 * S)
    assert integ.joules == pytest.approx(1.5)


def test_trapezoid_interval_estimate_does_not_add() -> None:
    integ = TrapezoidIntegrator(1e-12)
    assert integ.interval_joules(1_000, S) == 0.0  # nothing before it
    integ.add(1_000, 0)
    assert integ.interval_joules(3_000, S) == pytest.approx(2.0)
    assert integ.joules == 0.0
