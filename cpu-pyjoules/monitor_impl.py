"""cpu-pyjoules for the base monitoring client: RAPL energy and power of every CPU zone.

The base client (``monitoring-client``) loads this file through MONITOR_IMPL (or as ``monitor_impl`` from
the working directory, as in the image) and runs the two functions of the seed's contract in threads.
Settings are read here at import time, so a bad POWERCAP_ROOT / METRIC_PREFIX / MAX_ZONE_POWER_W stops
the process with exit status 2 before anything runs. The work lives in the ``cpu_pyjoules`` package next
to this file.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

from cpu_pyjoules.pipeline import Collector, Processor
from cpu_pyjoules.settings import load_settings

SERVICE_NAME = "cpu-pyjoules"  # default `source` label (SERVICE_LABEL overrides it)

SETTINGS = load_settings()


def get_power(output_queue: "queue.Queue[Any]", scrape_interval_s: float, stop_event: threading.Event) -> None:
    """Sample every RAPL counter every ``scrape_interval_s`` seconds until ``stop_event`` is set."""
    Collector(SETTINGS).run(output_queue, scrape_interval_s, stop_event)


def process_data(input_queue: "queue.Queue[Any]", output_queue: "queue.Queue[Any]", stop_event: threading.Event) -> None:
    """Turn raw counter readings into energy/power/total records until stopped and drained."""
    Processor(SETTINGS).run(input_queue, output_queue, stop_event)
