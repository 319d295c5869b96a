"""The sampler and batch processor that device clients run as get_power and process_data."""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

import pytest

from monitoring_client.device_loop import END, BatchProcessor, Reading, ReadingBatches, Record, SkipTick, run_sampler
from monitoring_client.ticker import AbsoluteTicker
from testkit.wait import wait_until

MS = 1_000_000


def test_sampler_stamps_each_reading_and_ends_with_end(caplog: pytest.LogCaptureFixture) -> None:
    out: queue.Queue[Any] = queue.Queue()
    stop = threading.Event()
    calls = []

    def read() -> int:
        calls.append(1)
        if len(calls) == 3:
            raise SkipTick("torn value in in1_input")
        if len(calls) == 6:
            stop.set()
        return len(calls)

    clock = iter(range(1000, 10**6, 100))
    with caplog.at_level(logging.WARNING):
        run_sampler(read, out, 0.001, stop, monotonic_ns=lambda: next(clock), wall_ns=lambda: 1_700_000_000_123_456_789)
    items = [out.get_nowait() for _ in range(out.qsize())]
    assert items[-1] is END
    assert all(type(batch) is list for batch in items[:-1])  # readings travel in lists
    readings = [reading for batch in items[:-1] for reading in batch]
    assert [values for _, _, values in readings] == [1, 2, 4, 5, 6]
    stamps = [t for t, _, _ in readings]
    assert stamps == sorted(stamps) and all(t % 100 == 50 for t in stamps)  # midpoints of the clock reads
    assert {wall for _, wall, _ in readings} == {1_700_000_000_123}
    assert "sample skipped: torn value in in1_input" in caplog.text


def test_sampler_puts_end_even_when_read_crashes() -> None:
    out: queue.Queue[Any] = queue.Queue()

    def read() -> int:
        raise OSError("gone")

    with pytest.raises(OSError):
        run_sampler(read, out, 0.01, threading.Event())
    assert out.get_nowait() is END


def test_sampler_reports_ticks_it_skipped(caplog: pytest.LogCaptureFixture) -> None:
    now = [0]
    stop = threading.Event()

    def read() -> None:
        now[0] += 350_000_000  # every read overruns three and a half 100 ms ticks
        if now[0] > 10**9:
            stop.set()

    ticker = AbsoluteTicker(0.1, clock=lambda: now[0] / 1e9, sleep=lambda s: now.__setitem__(0, now[0] + int(s * 1e9)))
    with caplog.at_level(logging.WARNING):
        run_sampler(read, queue.Queue(), 0.1, stop, ticker=ticker, monotonic_ns=lambda: now[0])
    assert ticker.skipped > 0
    assert "sampling tick(s) skipped because the sampler ran late" in caplog.text


class Records:
    """``handle`` and ``take`` of a client that makes one record per reading."""

    def __init__(self) -> None:
        self.out: list[Record] = []
        self.handled: list[int] = []  # the length of each list of readings handed to handle

    def handle(self, readings: list[Reading]) -> None:
        self.handled.append(len(readings))
        for _, wall_ms, value in readings:
            self.out.append({"metric": "m", "labels": {}, "value": float(value), "timestamp_ms": wall_ms})

    def take(self) -> list[Record]:
        out, self.out = self.out, []
        return out


def processor_of(**kwargs: Any) -> tuple[BatchProcessor, Records]:
    records = Records()
    return BatchProcessor(records.handle, records.take, **kwargs), records


def test_processor_batches_readings_and_returns_after_end_once_stopped() -> None:
    raw: queue.Queue[Any] = queue.Queue()
    proc: queue.Queue[Any] = queue.Queue()
    stop = threading.Event()
    processor, _ = processor_of()
    thread = threading.Thread(target=processor.run, args=(raw, proc, stop))
    thread.start()
    for i in range(5):
        raw.put((i, 1_700_000_000_000 + i, i))
    wait_until(lambda: processor.readings == 5, timeout=10, message="first batch handled")
    raw.put((5, 1_700_000_000_005, 5))
    stop.set()
    raw.put(END)
    thread.join(10)
    assert not thread.is_alive()
    batches = [proc.get_nowait() for _ in range(proc.qsize())]
    values = [r["value"] for batch in batches for r in batch]
    assert values == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert all(isinstance(batch, list) for batch in batches)


