"""The seed's sampling method on its own: ``python -m bench.seed_alone INTERVAL_S TICKS_JSON``.

The baseline of the CPU comparison, as the issue states it: pyJoules ``measure_energy`` around a sleep
(``bench/seed_impl.py``'s ``get_power``) and the turning of its results into records (its
``process_data``), nothing encoded or pushed. Both run in their threads as the seed's client ran them,
the records go nowhere. ``POWERCAP_ROOT`` and ``BENCH_SEED_DECORATE`` are read by ``seed_impl``. On
SIGTERM it stops, and writes the monotonic time (ns) of every tick to ``TICKS_JSON`` as ``{"t_ns": [...]}``,
so CPU per tick can be computed over any window.
"""

from __future__ import annotations

import json
import queue
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench import seed_impl


class _TickQueue(queue.Queue[Any]):
    """The raw queue, noting when each measurement is put (one per tick)."""

    def __init__(self) -> None:
        super().__init__()
        self.t_ns: list[int] = []

    def _put(self, item: Any) -> None:
        self.t_ns.append(time.monotonic_ns())
        super()._put(item)


class _Discard:
    """Where the records go: nowhere (the baseline pushes nothing)."""

    def put(self, item: Any, *args: Any, **kwargs: Any) -> None:
        pass


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m bench.seed_alone INTERVAL_S TICKS_JSON", file=sys.stderr)
        return 2
    interval_s, out = float(argv[0]), Path(argv[1])
    stop, process_stop = threading.Event(), threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    raw = _TickQueue()
    processor = threading.Thread(
        target=seed_impl.process_data, args=(raw, _Discard(), process_stop), name="process_data", daemon=True
    )
    processor.start()
    collector = threading.Thread(
        target=seed_impl.get_power, args=(raw, interval_s, stop), name="get_power", daemon=True
    )
    collector.start()
    while collector.is_alive():  # the main thread only waits, as the base client's does
        collector.join(5.0)
    process_stop.set()
    processor.join(5.0)
    out.write_text(json.dumps({"t_ns": raw.t_ns}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
