"""Test helpers: run the two halves of cpu-pyjoules (collector, processor) in threads and read their queues."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from cpu_pyjoules.pipeline import Collector, Processor
from testkit.wait import wait_until


def drain(q: queue.Queue[Any]) -> list[Any]:
    """Everything on ``q`` now, in order."""
    items = []
    while True:
        try:
            items.append(q.get_nowait())
        except queue.Empty:
            return items


def run_halves(
    collector: Collector,
    interval_s: float,
    until: Callable[[], object],
    message: str,
    processor: Processor | None = None,
) -> tuple[queue.Queue[Any], queue.Queue[Any]]:
    """Run ``get_power`` (and ``process_data`` if given) in threads until ``until()`` holds, then stop both
    as the base client does and check they returned. Returns the raw and the processed queue."""
    raw: queue.Queue[Any] = queue.Queue()
    out: queue.Queue[Any] = queue.Queue()
    stop = threading.Event()
    threads = [threading.Thread(target=collector.run, args=(raw, interval_s, stop))]
    if processor is not None:
        threads.append(threading.Thread(target=processor.run, args=(raw, out, stop)))
    for thread in threads:
        thread.start()
    try:
        wait_until(until, timeout=30, message=message)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=20)
    assert not any(thread.is_alive() for thread in threads), "a half did not return after the stop"
    return raw, out
