"""Turn successive raw RAPL counter readings into trustworthy energy intervals.

A RAPL counter counts µJ up to ``max_energy_range_uj`` and starts again from zero (every few hours on
a server at full load, every few seconds in a fake tree). pyJoules subtracts blindly, so a wrap becomes
a huge negative energy. Here:

* a reading below the previous one is a wrap: add the zone's ``max_energy_range_uj``;
* a delta that is still impossible (negative because the range is unknown, or more energy than the
  zone could draw at the power ceiling in that time) is not emitted; it is counted and reported through a
  rate-limited warning;
* a single bad reading does not poison the next interval: the baseline stays at the last good reading,
  so when the next reading is plausible again the whole span is emitted and no energy is lost. Only if the
  counter really jumped (the next reading is plausible relative to the odd one, not to the baseline, e.g.
  a counter reset) does the tracker re-anchor there; the jumped-over span is then lost and counted.

So no energy and no power is ever negative, and the running total is monotonic.
"""

from __future__ import annotations

# The counter advances in steps (about 1 ms on real hardware, the update period in a fake tree); a very
# short interval can contain a whole step. This much time at the ceiling is tolerated on top of the
# interval so that such steps are not mistaken for impossible readings.
STEP_ALLOWANCE_NS = 2_000_000


class CounterTracker:
    """Wrap-correct deltas of one zone's counter. ``update`` is on the hot path: keep it plain."""

    __slots__ = (
        "max_range_uj",
        "ceiling_w",
        "prev_raw",
        "prev_ns",
        "suspect_raw",
        "suspect_ns",
        "total_uj",
        "dropped",
        "wraps",
    )

    def __init__(self, max_range_uj: int | None, ceiling_w: float) -> None:
        self.max_range_uj = max_range_uj if max_range_uj and max_range_uj > 0 else None
        self.ceiling_w = float(ceiling_w)
        self.prev_raw: int | None = None
        self.prev_ns = 0
        self.suspect_raw: int | None = None
        self.suspect_ns = 0
        self.total_uj = 0  # exact sum of emitted deltas, µJ
        self.dropped = 0  # readings that produced an impossible delta
        self.wraps = 0  # wraps corrected

    def _delta(self, raw: int, since_raw: int, dt_ns: int) -> int | None:
        """Wrap-corrected delta in µJ, or None if impossible for an interval of ``dt_ns``."""
        if dt_ns <= 0:
            return None
        delta = raw - since_raw
        if delta < 0:
            if self.max_range_uj is None:
                return None
            delta += self.max_range_uj
            if delta < 0:
                return None
        # µJ allowed = W * ns / 1000
        if delta * 1000 > self.ceiling_w * (dt_ns + STEP_ALLOWANCE_NS):
            return None
        return delta

    def update(self, raw: int, t_ns: int) -> tuple[int, int] | None:
        """Feed one reading taken at monotonic ``t_ns``; return ``(delta_uj, interval_ns)`` or None.

        None means nothing to emit: the first reading (a baseline), or an impossible one (counted in
        ``dropped``).
        """
        # Fast path, nearly every reading: no wrap, nothing suspect, within the ceiling.
        prev = self.prev_raw
        if prev is not None and self.suspect_raw is None:
            dt = t_ns - self.prev_ns
            delta = raw - prev
            if delta >= 0 and dt > 0 and delta * 1000 <= self.ceiling_w * (dt + STEP_ALLOWANCE_NS):
                self.prev_raw = raw
                self.prev_ns = t_ns
                self.total_uj += delta
                return delta, dt
        return self._update_slow(raw, t_ns)

    def _update_slow(self, raw: int, t_ns: int) -> tuple[int, int] | None:
        prev = self.prev_raw
        if prev is None:
            self.prev_raw = raw
            self.prev_ns = t_ns
            return None
        dt = t_ns - self.prev_ns
        delta = self._delta(raw, prev, dt)
        if delta is None and self.suspect_raw is not None:
            # The previous odd reading may have been the truth (the counter jumped): re-anchor there.
            dt = t_ns - self.suspect_ns
            delta = self._delta(raw, self.suspect_raw, dt)
            if delta is not None:
                prev = self.suspect_raw
        if delta is None:
            self.dropped += 1
            self.suspect_raw = raw
            self.suspect_ns = t_ns
            return None
        if raw < prev:
            self.wraps += 1
        self.suspect_raw = None
        self.prev_raw = raw
        self.prev_ns = t_ns
        self.total_uj += delta
        return delta, dt
