"""A MONITOR_IMPL wrapper that observes another implementation from outside, without changing it.

The benchmarks need two things the client does not report with enough precision: when each sampling tick
happened (to measure rate and lateness at 1 kHz, where millisecond sample timestamps are too coarse) and
how many records the implementation produced (to compare with what Prometheus stored). The contract gives
both at its seams, so this module loads the real implementation (``BENCH_INNER_IMPL``, a path to a .py
file) and wraps the queues the base client hands it:

* ``get_power``'s output queue: the time of every ``put`` and the item's type name. The time is the
  collector's own monotonic clock reading when the item carries one, as cpu-pyjoules's raw readings do
  (a tuple whose first element is ``time.monotonic_ns()`` taken at the tick; they come in lists, one
  list per second, and each reading in a list counts as a tick); otherwise the time of the ``put`` (the
  seed's method puts once per tick, after its measurement);
* ``process_data``'s output queue: the number of samples put (a record, a series batch, a list of them).

When each function returns (after SIGTERM, before the process exits) it writes what it saw as JSON to
``BENCH_PROBE_OUT`` + ``.ticks.json`` / ``.records.json``; at start it writes ``.threads.json``, the OS
thread id of every pipeline thread by name, so CPU can be split by thread. The cost is one clock read and
two list appends per tick, which is why the CPU benchmark runs the implementation without this wrapper.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any

from monitoring_client.impl_loader import load_impl
from monitoring_client.series_batch import samples_in

# Diagnosis only: BENCH_SWITCH_INTERVAL_S sets the interpreter's GIL switch interval before the client runs.
if os.environ.get("BENCH_SWITCH_INTERVAL_S"):
    sys.setswitchinterval(float(os.environ["BENCH_SWITCH_INTERVAL_S"]))
if os.environ.get("BENCH_GC_DISABLE"):
    import gc

    gc.disable()

_OUT = os.environ["BENCH_PROBE_OUT"]

# Loaded exactly as the client would load it as MONITOR_IMPL (its directory first on the import path).
inner = load_impl(os.environ["BENCH_INNER_IMPL"])

if hasattr(inner, "SERVICE_NAME"):
    SERVICE_NAME = inner.SERVICE_NAME


def _write(suffix: str, data: dict[str, Any]) -> None:
    tmp = f"{_OUT}{suffix}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, f"{_OUT}{suffix}")


class _TimedQueue:
    """Delegates to the real queue; notes the time and kind of every item put."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.times: list[int] = []
        self.kinds: list[str] = []

    def put(self, item: Any, *args: Any, **kwargs: Any) -> None:
        if type(item) is tuple and item and type(item[0]) is int:
            self.times.append(item[0])
        elif type(item) is list and item and type(item[0]) is tuple:  # a batch of readings: each is a tick
            self.times.extend(reading[0] for reading in item)
            self.kinds.extend("tuple" for _ in item)
            self._real.put(item, *args, **kwargs)
            return
        else:
            self.times.append(time.monotonic_ns())
        self.kinds.append(type(item).__name__)
        self._real.put(item, *args, **kwargs)

    def put_nowait(self, item: Any) -> None:
        self.put(item, False)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class _CountingQueue:
    """Delegates to the real queue; counts the samples put (records, series batches, lists of them)."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.records = 0
        self.items = 0

    def put(self, item: Any, *args: Any, **kwargs: Any) -> None:
        self.records += samples_in(item)
        self.items += 1
        self._real.put(item, *args, **kwargs)

    def put_nowait(self, item: Any) -> None:
        self.put(item, False)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def get_power(output_queue: Any, scrape_interval_s: float, stop_event: Any) -> None:
    # The base client starts get_power last, so every thread of the pipeline exists now: record which OS
    # thread is which, so the benchmark can split the process's CPU by thread from /proc.
    _write(".threads.json", {str(t.native_id): t.name for t in threading.enumerate()})
    timed = _TimedQueue(output_queue)
    try:
        inner.get_power(timed, scrape_interval_s, stop_event)
    finally:
        _write(".ticks.json", {"interval_s": scrape_interval_s, "t_ns": timed.times, "kinds": timed.kinds})


def process_data(input_queue: Any, output_queue: Any, stop_event: Any) -> None:
    counting = _CountingQueue(output_queue)
    try:
        inner.process_data(input_queue, counting, stop_event)
    finally:
        _write(".records.json", {"records": counting.records, "items": counting.items})
