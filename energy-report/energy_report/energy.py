"""Exact energy of one counter series over a window, from its raw samples, streamed in time order.

Why not ``increase()``: Prometheus extrapolates it to the window's edges from the samples inside and
treats every drop as a reset counted from zero, so it is neither exact at the edges nor honest about the time
a client was down. Here, between two consecutive samples the counter's increase is spread evenly over the
interval (constant power within one sampling interval), which makes the window's edges exact up to that
interpolation. Then:

* a drop of the counter is a reset (the client restarted and counts from zero again): the energy of each
  segment is summed, and the interval across the reset, when nothing measured the device, is a gap;
* a gap is time inside the window that no counter interval measures: across a reset, before the series'
  first sample or after its last one. It is excluded from ``joules`` and estimated separately at the
  neighbouring power (the average over up to ``neighbour_s`` of measured intervals on each side);
* an interval much longer than the series' sampling interval without a reset (samples lost on the way,
  the client alive) is listed too, but the counter kept counting across it, so its energy is measured.

Only a few values per series are kept (a short prefix to learn the sampling interval, the recent intervals
for the neighbouring power), so any window length streams in bounded memory.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass, field

GAP_FACTOR = 4.0  # an interval longer than this many median sampling intervals is listed as a gap
PREFIX_SAMPLES = 65  # samples used to learn the sampling interval before classifying intervals
NEIGHBOUR_S = 10.0  # how much measured time on each side of a gap sets its estimated power

RESET = "counter reset"
NO_DATA_BEFORE = "no data before"
NO_DATA_AFTER = "no data after"
MISSING = "samples missing"


@dataclass
class Gap:
    """Time in the window that the counter did not measure (or measured across missing samples)."""

    start: float
    end: float
    reason: str
    measured: bool  # True: the counter spans it (its energy is in ``joules``); False: estimated
    joules: float = 0.0  # measured energy, or the estimate once the neighbouring power is known
    _before: tuple[float, float] | None = None  # (joules, seconds) of measured time before it
    _after_j: float = 0.0
    _after_s: float = 0.0

    @property
    def seconds(self) -> float:
        return self.end - self.start

    def estimate(self) -> None:
        """Estimated energy at the average of the neighbouring power before and after the gap."""
        powers = []
        if self._before is not None and self._before[1] > 0:
            powers.append(self._before[0] / self._before[1])
        if self._after_s > 0:
            powers.append(self._after_j / self._after_s)
        self.joules = (sum(powers) / len(powers)) * self.seconds if powers else 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "seconds": round(self.seconds, 3),
            "reason": self.reason,
            "measured": self.measured,
            "joules": self.joules,
        }


@dataclass
class SeriesEnergy:
    """The window's figures for one counter series."""

    start: float
    end: float
    joules: float = 0.0
    joules_estimated_gaps: float = 0.0
    covered_s: float = 0.0
    samples: int = 0
    resets: int = 0
    peak_interval_watts: float | None = None
    sampling_interval_s: float | None = None
    last_sample_t: float | None = None  # the series' newest sample seen (after the window when there is one)
    gaps: list[Gap] = field(default_factory=list)

    @property
    def coverage(self) -> float:
        span = self.end - self.start
        return min(1.0, self.covered_s / span) if span > 0 else 0.0

    @property
    def avg_watts(self) -> float | None:
        return self.joules / self.covered_s if self.covered_s > 0 else None


