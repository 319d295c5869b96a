"""An implementation built in the test itself, so pipeline tests control exactly what is emitted.

Shared by the in-process pipeline and spool tests: the collector runs the test's ``emit`` and then idles
until stopped; the processor passes items through and drains its queue before returning, as the seed
contract asks.
"""

from __future__ import annotations

import queue
import threading
import types
from collections.abc import Callable


def impl(emit: Callable[[queue.Queue, float, threading.Event], None]) -> types.ModuleType:
    """A seed-contract module whose collector runs ``emit`` and whose processor passes items through."""
    module = types.ModuleType("fake_impl")

    def get_power(output_queue: queue.Queue, scrape_interval_s: float, stop_event: threading.Event) -> None:
        emit(output_queue, scrape_interval_s, stop_event)
        stop_event.wait()

    def process_data(input_queue: queue.Queue, output_queue: queue.Queue, stop_event: threading.Event) -> None:
        while not (stop_event.is_set() and input_queue.empty()):
            try:
                output_queue.put(input_queue.get(timeout=0.05))
            except queue.Empty:
                pass

    module.get_power = get_power  # type: ignore[attr-defined]
    module.process_data = process_data  # type: ignore[attr-defined]
    return module
