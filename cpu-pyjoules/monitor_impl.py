"""cpu-pyjoules for the base monitoring client: RAPL energy and power of every CPU zone.

The base client (``monitoring-client``) loads this file through MONITOR_IMPL (or as ``monitor_impl`` from
the working directory, as in the image) and runs the two functions of the seed's contract in threads.
Settings are read and the RAPL counters probed here at import time: a bad POWERCAP_ROOT, METRIC_PREFIX or
MAX_ZONE_POWER_W stops the process with exit status 2, a machine without readable RAPL with exit status 3,
before anything runs (also under ``monitoring-client --check``). The work lives in the ``cpu_pyjoules``
package next to this file.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

from cpu_pyjoules.pipeline import Collector, Processor, probe_zones
from cpu_pyjoules.settings import load_settings

SERVICE_NAME = "cpu-pyjoules"  # default `source` label (SERVICE_LABEL overrides it)

SETTINGS = load_settings()
# No RAPL, or RAPL unreadable: EnvironmentProblem (exit 3) right here, before the base starts anything.
ZONES = probe_zones(SETTINGS.powercap_root)


def get_power(output_queue: queue.Queue[Any], scrape_interval_s: float, stop_event: threading.Event) -> None:
    """Sample every RAPL counter every ``scrape_interval_s`` seconds until ``stop_event`` is set."""
    Collector(SETTINGS, discover=lambda _root: ZONES).run(output_queue, scrape_interval_s, stop_event)


def process_data(input_queue: queue.Queue[Any], output_queue: queue.Queue[Any], stop_event: threading.Event) -> None:
    """Turn raw counter readings into energy/power/total records until stopped and drained."""
    Processor(SETTINGS).run(input_queue, output_queue, stop_event)
