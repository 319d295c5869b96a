"""Turning raw observations into figures: tick statistics, percentiles, sample counts in Prometheus."""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation between closest ranks; nan when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass
class TickStats:
    """Rate and lateness of the ticks one client took, from the probe's record of its collector's ticks.

    Due times follow the ideal absolute schedule ``t0 + k * interval``. ``t0`` comes from the run's first
    tick, which an absolute schedule takes at once, moved back by :func:`due_phase` when later ticks show
    that the first one was itself late; so lateness is measured from the earliest phase any tick reached,
    and leaves out the few µs that even the quickest tick needs. A tick's lateness is the time since the
    latest due time before it. A schedule takes at most one tick
    per due time, so ``taken`` = ticks / due times; the seed's loop takes fewer because it drifts.
    """

    interval_s: float
    ticks: int
    due: int
    taken: int
    seconds: float
    lateness_ms: list[float]

    @property
    def taken_fraction(self) -> float:
        return self.taken / self.due if self.due else math.nan

    @property
    def rate_hz(self) -> float:
        return (self.ticks - 1) / self.seconds if self.seconds > 0 else math.nan

    def late(self, q: float) -> float:
        return percentile(self.lateness_ms, q)

    @classmethod
    def from_times(cls, interval_s: float, t_ns: Sequence[int], origin_ns: int | None = None) -> TickStats:
        """Statistics of the ticks ``t_ns``; due times count from ``origin_ns`` (default: the first tick).

        Pass the very first tick of a run as the origin when leaving out a warm-up, so that due times stay
        those of the schedule's start rather than of some later (itself late) tick. The origin is then
        corrected with :func:`due_phase`, because the first tick is itself a little late.
        """
        if len(t_ns) < 2:
            raise ValueError(f"need at least 2 ticks to measure a rate, got {len(t_ns)}")
        step = interval_s * 1e9
        first = t_ns[0] if origin_ns is None else origin_ns
        t0 = first + due_phase([t - first for t in t_ns], step)
        lateness = [((t - t0) % step) / 1e6 for t in t_ns]
        first_slot = int((t_ns[0] - t0) // step)
        last_slot = int((t_ns[-1] - t0) // step)
        return cls(
            interval_s=interval_s,
            ticks=len(t_ns),
            due=last_slot - first_slot + 1,
            taken=min(len(t_ns), last_slot - first_slot + 1),
            seconds=(t_ns[-1] - t_ns[0]) / 1e9,
            lateness_ms=lateness,
        )


def due_phase(offsets_ns: Sequence[float], step_ns: float) -> float:
    """Where the due times lie relative to the first tick: 0, or a little before it (a negative offset).

    The first tick of a schedule is late too (by the cost of its first, cold reading), so later ticks that
    ran with less delay appear *before* their due time, by up to that amount, and would otherwise wrap
    around to a lateness of nearly a whole interval. Moving the due times earlier by ``d`` adds ``d`` to
    every tick's lateness and takes a whole interval off each tick that appeared early by less than ``d``;
    the ``d`` (at most a quarter interval) that minimises the mean lateness is returned, as ``-d``.
    """
    n = len(offsets_ns)
    half = step_ns / 2
    window = step_ns / 4
    early = sorted(
        (e for e in (((o + half) % step_ns) - half for o in offsets_ns) if -window <= e < 0),
        reverse=True,
    )
    best_gain, best = 0.0, 0.0
    for count, e in enumerate(early, start=1):
        gain = step_ns * count / n + e  # interval saved per early tick, minus the shift added to every tick
        if gain > best_gain:
            best_gain, best = gain, e
    return best


def read_probe_ticks(path: Path, skip_s: float = 0.0) -> TickStats:
    """Tick statistics from a probe's ``.ticks.json``: the most frequent item kind is the tick.

    (Implementations may put other items, e.g. a set-up message first and an end marker last.)
    ``skip_s`` leaves out the first seconds (start-up).
    """
    data = json.loads(Path(path).read_text())
    kinds = Counter(data["kinds"])
    if not kinds:
        raise ValueError(f"{path}: the collector put nothing")
    tick_kind = kinds.most_common(1)[0][0]
    times = [t for t, k in zip(data["t_ns"], data["kinds"], strict=True) if k == tick_kind]
    origin = times[0] if times else None
    if skip_s > 0 and times:
        start = times[0] + skip_s * 1e9
        times = [t for t in times if t >= start]
    return TickStats.from_times(float(data["interval_s"]), times, origin_ns=origin)


def read_probe_records(path: Path) -> int:
    """Records the implementation's process_data produced, from a probe's ``.records.json``."""
    return int(json.loads(Path(path).read_text())["records"])


def count_stored(
    prom: Any, selector: str | Sequence[str], window_s: float, by: str | None = None, at: float | None = None
) -> Any:
    """Samples stored in Prometheus for ``selector`` in the ``window_s`` seconds before ``at`` (default now).

    Uses ``count_over_time`` so Prometheus counts (no sample is shipped back). Functions drop the metric
    name, so a selector matching several metric names must be given as one selector per name (a list);
    the counts are added. With ``by`` (a label name), returns ``{label value: count}``; else the total.
    """
    if not isinstance(selector, str):
        parts = [count_stored(prom, s, window_s, by, at) for s in selector]
        if by:
            merged: dict[str, int] = {}
            for part in parts:
                for key, value in part.items():
                    merged[key] = merged.get(key, 0) + value
            return merged
        return sum(parts)
    at = time.time() if at is None else at
    window_ms = max(math.ceil(window_s * 1000), 1)
    inner = f"count_over_time({selector}[{window_ms}ms])"
    if by:
        result = prom.query(f"sum by ({by}) ({inner})", at=at)
        return {r["metric"].get(by, ""): int(float(r["value"][1])) for r in result}
    result = prom.query(f"sum({inner})", at=at)
    return int(float(result[0]["value"][1])) if result else 0


def last_value(prom: Any, selector: str, window_s: float = 3600, at: float | None = None) -> float:
    """Latest value of a single series within the window (nan if none), e.g. a client's self-metric."""
    at = time.time() if at is None else at
    result = prom.query(f"last_over_time({selector}[{int(window_s)}s])", at=at)
    return float(result[0]["value"][1]) if result else math.nan


def fmt(value: float, digits: int = 1) -> str:
    """A number for a table: fixed digits, thousands separated, 'n/a' for nan."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:,.{digits}f}"