def test_processor_merges_a_reading_whose_millisecond_is_not_after_the_previous_one() -> None:
    processor, _ = processor_of()
    raw: queue.Queue[Any] = queue.Queue()
    proc: queue.Queue[Any] = queue.Queue()
    for item in [(1, 1_700_000_000_000, 1), (2, 1_700_000_000_000, 2), (3, 1_699_999_999_999, 3)]:
        raw.put(item)
    raw.put((4, 1_700_000_000_001, 4))
    raw.put(END)
    assert processor.drain(raw, proc, []) is True
    assert [r["value"] for r in proc.get_nowait()] == [1.0, 4.0]
    assert processor.readings == 2


def test_processor_splits_a_long_backlog_into_lists_of_bounded_size() -> None:
    processor, records = processor_of()
    processor.MAX_BATCH = 10
    raw: queue.Queue[Any] = queue.Queue()
    proc: queue.Queue[Any] = queue.Queue()
    for i in range(25):
        raw.put((i, 1_700_000_000_000 + i, i))
    assert processor.drain(raw, proc, []) is False
    assert [len(proc.get_nowait()) for _ in range(proc.qsize())] == [10, 10, 5]
    assert records.handled == [10, 10, 5]  # one call per list of readings


def test_processor_gives_up_waiting_for_end_after_the_grace_period() -> None:
    processor, _ = processor_of(drain_grace_s=0.2)
    stop = threading.Event()
    stop.set()
    thread = threading.Thread(target=processor.run, args=(queue.Queue(), queue.Queue(), stop))
    thread.start()
    thread.join(10)
    assert not thread.is_alive()


def test_reading_batches_put_once_per_period_or_when_full_and_on_flush() -> None:
    now = [0]
    puts: list[list[Reading]] = []
    batches = ReadingBatches(puts.append, period_s=1.0, max_readings=3, clock_ns=lambda: now[0])
    batches((100 * MS, 1, [1]))
    batches((200 * MS, 2, [2]))
    assert puts == [] and batches.count == 2
    now[0] = 1_050 * MS
    batches((1_050 * MS, 3, [3]))  # the period is over: all three go
    assert [len(b) for b in puts] == [3]
    for i in range(4):
        batches((1_100 * MS + i, 4 + i, [i]))  # full after three
    assert [len(b) for b in puts] == [3, 3]
    batches.flush()
    batches.flush()  # nothing left: no empty list
    assert [len(b) for b in puts] == [3, 3, 1]
    assert batches.count == 7 == sum(len(b) for b in puts)


def test_reading_batches_periods_follow_a_fixed_grid() -> None:
    now = [0]
    puts: list[list[Reading]] = []
    batches = ReadingBatches(puts.append, period_s=1.0, clock_ns=lambda: now[0])
    for t_ms in (500, 1_080, 1_990, 2_000, 2_500, 6_300, 6_900, 7_300):
        now[0] = t_ms * MS
        batches((now[0], t_ms, [t_ms]))
    # handed on at the first reading of each second (1 s, 2 s from the start), not a second after the last
    # put; after a stall of several periods the grid starts again from the stalled reading
    assert [[r[1] for r in b] for b in puts] == [[500, 1_080], [1_990, 2_000], [2_500, 6_300], [6_900, 7_300]]


def test_processor_passes_other_items_on_in_their_place_in_the_stream() -> None:
    seen: list[object] = []
    processor = BatchProcessor(lambda readings: seen.append([r[2] for r in readings]), list, on_item=seen.append)
    raw: queue.Queue[Any] = queue.Queue()
    for item in ["setup", (1, 1_700_000_000_001, 1), [(2, 1_700_000_000_002, 2)], "again", (3, 1_700_000_000_003, 3)]:
        raw.put(item)
    raw.put(END)
    assert processor.drain(raw, queue.Queue(), []) is True
    assert seen == ["setup", [1], [2], "again", [3]]
    with pytest.raises(TypeError, match="unexpected item"):
        BatchProcessor(lambda readings: None, list).drain(queue.Queue(), queue.Queue(), ["setup"])
