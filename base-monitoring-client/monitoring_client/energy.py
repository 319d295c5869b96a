"""Energy arithmetic shared by the power clients: totals that never run backwards and never drift.

Two ways to a joules total:

* :class:`CounterAccumulator` follows a hardware energy counter (RAPL's µJ, NVML's mJ). A counter can
  wrap at a known range, restart from zero (a driver reload) or return a reading that cannot be true;
  none of these may make the total go down. Where the counter cannot tell an interval's energy the
  caller may pass an estimate (its power readings over that interval), so the restart costs nothing.
* :class:`TrapezoidIntegrator` integrates sampled power where there is no counter (Jetson rails, GPUs
  without an energy counter): the trapezoid rule over the readings' own monotonic timestamps, so late or
  skipped ticks of the schedule cost no accuracy, summed in integers, so nothing drifts however long the
  client runs.

Both are on the processing path of every sample: plain attribute access, no allocation.
"""

from __future__ import annotations


class CounterAccumulator:
    """Monotonic total, in counter units, of an energy counter that may wrap or restart.

    ``max_units_per_s`` is the most the counter can honestly advance per second (the zone's power
    ceiling in counter units); ``allowance_s`` is extra time at that ceiling tolerated per interval, for
    counters that advance in coarse steps. ``wrap_at`` is the counter's range when it wraps, else None.

    ``update`` returns the units added to ``total``: the counter's delta when it is plausible, the
    wrap-corrected delta after a wrap, and otherwise (the counter went backwards without a plausible wrap,
    or jumped further than the ceiling allows) the caller's ``estimate`` for the interval, clamped to the
    ceiling; without an estimate, after a restart the counter's new value (what it counted since it
    restarted, a lower bound) when plausible, else nothing. Each such interval is counted in ``resets``;
    the counter is followed from its new value on.
    """

    __slots__ = ("wrap_at", "max_per_ns", "allowance_ns", "prev_raw", "prev_ns", "total", "wraps", "resets")

    def __init__(self, *, max_units_per_s: float, wrap_at: int | None = None, allowance_s: float = 0.0) -> None:
        if not max_units_per_s > 0:
            raise ValueError("max_units_per_s must be positive")
        if wrap_at is not None and wrap_at <= 0:
            raise ValueError("wrap_at must be positive or None")
        if allowance_s < 0:
            raise ValueError("allowance_s must not be negative")
        self.wrap_at = wrap_at
        self.max_per_ns = max_units_per_s / 1e9
        self.allowance_ns = int(allowance_s * 1e9)
        self.prev_raw: int | None = None
        self.prev_ns = 0
        self.total = 0
        self.wraps = 0
        self.resets = 0

    def update(self, raw: int, t_ns: int, estimate: float | None = None) -> int:
        """Feed the counter's value read at monotonic ``t_ns``; return the units added to ``total``."""
        prev = self.prev_raw
        self.prev_raw = raw
        if prev is None:
            self.prev_ns = t_ns
            return 0
        dt = t_ns - self.prev_ns
        self.prev_ns = t_ns
        limit = self.max_per_ns * (max(dt, 0) + self.allowance_ns)
        delta = raw - prev
        if 0 <= delta <= limit:
            self.total += delta
            return delta
        if delta < 0 and self.wrap_at is not None:
            wrapped = delta + self.wrap_at
            if 0 <= wrapped <= limit:
                self.wraps += 1
                self.total += wrapped
                return wrapped
        self.resets += 1
        if estimate is not None:
            gained = int(min(max(estimate, 0.0), limit) + 0.5)
        elif delta < 0 and 0 <= raw <= limit:
            gained = raw
        else:
            gained = 0
        self.total += gained
        return gained


class TrapezoidIntegrator:
    """Energy from sampled power by the trapezoid rule, exact in integers.

    Power comes in integer units (mW from NVML, µW as mV × mA from an INA3221) and time in integer
    nanoseconds, so twice the area is an exact integer; ``joules_per_unit_ns`` converts it once when read
    (1e-12 for mW·ns, 1e-15 for µW·ns). Negative power (a current sensor's offset around zero) counts as
    zero: the total is a counter and must never go down.
    """

    __slots__ = ("scale", "prev_power", "prev_ns", "twice")

    def __init__(self, joules_per_unit_ns: float) -> None:
        if not joules_per_unit_ns > 0:
            raise ValueError("joules_per_unit_ns must be positive")
        self.scale = joules_per_unit_ns / 2
        self.prev_power: int | None = None
        self.prev_ns = 0
        self.twice = 0  # twice the energy so far, in power units x ns

    def add(self, power: int, t_ns: int) -> None:
        """Feed a power reading taken at monotonic ``t_ns``; the area since the previous one is added."""
        if power < 0:
            power = 0
        prev = self.prev_power
        if prev is not None:
            dt = t_ns - self.prev_ns
            if dt <= 0:
                return  # not after the previous reading: nothing to add, keep the earlier anchor
            self.twice += (prev + power) * dt
        self.prev_power = power
        self.prev_ns = t_ns

    def interval_joules(self, power: int, t_ns: int) -> float:
        """Joules between the previous reading and a reading of ``power`` at ``t_ns``, without adding it."""
        prev = self.prev_power
        dt = t_ns - self.prev_ns
        if prev is None or dt <= 0:
            return 0.0
        return (prev + max(power, 0)) * dt * self.scale

    @property
    def joules(self) -> float:
        """Energy since the first reading, J."""
        return self.twice * self.scale
