"""A MONITOR_IMPL that produces nothing, for the client's idle cost: what the base client spends per second
(its threads waking up, pushing its own metrics) when the implementation has nothing to send."""

from __future__ import annotations

import queue
import threading
from typing import Any

SERVICE_NAME = "idle"


def get_power(output_queue: queue.Queue[Any], scrape_interval_s: float, stop_event: threading.Event) -> None:
    stop_event.wait()


def process_data(input_queue: queue.Queue[Any], output_queue: queue.Queue[Any], stop_event: threading.Event) -> None:
    stop_event.wait()
