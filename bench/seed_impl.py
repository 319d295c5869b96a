"""The seed's sampling method, rebuilt as a MONITOR_IMPL so it runs in the same base client as ours.

The seed's original cpu-pyjoules client is not available; its README and the field guide describe it:
every ``SCRAPE_INTERVAL_S`` a pyJoules ``measure_energy``-decorated function that sleeps for the interval
is called, pyJoules reads every RAPL counter before and after the sleep and hands the trace to a handler,
the handler puts the result on the queue, and ``process_data`` turns the pyJoules dictionary into one
record per energy domain (labels as pyJoules names the domains: ``package_0``, ``core_0`` ...).

Two variants, chosen with ``BENCH_SEED_DECORATE``:

* ``per_tick`` (default): the decorator is applied anew on every tick, as the field guide's figure was
  measured ("measure_energy decorator per tick", about 1.6 ms of CPU per tick); applying it re-runs
  pyJoules's device discovery each time;
* ``once``: the decorated function is built once and called every tick: the cheapest way to use the same
  API, a stricter baseline than the seed.

Both sleep *after* the previous tick's work, so the loop drifts (no absolute schedule): that is the
seed's behaviour the schedule benchmark shows. pyJoules hard-codes its RAPL directory; it is pointed at
``POWERCAP_ROOT``/intel-rapl here (its module constant), which is the only liberty taken with the seed.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from typing import Any

from pyJoules.device import rapl_device
from pyJoules.energy_meter import measure_energy
from pyJoules.handler import EnergyHandler

SERVICE_NAME = "seed-method"
METRIC = "pyjoules_remote_write_energy_uj"

rapl_device.RAPL_API_DIR = os.path.join(os.environ.get("POWERCAP_ROOT", "/sys/class/powercap"), "intel-rapl")
DECORATE = os.environ.get("BENCH_SEED_DECORATE", "per_tick")
if DECORATE not in ("per_tick", "once"):
    raise SystemExit(f"BENCH_SEED_DECORATE={DECORATE!r}: expected per_tick or once")


class QueueHandler(EnergyHandler):
    """Collects each measurement and puts it on the queue (pyJoules's handler interface)."""

    def __init__(self, output_queue: queue.Queue[Any]) -> None:
        super().__init__()
        self.output_queue = output_queue

    def process(self, trace: Any) -> None:
        for sample in trace:
            self.output_queue.put(
                {"timestamp": sample.timestamp, "duration": sample.duration, "energy": dict(sample.energy)}
            )


def get_power(output_queue: queue.Queue[Any], scrape_interval_s: float, stop_event: threading.Event) -> None:
    handler = QueueHandler(output_queue)

    def sleep_one_interval() -> None:
        time.sleep(scrape_interval_s)

    decorated = measure_energy(sleep_one_interval, handler=handler)
    while not stop_event.is_set():
        if DECORATE == "per_tick":
            measure_energy(sleep_one_interval, handler=handler)()
        else:
            decorated()


def process_data(input_queue: queue.Queue[Any], output_queue: queue.Queue[Any], stop_event: threading.Event) -> None:
    while not (stop_event.is_set() and input_queue.empty()):
        try:
            item = input_queue.get(timeout=0.1)
        except queue.Empty:
            continue
        timestamp_ms = int(item["timestamp"] * 1000)
        output_queue.put(
            [
                {
                    "metric": METRIC,
                    "labels": {"component": domain},
                    "value": float(energy),
                    "timestamp_ms": timestamp_ms,
                }
                for domain, energy in item["energy"].items()
            ]
        )
