"""CPU seconds per sampling tick: cpu-pyjoules's get_power + process_data vs pyJoules's measure_energy path.

Usage (from the repository root, with both packages installed):

    python cpu-pyjoules/bench_tick_cpu.py [--seconds 10] [--rates 10,1000]

Both paths read the same fake powercap tree (4 zones: package-0, core, uncore, dram), which a separate
process advances every millisecond so its CPU is not counted here. CPU is this process's
``time.process_time()`` (all threads: the sampling loop, the processor, queue hand-offs) over a steady
stretch of the run, after a one-second warm-up, divided by the ticks run in that stretch. The pyJoules
baseline is what the seed's original did once per tick: a function decorated with ``measure_energy``
called (start + stop reading every counter, a trace built and handed to a handler), once with the
decorator built once ("reused"), once applied anew on each tick
("per tick", which also re-runs pyJoules's discovery). Its handler only keeps the trace, so the baseline
is a lower bound of the seed's cost. The later bench/ suite builds on this script.
"""

from __future__ import annotations

import argparse
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from cpu_pyjoules.fake_powercap import FakePowercap
from cpu_pyjoules.pipeline import Collector, Processor
from cpu_pyjoules.rapl_discovery import pyjoules_api_dir
from cpu_pyjoules.schedule import AbsoluteSchedule
from cpu_pyjoules.settings import Settings

WATTS = "package-0=25,core=15,uncore=2,dram=4"


class KeepLast:
    """A pyJoules handler that keeps the last trace (cheaper than the seed's record building)."""

    def __init__(self) -> None:
        self.trace = None

    def process(self, trace) -> None:  # noqa: ANN001 - pyJoules's handler interface
        self.trace = trace


def steady_cpu(count: callable, seconds: float, warmup: float = 1.0) -> tuple:
    """CPU seconds and ticks between two points in steady state (start-up and shutdown left out)."""
    time.sleep(warmup)
    cpu0, n0 = time.process_time(), count()
    time.sleep(seconds)
    return time.process_time() - cpu0, count() - n0


def run_ours(root: Path, interval: float, seconds: float) -> dict:
    # The thread path (SAMPLER_PROCESS=no): this script times get_power + process_data inside this process.
    settings = Settings(powercap_root=root, sampler_process="no")
    # The records queue is left to fill and read at the end: the base client's batcher is not measured.
    raw, out, stop = queue.Queue(), queue.Queue(), threading.Event()
    collector, processor = Collector(settings), Processor(settings)
    readings_t = []
    real_put = raw.put

    def put(item, *a, **k):  # noqa: ANN001 - records tick times for the lateness figures
        if type(item) is tuple:
            readings_t.append(item[0])
        real_put(item, *a, **k)

    raw.put = put  # type: ignore[method-assign]
    threads = [
        threading.Thread(target=collector.run, args=(raw, interval, stop)),
        threading.Thread(target=processor.run, args=(raw, out, stop)),
    ]
    for t in threads:
        t.start()
    cpu, ticks = steady_cpu(lambda: collector.samples, seconds)
    stop.set()
    for t in threads:
        t.join()
    records = _count(out)
    start_ns = collector.schedule.start * 1e9  # type: ignore[union-attr]
    step = interval * 1e9
    lateness_ms = sorted(((t - start_ns) % step) / 1e6 for t in readings_t)
    return {
        "ticks": ticks,
        "cpu_per_tick_us": cpu / ticks * 1e6,
        "skipped": collector.schedule.skipped,  # type: ignore[union-attr]
        "records": records,
        "p99_late_ms": lateness_ms[int(0.99 * (len(lateness_ms) - 1))] if lateness_ms else float("nan"),
        "median_late_ms": statistics.median(lateness_ms) if lateness_ms else float("nan"),
    }


def _count(out: queue.Queue) -> int:
    total = 0
    while True:
        try:
            total += len(out.get_nowait())
        except queue.Empty:
            return total


def run_pyjoules(root: Path, interval: float, seconds: float, per_tick_decoration: bool) -> dict:
    from pyJoules.energy_meter import measure_energy

    handler = KeepLast()

    def tick_body() -> None:
        pass

    def decorate():  # noqa: ANN202
        with pyjoules_api_dir(root / "intel-rapl"):  # pyJoules's own discovery, on the fake tree
            return measure_energy(tick_body, handler=handler)

    decorated = None if per_tick_decoration else decorate()
    stop = threading.Event()
    schedule = AbsoluteSchedule(interval)
    ticks = [0]

    def loop() -> None:
        for _ in schedule.ticks(stop):
            (decorate() if per_tick_decoration else decorated)()
            ticks[0] += 1

    thread = threading.Thread(target=loop)
    thread.start()
    cpu, n = steady_cpu(lambda: ticks[0], seconds)
    stop.set()
    thread.join()
    assert handler.trace is not None and len(handler.trace[0].energy) == 4
    return {"ticks": n, "cpu_per_tick_us": cpu / n * 1e6, "skipped": schedule.skipped}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rates", default="10,1000", help="sampling rates in Hz, comma-separated")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "powercap"
        FakePowercap(root, WATTS).build().close()
        fake = subprocess.Popen(
            [sys.executable, "-m", "cpu_pyjoules.fake_powercap", str(root), "--watts", WATTS, "--update-ms", "1"],
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(1.0)
            rows = []
            for rate in (float(r) for r in args.rates.split(",")):
                interval = 1.0 / rate
                ours = run_ours(root, interval, args.seconds)
                reused = run_pyjoules(root, interval, args.seconds, per_tick_decoration=False)
                fresh = run_pyjoules(root, interval, args.seconds, per_tick_decoration=True)
                rows.append((rate, ours, reused, fresh))
        finally:
            fake.terminate()
            fake.wait()
    print(f"CPU per sampling tick, 4 RAPL zones, {args.seconds:g} s per run (lower is better)")
    print(
        f"{'rate':>7} | {'cpu-pyjoules':>12} | {'measure_energy reused':>21} | {'measure_energy per tick':>23} |"
        f" {'ratio':>11} | {'ticks (skipped)':>15} | {'lateness p50/p99':>16}"
    )
    for rate, ours, reused, fresh in rows:
        base = ours["cpu_per_tick_us"]
        print(
            f"{rate:>5g}Hz | {ours['cpu_per_tick_us']:>9.1f} µs | {reused['cpu_per_tick_us']:>18.1f} µs |"
            f" {fresh['cpu_per_tick_us']:>20.1f} µs |"
            f" {reused['cpu_per_tick_us'] / base:>4.1f}x/{fresh['cpu_per_tick_us'] / base:>5.1f}x |"
            f" {ours['ticks']:>9} ({ours['skipped']}) | {ours['median_late_ms']:.3f}/{ours['p99_late_ms']:.3f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
