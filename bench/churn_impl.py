"""A MONITOR_IMPL whose label values never repeat: ``CHURN_SERIES`` new series on every tick.

What a careless implementation does when it puts a request id, a process id or a timestamp in a label.
``CHURN_STEADY=1`` emits the same number of samples in series that repeat every tick instead: the baseline,
same samples per second, no churn. Written from the seed contract only.
"""

from __future__ import annotations

import os
import queue
import time
from typing import Any

SERVICE_NAME = "churn"
SERIES = int(os.environ.get("CHURN_SERIES", "500"))
STEADY = os.environ.get("CHURN_STEADY", "0") == "1"


def get_power(output_queue: queue.Queue[Any], scrape_interval_s: float, stop_event: Any) -> None:
    tick = 0
    next_tick = time.monotonic()
    while not stop_event.is_set():
        tick += 1
        ts = int(time.time() * 1000)
        prefix = "s" if STEADY else f"t{tick}"
        output_queue.put(
            [
                {
                    "metric": "churn_value",
                    "labels": {"id": f"{prefix}-{i}", "kind": "churn"},
                    "value": 1.0,
                    "timestamp_ms": ts,
                }
                for i in range(SERIES)
            ]
        )
        next_tick += scrape_interval_s
        stop_event.wait(max(0.0, next_tick - time.monotonic()))


def process_data(input_queue: queue.Queue[Any], output_queue: queue.Queue[Any], stop_event: Any) -> None:
    while not (stop_event.is_set() and input_queue.empty()):
        try:
            output_queue.put(input_queue.get(timeout=0.1))
        except queue.Empty:
            continue
