"""Stub implementation shipped in the base image: replace it with your own ``monitor_impl.py``.

The base image runs ``monitoring-client`` in its working directory, which imports the module
``monitor_impl`` from there (or whatever MONITOR_IMPL names). A concrete client image does
``FROM base-monitoring-client`` and copies its own ``monitor_impl.py`` over this file.

This stub shows the contract and keeps the image runnable for a smoke test: it emits one series,
``monitor_impl_stub_ticks_total``, counting its ticks.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

SERVICE_NAME = "base-monitoring-client"

log = logging.getLogger(__name__)


def get_power(output_queue: queue.Queue[Any], scrape_interval_s: float, stop_event: threading.Event) -> None:
    """Collector: put one raw reading per interval on ``output_queue`` until ``stop_event`` is set."""
    log.warning("running the stub monitor_impl: copy your own monitor_impl.py into the image")
    ticks = 0
    next_tick = time.monotonic()
    while not stop_event.is_set():
        ticks += 1
        output_queue.put({"ticks": ticks, "timestamp_ms": int(time.time() * 1000)})
        next_tick += scrape_interval_s
        stop_event.wait(max(next_tick - time.monotonic(), 0.0))


def process_data(input_queue: queue.Queue[Any], output_queue: queue.Queue[Any], stop_event: threading.Event) -> None:
    """Processor: turn raw readings into records; return once stopped and the input queue is drained."""
    while not (stop_event.is_set() and input_queue.empty()):
        try:
            raw = input_queue.get(timeout=0.2)
        except queue.Empty:
            continue
        output_queue.put(
            {
                "metric": "monitor_impl_stub_ticks_total",
                "labels": {},
                "value": float(raw["ticks"]),
                "timestamp_ms": raw["timestamp_ms"],
            }
        )
