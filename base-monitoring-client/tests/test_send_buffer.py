"""The payload buffer: FIFO, both bounds, oldest evicted first, in-flight head protected."""

from __future__ import annotations

import threading

from monitoring_client.encoder import Payload
from monitoring_client.send_buffer import MemoryBuffer


def p(size: int = 10, samples: int = 1) -> Payload:
    return Payload(body=b"x" * size, samples=samples, self_samples=0, series=1, uncompressed_bytes=size)


def test_fifo() -> None:
    buf = MemoryBuffer(10, 1000)
    a, b = p(), p()
    assert buf.put(a) == [] and buf.put(b) == []
    assert buf.head() is a
    assert buf.done(a) and buf.head() is b
    assert len(buf) == 1 and buf.nbytes == 10


def test_count_bound_evicts_oldest_first() -> None:
    buf = MemoryBuffer(3, 10_000)
    items = [p() for _ in range(5)]
    evicted = [e for item in items for e in buf.put(item)]
    assert evicted == items[:2]
    assert len(buf) == 3 and buf.head() is items[2]


def test_byte_bound() -> None:
    buf = MemoryBuffer(100, 100)
    a, b, c = p(40), p(40), p(40)
    buf.put(a)
    buf.put(b)
    assert buf.put(c) == [a]
    assert buf.nbytes == 80


def test_in_flight_head_is_never_evicted() -> None:
    buf = MemoryBuffer(2, 10_000)
    a, b, c = p(), p(), p()
    buf.put(a)
    assert buf.head() is a  # the sender is working on a
    buf.put(b)
    assert buf.put(c) == [b]  # the next-oldest goes instead
    assert buf.done(a)
    assert buf.head() is c


def test_done_on_evicted_payload_is_false() -> None:
    buf = MemoryBuffer(1, 10_000)
    a, b = p(), p()
    buf.put(a)
    buf.put(b)
    assert not buf.done(a)
    assert buf.done(b)


def test_a_single_oversized_payload_is_kept() -> None:
    buf = MemoryBuffer(5, 10)
    big = p(50)
    assert buf.put(big) == []
    assert buf.head() is big


def test_head_waits_for_a_put_and_drain_empties() -> None:
    buf = MemoryBuffer(5, 1000)
    assert buf.head(timeout=0.01) is None
    got: list = []
    t = threading.Thread(target=lambda: got.append(buf.head(timeout=10)))
    t.start()
    item = p()
    buf.put(item)
    t.join(10)
    assert got == [item]
    buf.put(p())
    assert len(buf.drain()) == 2 and len(buf) == 0 and buf.nbytes == 0
