"""The queue of encoded payloads waiting to be sent: bounded, first in first out, oldest dropped first.

Unsent data is kept encoded (a few bytes per sample after snappy) so a long receiver outage costs little
memory. Two bounds apply together: a number of payloads (MAX_RETRY_BATCHES) and a byte budget
(MAX_BUFFER_BYTES). When a new payload would exceed either, the oldest payloads are evicted and returned
to the caller, which counts and reports them: dropping the oldest keeps the dashboards current when the
outage outlasts the budget.

The payload at the head is the one the sender is working on (it is retried until it succeeds or is
refused); it is never evicted while in flight, so a payload cannot be both sent and counted as dropped.

Seam for a persistent spool: the sender and the batcher only use the ``PayloadStore`` protocol below.
An on-disk store (SPOOL_DIR, a later issue) implements the same methods and is chosen at start-up in
``pipeline.build_store``; nothing else changes.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from typing import Protocol

from monitoring_client.encoder import Payload


class PayloadStore(Protocol):
    """What the pipeline needs from a payload queue (in memory today, optionally on disk later)."""

    def put(self, payload: Payload) -> list[Payload]:
        """Append ``payload``; return the payloads evicted to stay within bounds (oldest first)."""

    def head(self, timeout: float | None = None) -> Payload | None:
        """The oldest payload, marked in flight; waits up to ``timeout`` for one; None if still empty."""

    def done(self, payload: Payload) -> bool:
        """Remove ``payload`` (sent or refused); False if it was no longer there."""

    def drain(self) -> list[Payload]:
        """Remove and return everything (at shutdown, to account for what could not be sent)."""

    def wake(self) -> None:
        """Wake a sender blocked in ``head`` (at shutdown)."""

    def __len__(self) -> int: ...

    @property
    def nbytes(self) -> int: ...


class MemoryBuffer:
    """Thread-safe in-memory ``PayloadStore`` bounded by payload count and total bytes."""

    def __init__(self, max_payloads: int, max_bytes: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        if max_payloads < 1 or max_bytes < 1:
            raise ValueError("bounds must be positive")
        self.max_payloads = max_payloads
        self.max_bytes = max_bytes
        self._clock = clock
        self._items: collections.deque[Payload] = collections.deque()
        self._bytes = 0
        self._in_flight: Payload | None = None
        self._cond = threading.Condition()

    def put(self, payload: Payload) -> list[Payload]:
        evicted: list[Payload] = []
        with self._cond:
            self._items.append(payload)
            self._bytes += payload.nbytes
            while len(self._items) > 1 and (len(self._items) > self.max_payloads or self._bytes > self.max_bytes):
                victim = self._oldest_evictable(exclude=payload)
                if victim is None:
                    break
                self._items.remove(victim)
                self._bytes -= victim.nbytes
                evicted.append(victim)
            self._cond.notify_all()
        return evicted

    def _oldest_evictable(self, exclude: Payload) -> Payload | None:
        for item in self._items:
            if item is not self._in_flight and item is not exclude:
                return item
        return None

    def head(self, timeout: float | None = None) -> Payload | None:
        with self._cond:
            if not self._items:
                self._cond.wait(timeout)
            if not self._items:
                return None
            self._in_flight = self._items[0]
            return self._in_flight

    def done(self, payload: Payload) -> bool:
        with self._cond:
            if self._in_flight is payload:
                self._in_flight = None
            try:
                self._items.remove(payload)
            except ValueError:
                return False
            self._bytes -= payload.nbytes
            return True

    def drain(self) -> list[Payload]:
        with self._cond:
            items = list(self._items)
            self._items.clear()
            self._bytes = 0
            self._in_flight = None
            return items

    def wake(self) -> None:
        """Wake a sender blocked in ``head`` (at shutdown)."""
        with self._cond:
            self._cond.notify_all()

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def oldest_age(self) -> float:
        """Seconds since the oldest waiting payload was created (0 when empty): how far behind we are."""
        with self._cond:
            return self._clock() - self._items[0].created if self._items else 0.0
