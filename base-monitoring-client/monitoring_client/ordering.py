"""Per-series ordering guard: never send a sample that is not newer than the last one sent for its series.

Prometheus rejects a whole remote-write request (HTTP 400) when a single sample in it is out of order or
a duplicate with a different value, so one late sample would cost every good sample batched with it. The
guard drops such samples before they are encoded, where they can be counted precisely.

It remembers at most ``2 * max_series`` series (``bounded.Generations``): the least recently seen are
forgotten, so an implementation whose label values keep changing cannot grow memory without end. A
forgotten series that comes back with an old sample is not caught here; the receiver then refuses it, and
the sender drops just that sample (it splits the refused request).
"""

from __future__ import annotations

from monitoring_client.bounded import Generations
from monitoring_client.records import SeriesKey

DEFAULT_MAX_SERIES = 10_000


class OrderingGuard:
    """Remembers the newest accepted timestamp of recent series; ``accept`` is O(1)."""

    def __init__(self, max_series: int = DEFAULT_MAX_SERIES) -> None:
        self._last: Generations[SeriesKey, int] = Generations(max_series)

    def accept(self, key: SeriesKey, timestamp_ms: int) -> bool:
        """True (and remember the timestamp) if it is strictly after the series' last accepted one."""
        memory = self._last
        current = memory.current
        last = current.get(key)
        if last is not None:  # the common case: a series seen recently
            if timestamp_ms <= last:
                return False
            current[key] = timestamp_ms
            return True
        last = memory.recall(key)
        if last is not None and timestamp_ms <= last:
            return False
        memory.put(key, timestamp_ms)
        return True

    def accept_run(self, key: SeriesKey, first_ms: int, last_ms: int) -> bool:
        """For a run of strictly increasing timestamps from ``first_ms`` to ``last_ms``: True (and remember
        ``last_ms``) if the first is after the series' last accepted one; nothing is remembered otherwise."""
        if not self.accept(key, first_ms):
            return False
        if last_ms != first_ms:
            self.accept(key, last_ms)
        return True

    def last(self, key: SeriesKey) -> int | None:
        """The newest accepted timestamp of ``key``, or None if the series is not remembered."""
        return self._last.get(key)

    def __len__(self) -> int:
        return len(self._last)
