"""Per-series memory with a bound: what is not used for a while is forgotten.

The client remembers a few things per series (the ordering guard's newest timestamp, the normalizer's
series key, the encoder's encoded labels). An implementation whose label values keep changing (a request id,
a process id, a timestamp in a label) creates new series forever; remembering all of them would grow
memory without end. ``Generations`` keeps two generations of at most ``limit`` entries each: new entries go
into the current one; when it is full it becomes the previous one and the old previous one is forgotten.
An entry used again while in the previous generation moves back into the current one, so a series seen
regularly is never forgotten while fewer than ``limit`` other series come and go in between.

The lookup of a known entry is one dictionary lookup in ``current`` (callers read the attribute directly
on their hot path); ``recall`` and ``put`` are the slow path of a miss.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Generations(Generic[K, V]):
    """At most ``2 * limit`` entries; the least recently used go first, a generation at a time."""

    __slots__ = ("current", "limit", "previous")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.current: dict[K, V] = {}
        self.previous: dict[K, V] = {}

    def get(self, key: K) -> V | None:
        """The entry of ``key`` (moved into the current generation), or None if unknown or forgotten."""
        value = self.current.get(key)
        return value if value is not None else self.recall(key)

    def recall(self, key: K) -> V | None:
        """After a miss in ``current``: the entry from the previous generation, moved into the current one."""
        value = self.previous.pop(key, None)
        if value is not None:
            self.put(key, value)
        return value

    def put(self, key: K, value: V) -> None:
        """Remember ``value`` for ``key`` (a new generation starts when the current one is full)."""
        current = self.current
        if key not in current and len(current) >= self.limit:
            self.previous = current
            self.current = current = {}
        current[key] = value

    def clear(self) -> None:
        self.current = {}
        self.previous = {}

    def __len__(self) -> int:
        return len(self.current) + len(self.previous)
