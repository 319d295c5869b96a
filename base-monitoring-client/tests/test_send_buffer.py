"""The memory store: FIFO, both bounds, oldest evicted first and reported, in-flight head protected."""

from __future__ import annotations

import threading

from monitoring_client.encoder import Payload
from monitoring_client.send_buffer import MemoryStore


class Drops:
    """A drop listener that keeps what it was told."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Payload, str]] = []

    def __call__(self, reason: str, payload: Payload, detail: str) -> None:
        self.events.append((reason, payload, detail))

    def payloads(self) -> list[Payload]:
        return [e[1] for e in self.events]


def store(max_payloads: int, max_bytes: int) -> tuple[MemoryStore, Drops]:
    drops = Drops()
    return MemoryStore(max_payloads, max_bytes, on_drop=drops), drops


def p(size: int = 10, samples: int = 1) -> Payload:
    return Payload(body=b"x" * size, samples=samples, self_samples=0, series=1, uncompressed_bytes=size)


def test_fifo() -> None:
    buf, drops = store(10, 1000)
    assert buf.open() == {}, "nothing is left from a previous run in memory"
    a, b = p(), p()
    buf.put(a)
    buf.put(b)
    assert buf.take() is a
    assert buf.acknowledge(a) and buf.take() is b
    assert len(buf) == 1 and buf.nbytes == 10
    assert drops.events == []


def test_equal_payloads_are_told_apart() -> None:
    buf, _ = store(10, 1000)
    a, b = p(), p()
    b.created = a.created  # equal values, different payloads
    buf.put(a)
    buf.put(b)
    assert buf.take() is a and buf.acknowledge(a)
    assert buf.take() is b


def test_refused_payload_is_dropped_and_reported() -> None:
    buf, drops = store(10, 1000)
    a, b = p(samples=4), p()
    buf.put(a)
    buf.put(b)
    assert buf.take() is a
    assert buf.drop(a, "rejected", "HTTP 400")
    assert drops.events == [("rejected", a, "HTTP 400")]
    assert not buf.drop(a, "rejected", "again"), "a payload is dropped once"
    assert len(drops.events) == 1 and buf.take() is b


def test_count_bound_evicts_oldest_first() -> None:
    buf, drops = store(3, 10_000)
    items = [p() for _ in range(5)]
    for item in items:
        buf.put(item)
    assert drops.payloads() == items[:2]
    assert {e[0] for e in drops.events} == {"buffer_full"}
    assert len(buf) == 3 and buf.take() is items[2]


def test_byte_bound() -> None:
    buf, drops = store(100, 100)
    a, b, c = p(40), p(40), p(40)
    buf.put(a)
    buf.put(b)
    buf.put(c)
    assert drops.payloads() == [a]
    assert buf.nbytes == 80


def test_in_flight_head_is_never_evicted() -> None:
    buf, drops = store(2, 10_000)
    a, b, c = p(), p(), p()
    buf.put(a)
    assert buf.take() is a  # the sender is working on a
    buf.put(b)
    buf.put(c)
    assert drops.payloads() == [b]  # the next-oldest goes instead
    assert buf.acknowledge(a)
    assert buf.take() is c


def test_acknowledging_an_evicted_payload_is_false() -> None:
    buf, _ = store(1, 10_000)
    a, b = p(), p()
    buf.put(a)
    buf.put(b)
    assert not buf.acknowledge(a)
    assert buf.acknowledge(b)


def test_a_single_oversized_payload_is_kept() -> None:
    buf, drops = store(5, 10)
    big = p(50)
    buf.put(big)
    assert drops.events == []
    assert buf.take() is big


def test_take_waits_for_a_put_and_drain_empties() -> None:
    buf, _ = store(5, 1000)
    assert buf.take(timeout=0.01) is None
    got: list[Payload | None] = []
    t = threading.Thread(target=lambda: got.append(buf.take(timeout=10)))
    t.start()
    item = p()
    buf.put(item)
    t.join(10)
    assert got == [item]
    buf.put(p())
    assert len(buf.drain()) == 2 and len(buf) == 0 and buf.nbytes == 0
