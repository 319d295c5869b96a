"""Per-series ordering guard: never send a sample that is not newer than the last one sent for its series.

Prometheus rejects a whole remote-write request (HTTP 400) when a single sample in it is out of order or
a duplicate with a different value, so one late sample would cost every good sample batched with it. The
guard drops such samples before they are encoded, where they can be counted precisely.
"""

from __future__ import annotations

from monitoring_client.records import SeriesKey


class OrderingGuard:
    """Remembers the newest accepted timestamp of every series; ``accept`` is O(1)."""

    def __init__(self) -> None:
        self._last: dict[SeriesKey, int] = {}

    def accept(self, key: SeriesKey, timestamp_ms: int) -> bool:
        """True (and remember the timestamp) if it is strictly after the series' last accepted one."""
        last = self._last.get(key)
        if last is not None and timestamp_ms <= last:
            return False
        self._last[key] = timestamp_ms
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
        """The newest accepted timestamp of ``key``, or None if the series has not been seen."""
        return self._last.get(key)

    def __len__(self) -> int:
        return len(self._last)
