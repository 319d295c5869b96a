"""The payload store: encoded requests waiting to be sent, oldest first, bounded, oldest dropped first.

The batcher puts payloads in, the sender takes the oldest, and then acknowledges it (the receiver
accepted it) or drops it (refused for good). Both stores, memory (here) and disk (``spool.SpoolStore``),
implement the same ``PayloadStore`` interface through the same base, ``QueuedStore``, so they keep the
same rules:

- First in, first out. The payload the sender took is *in flight* until acknowledged or dropped; it is
  never evicted meanwhile, so a payload cannot be both sent and counted as dropped.
- When a bound is reached the oldest payloads that are not in flight are evicted: dropping the oldest keeps
  the dashboards current when an outage outlasts the budget.
- Every payload the store lets go (evicted by a bound, refused by the receiver, unreadable) is reported
  through the one ``on_drop(reason, payload, detail)`` listener given to the store, outside its lock.
- The payload in flight can be replaced by its parts (the halves of a request the receiver refused in
  part, or the request without samples too old to send), which take its place at the head of the queue.

Unsent data is kept encoded (a few bytes per sample after snappy), so a long outage costs little memory.
A new store (another medium) subclasses ``QueuedStore`` and is chosen in ``pipeline.build_store``; the
pipeline and the sender only see the interface.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from monitoring_client.encoder import Payload
from monitoring_client.records import BUFFER_FULL, CORRUPT, SeriesKey

# Listener for payloads a store let go: (reason, payload, detail). ``reason`` is a drop reason of
# ``records`` (a label value of monitoring_client_samples_dropped_total); ``detail`` says why, for the log.
DropListener = Callable[[str, Payload, str], None]
# One report for the listener: (reason, payload, detail).
Eviction = tuple[str, Payload, str]


def ignore_drops(reason: str, payload: Payload, detail: str) -> None:
    """The listener of a store nobody listens to (tests, tools)."""


class PayloadStore(Protocol):
    """What the pipeline and the sender need from a payload store."""

    def open(self) -> Mapping[SeriesKey, int]:
        """Get ready before the first ``put``; queue what a previous run left ahead of anything new.

        Returns, per series, the newest timestamp in those left-over payloads (empty when there are none),
        for the ordering guard: new samples stamped earlier must not follow them to the receiver.
        """

    def put(self, payload: Payload) -> None:
        """Append ``payload``; payloads evicted to stay within bounds go to the drop listener."""

    def take(self, timeout: float | None = None) -> Payload | None:
        """The oldest payload, now in flight; waits up to ``timeout`` for one; None if still empty."""

    def acknowledge(self, payload: Payload) -> bool:
        """Forget ``payload``: the receiver has it. False if it was no longer there."""

    def drop(self, payload: Payload, reason: str, detail: str) -> bool:
        """Forget ``payload`` and report it to the drop listener (the receiver refused it for good)."""

    def replace(self, payload: Payload, parts: Sequence[Payload], dropped: Sequence[Eviction] = ()) -> bool:
        """Put ``parts`` where ``payload`` (in flight) was, in this order, and report ``dropped`` (what was
        taken out of it) to the drop listener. False if ``payload`` was no longer there."""

    def drain(self) -> list[Payload]:
        """At exit: empty the store and return what it cannot keep (lost unless sent), for the caller to
        account. What survives a restart stays where it is."""

    def wake(self) -> None:
        """Wake a sender waiting in ``take`` (at shutdown)."""

    def __len__(self) -> int: ...

    @property
    def nbytes(self) -> int: ...


class Unreadable(Exception):
    """A queued payload whose body cannot be had any more (a damaged file): it is dropped, with this reason."""


class QueuedStore:
    """The rules both stores share: order, the payload in flight, waiting, eviction, drop reports.

    Subclasses say where a payload lives through hooks: ``_prepare`` (before the lock is taken: slow
    work such as a durable write; returns what is queued) and ``_prepare_part`` (the same for a part that
    will replace the payload in flight), then with the lock held ``_admit`` (it joins the queue),
    ``_forget`` (it leaves, for whatever reason) and ``_load`` (it becomes the head: make its body
    available, or raise ``Unreadable`` when it cannot be, which drops it as ``_unloadable_reason``).
    ``_evictions`` applies the bounds after every ``put``.
    """

    _unloadable_reason = CORRUPT

    def __init__(self, on_drop: DropListener = ignore_drops) -> None:
        self._on_drop = on_drop
        self._cond = threading.Condition()
        self._items: collections.deque[Payload] = collections.deque()
        self._in_flight: Payload | None = None

    # -- hooks ---------------------------------------------------------------------------------------------
    def _prepare(self, payload: Payload) -> Payload:
        return payload

    def _prepare_part(self, parent: Payload, index: int, part: Payload) -> Payload:
        return part

    def _admit(self, payload: Payload) -> None:
        pass

    def _forget(self, payload: Payload) -> None:
        pass

    def _load(self, payload: Payload) -> None:
        pass

    def _evictions(self, newest: Payload | None) -> list[Eviction]:
        return []

    # -- shared rules --------------------------------------------------------------------------------------
    def open(self) -> Mapping[SeriesKey, int]:
        return {}

    def put(self, payload: Payload) -> None:
        stored = self._prepare(payload)
        with self._cond:
            self._admit(stored)
            self._items.append(stored)
            dropped = self._evictions(stored)
            self._cond.notify_all()
        self._report(dropped)

    def _evict_oldest(self, wanted: Callable[[Payload], bool], exclude: Payload | None) -> Payload | None:
        """Remove and return the oldest payload that ``wanted`` selects, never the one in flight nor
        ``exclude`` (the one just put)."""
        for candidate in self._items:
            if candidate is not self._in_flight and candidate is not exclude and wanted(candidate):
                self._remove(candidate)
                return candidate
        return None

    def _remove(self, payload: Payload) -> None:
        """Take ``payload`` out of the queue (by identity: two payloads may hold equal values)."""
        for index, item in enumerate(self._items):
            if item is payload:
                del self._items[index]
                break
        if self._in_flight is payload:
            self._in_flight = None
        self._forget(payload)

    def take(self, timeout: float | None = None) -> Payload | None:
        unreadable: list[Eviction] = []
        try:
            with self._cond:
                if not self._items:
                    self._cond.wait(timeout)
                while self._items:
                    head = self._items[0]
                    try:
                        self._load(head)
                    except Unreadable as exc:
                        self._remove(head)
                        unreadable.append((self._unloadable_reason, head, str(exc)))
                        continue
                    self._in_flight = head
                    return head
                return None
        finally:
            self._report(unreadable)

    def acknowledge(self, payload: Payload) -> bool:
        with self._cond:
            if not any(item is payload for item in self._items):
                return False
            self._remove(payload)
            return True

    def drop(self, payload: Payload, reason: str, detail: str) -> bool:
        if not self.acknowledge(payload):
            return False
        self._report([(reason, payload, detail)])
        return True

    def replace(self, payload: Payload, parts: Sequence[Payload], dropped: Sequence[Eviction] = ()) -> bool:
        with self._cond:
            if not any(item is payload for item in self._items):
                return False
        # Parts are made durable before the payload they replace is forgotten (a crash keeps one or the other).
        prepared = [self._prepare_part(payload, index, part) for index, part in enumerate(parts)]
        with self._cond:
            index = next((i for i, item in enumerate(self._items) if item is payload), None)
            if index is None:  # drained meanwhile: the parts go too
                for part in prepared:
                    self._admit(part)
                    self._forget(part)
                return False
            self._remove(payload)
            for offset, part in enumerate(prepared):
                self._admit(part)
                self._items.insert(index + offset, part)
            self._cond.notify_all()
        self._report(list(dropped))
        return True

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def __len__(self) -> int:
        return len(self._items)

    def _report(self, dropped: list[Eviction]) -> None:
        for reason, payload, detail in dropped:
            self._on_drop(reason, payload, detail)


class MemoryStore(QueuedStore):
    """Payloads in memory only, bounded by a count (MAX_RETRY_BATCHES) and a byte budget (MAX_BUFFER_BYTES).

    A single payload larger than the byte budget is kept (alone): refusing it would lose it for certain.
    """

    def __init__(self, max_payloads: int, max_bytes: int, *, on_drop: DropListener = ignore_drops) -> None:
        if max_payloads < 1 or max_bytes < 1:
            raise ValueError("bounds must be positive")
        super().__init__(on_drop)
        self.max_payloads = max_payloads
        self.max_bytes = max_bytes
        self._bytes = 0

    def _admit(self, payload: Payload) -> None:
        self._bytes += payload.nbytes

    def _forget(self, payload: Payload) -> None:
        self._bytes -= payload.nbytes

    def _evictions(self, newest: Payload | None) -> list[Eviction]:
        dropped: list[Eviction] = []
        while len(self._items) > self.max_payloads or self._bytes > self.max_bytes:
            victim = self._evict_oldest(lambda _: True, newest)
            if victim is None:
                break
            dropped.append(
                (
                    BUFFER_FULL,
                    victim,
                    f"buffer full ({self.max_payloads} requests / {self.max_bytes} bytes): dropped the oldest"
                    " request while the receiver is unreachable",
                )
            )
        return dropped

    def drain(self) -> list[Payload]:
        with self._cond:
            items = list(self._items)
            self._items.clear()
            self._bytes = 0
            self._in_flight = None
            return items

    @property
    def nbytes(self) -> int:
        return self._bytes
