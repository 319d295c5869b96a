"""An implementation whose collector fails after a few ticks: FAIL_WITH=crash | environment."""

import os
import queue
import time

from monitoring_client.errors import EnvironmentProblem

MODE = os.environ.get("FAIL_WITH", "crash")


def get_power(output_queue, scrape_interval_s, stop_event):
    for tick in range(3):
        output_queue.put(tick)
        stop_event.wait(scrape_interval_s)
    if MODE == "environment":
        raise EnvironmentProblem("No RAPL counters under /nonexistent/powercap.\nRun on a machine with RAPL.")
    raise RuntimeError("sensor exploded")


def process_data(input_queue, output_queue, stop_event):
    while not (stop_event.is_set() and input_queue.empty()):
        try:
            tick = input_queue.get(timeout=0.1)
        except queue.Empty:
            continue
        output_queue.put(
            {"metric": "failing_impl_tick", "labels": {}, "value": tick, "timestamp_ms": int(time.time() * 1000) + tick}
        )
