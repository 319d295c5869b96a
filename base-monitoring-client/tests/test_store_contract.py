"""Both payload stores keep the same rules: the pipeline and the sender cannot tell which one they hold."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from monitoring_client.encoder import Payload
from monitoring_client.send_buffer import MemoryStore, PayloadStore
from monitoring_client.spool import SpoolStore
from monitoring_client.spool_files import Spool

Events = list[tuple[str, int, str]]
Factory = Callable[[Path, Events], PayloadStore]


def memory(_tmp: Path, events: Events) -> PayloadStore:
    return MemoryStore(100, 10**6, on_drop=lambda reason, p, detail: events.append((reason, p.samples, detail)))


def spool(tmp: Path, events: Events) -> PayloadStore:
    return SpoolStore(
        Spool(tmp / "spool", max_bytes=10**9, max_age_s=3600),
        max_memory_payloads=100,
        max_memory_bytes=10**6,
        on_drop=lambda reason, p, detail: events.append((reason, p.samples, detail)),
    )


@pytest.fixture(params=[memory, spool], ids=["memory", "spool"])
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], tuple[PayloadStore, Events]]:
    factory: Factory = request.param

    def build() -> tuple[PayloadStore, Events]:
        events: Events = []
        store = factory(tmp_path, events)
        assert store.open() == {}, "a fresh store has nothing left from a previous run"
        return store, events

    return build


def payload(tag: str, samples: int = 1) -> Payload:
    return Payload(tag.encode(), samples, 0, 1, len(tag))


def test_first_in_first_out_with_one_payload_in_flight(make: Callable[[], tuple[PayloadStore, Events]]) -> None:
    store, events = make()
    for tag in ("a", "b", "c"):
        store.put(payload(tag))
    head = store.take(timeout=0)
    assert head is not None and head.body == b"a"
    assert store.take(timeout=0) is head, "the head stays in flight until acknowledged or dropped"
    assert store.acknowledge(head) and not store.acknowledge(head)
    nxt = store.take(timeout=0)
    assert nxt is not None and nxt.body == b"b" and len(store) == 2
    assert events == []


def test_a_refused_payload_goes_to_the_drop_listener(make: Callable[[], tuple[PayloadStore, Events]]) -> None:
    store, events = make()
    store.put(payload("refused", samples=7))
    store.put(payload("next"))
    head = store.take(timeout=0)
    assert head is not None
    assert store.drop(head, "rejected", "HTTP 400: bad")
    assert events == [("rejected", 7, "HTTP 400: bad")]
    assert not store.drop(head, "rejected", "again") and len(events) == 1
    after = store.take(timeout=0)
    assert after is not None and after.body == b"next"


def test_wake_releases_a_waiting_take(make: Callable[[], tuple[PayloadStore, Events]]) -> None:
    store, _ = make()
    got: list[Payload | None] = []
    waiter = threading.Thread(target=lambda: got.append(store.take(timeout=30)))
    waiter.start()
    store.wake()
    waiter.join(10)
    assert got == [None]


def test_empty_after_everything_is_acknowledged(make: Callable[[], tuple[PayloadStore, Events]]) -> None:
    store, _ = make()
    for tag in ("a", "b"):
        store.put(payload(tag))
    while (head := store.take(timeout=0)) is not None:
        store.acknowledge(head)
    assert len(store) == 0 and store.nbytes == 0 and store.drain() == []


def test_the_payload_in_flight_can_be_replaced_by_its_parts(make: Callable[[], tuple[PayloadStore, Events]]) -> None:
    store, events = make()
    store.put(payload("whole", samples=5))
    store.put(payload("next", samples=1))
    head = store.take(timeout=0)
    assert head is not None
    removed = payload("", samples=1)
    assert store.replace(head, [payload("part0", samples=2), payload("part1", samples=2)], [("too_old", removed, "x")])
    assert events == [("too_old", 1, "x")]
    assert len(store) == 3
    bodies = []
    while (item := store.take(timeout=0)) is not None:
        bodies.append(item.body)
        store.acknowledge(item)
    assert bodies == [b"part0", b"part1", b"next"], "the parts go first, in order"
    assert not store.replace(head, [payload("late")]), "a payload no longer there is not replaced"
    assert len(store) == 0 and store.nbytes == 0
