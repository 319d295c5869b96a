"""jetson-ina3221 for the base monitoring client: power, energy, volts and amps of every Jetson power rail.

The base client (``monitoring-client``) loads this file through MONITOR_IMPL (or as ``monitor_impl`` from
the working directory, as in the image) and runs the seed's two functions in threads. Settings are read and
the INA3221 rails found and opened here at import time: a bad JETSON_SYSFS_ROOT, METRIC_PREFIX or
JETSON_TOTAL_RAILS stops the process with exit status 2, a machine without INA3221 rails with exit status
3 and a paragraph naming the fix, before anything runs (also under ``monitoring-client --check``).
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

from jetson_ina3221.discovery import find_rails, no_rails
from jetson_ina3221.processor import RailProcessor
from jetson_ina3221.reader import RailReader
from jetson_ina3221.settings import load_settings
from monitoring_client.device_loop import BatchProcessor, run_sampler

SERVICE_NAME = "jetson-ina3221"  # default `source` label (SERVICE_LABEL overrides it)

logger = logging.getLogger("jetson_ina3221")

SETTINGS = load_settings()
RAILS = find_rails(SETTINGS.sysfs_root)
if not RAILS:
    raise no_rails(SETTINGS.sysfs_root)
RailReader(RAILS).close()  # every file readable now, or exit status 3 naming the one that is not


def get_power(output_queue: queue.Queue[Any], scrape_interval_s: float, stop_event: threading.Event) -> None:
    """Read every rail every ``scrape_interval_s`` seconds until ``stop_event`` is set."""
    reader = RailReader(RAILS)
    logger.info(
        "sampling %d INA3221 rail(s) under %s every %g s: %s",
        len(RAILS),
        SETTINGS.sysfs_root,
        scrape_interval_s,
        ", ".join(f"{rail.zone}={rail.name} ({rail.layout})" for rail in RAILS),
    )
    try:
        run_sampler(reader.read, output_queue, scrape_interval_s, stop_event)
    finally:
        reader.close()


def process_data(input_queue: queue.Queue[Any], output_queue: queue.Queue[Any], stop_event: threading.Event) -> None:
    """Turn rail readings into power, energy, voltage and current records until stopped and drained."""
    processor = RailProcessor(RAILS, SETTINGS.metric_prefix, SETTINGS.total_rails)
    BatchProcessor(processor.handle, processor.take).run(input_queue, output_queue, stop_event)