class EnergyAccumulator:
    """Feed ``add(t, value)`` in time order (samples outside the window too: they bracket its edges)."""

    def __init__(self, start: float, end: float, *, gap_factor: float = GAP_FACTOR, neighbour_s: float = NEIGHBOUR_S):
        if not end > start:
            raise ValueError("the window must end after it starts")
        self.start = start
        self.end = end
        self.gap_factor = gap_factor
        self.neighbour_s = neighbour_s
        self.result = SeriesEnergy(start, end)
        self._prefix: list[tuple[float, float]] | None = []
        self._gap_s = float("inf")
        self._prev: tuple[float, float] | None = None
        self._recent: deque[tuple[float, float, float]] = deque()  # (t_end, joules, seconds) of measured time
        self._pending: list[Gap] = []  # gaps still collecting the power after them

    def add(self, t: float, value: float) -> None:
        if self._prefix is not None:
            self._prefix.append((t, value))
            if len(self._prefix) >= PREFIX_SAMPLES:
                self._flush_prefix()
            return
        self._take(t, value)

    def _flush_prefix(self) -> None:
        prefix, self._prefix = self._prefix or [], None
        intervals = [b[0] - a[0] for a, b in zip(prefix, prefix[1:], strict=False) if b[0] > a[0]]
        if intervals:
            median = statistics.median(intervals)
            self.result.sampling_interval_s = median
            self._gap_s = self.gap_factor * median
        for t, value in prefix:
            self._take(t, value)

    def _take(self, t: float, value: float) -> None:
        res = self.result
        if self.start <= t <= self.end:
            res.samples += 1
        prev = self._prev
        self._prev = (t, value)
        res.last_sample_t = t if res.last_sample_t is None else max(res.last_sample_t, t)
        if prev is None:
            if t > self.start:
                self._open_gap(self.start, min(t, self.end), NO_DATA_BEFORE)
            return
        ta, va = prev
        if t <= ta:  # a duplicate timestamp (not stored by Prometheus, possible in merged data): ignore
            self._prev = prev
            return
        lo, hi = max(ta, self.start), min(t, self.end)
        overlap = hi - lo
        if value < va:  # counter reset: nothing measured between the two samples
            if overlap > 0:
                res.resets += 1
                self._open_gap(lo, hi, RESET)
            return
        joules = value - va
        seconds = t - ta
        if overlap > 0:
            share = joules * overlap / seconds
            res.joules += share
            res.covered_s += overlap
            watts = joules / seconds
            if res.peak_interval_watts is None or watts > res.peak_interval_watts:
                res.peak_interval_watts = watts
            if seconds > self._gap_s:
                res.gaps.append(Gap(lo, hi, MISSING, measured=True, joules=share))
        self._measured(t, joules, seconds)

    def _measured(self, t_end: float, joules: float, seconds: float) -> None:
        """Remember measured time for the neighbouring power of gaps before and after it."""
        still = []
        for gap in self._pending:
            need = self.neighbour_s - gap._after_s
            take = min(seconds, need)
            gap._after_j += joules * take / seconds
            gap._after_s += take
            if gap._after_s >= self.neighbour_s - 1e-9:
                gap.estimate()
            else:
                still.append(gap)
        self._pending = still
        self._recent.append((t_end, joules, seconds))
        while self._recent and t_end - self._recent[0][0] > self.neighbour_s:
            self._recent.popleft()

    def _before_power(self) -> tuple[float, float] | None:
        if not self._recent:
            return None
        return (sum(j for _, j, _ in self._recent), sum(s for _, _, s in self._recent))

    def _open_gap(self, lo: float, hi: float, reason: str) -> None:
        if hi <= lo:
            return
        gap = Gap(lo, hi, reason, measured=False, _before=self._before_power())
        self.result.gaps.append(gap)
        self._pending.append(gap)

    def finish(self) -> SeriesEnergy:
        if self._prefix is not None:
            self._flush_prefix()
        res = self.result
        if self._prev is None:
            self._open_gap(self.start, self.end, NO_DATA_BEFORE)
        elif self._prev[0] < self.end:
            self._open_gap(max(self._prev[0], self.start), self.end, NO_DATA_AFTER)
        for gap in self._pending:
            gap.estimate()
        self._pending = []
        res.gaps.sort(key=lambda g: g.start)
        res.joules_estimated_gaps = sum((g.joules for g in res.gaps if not g.measured), 0.0)
        return res
