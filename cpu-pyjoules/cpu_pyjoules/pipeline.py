"""The two halves of the seed's contract: ``get_power`` (collector) and ``process_data`` (processor).

The collector runs on the sampling schedule and does as little as possible per tick: one ``pread`` per zone,
a monotonic clock read before and after them (the reading is stamped with the midpoint; a read that was
preempted is redone), a wall-clock read, and an append of ``(monotonic_ns, wall_ms, [raw counters])`` to a
list that goes on the queue once a second (:class:`~monitoring_client.device_loop.ReadingBatches`): a put per tick
would wake the processor on every tick. Everything that can wait (wrap correction, plausibility, power,
record dicts) happens in the processor, so a slow moment there never delays a sample.

Between them travels, in order: one :class:`ZoneSetup` (the zones found), the raw readings (lists of
them; a single reading tuple is accepted too), and :data:`END` when the collector returns for any reason.
The processor returns once the stop event is set and it has seen ``END`` with its queue drained, so a
shutdown loses no reading that was taken.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, NamedTuple

from cpu_pyjoules.rapl_discovery import RaplZone, discover_zones
from cpu_pyjoules.rapl_reader import RaplReader
from cpu_pyjoules.records import ZoneSeries
from cpu_pyjoules.sampler_process import SamplerProcess, use_process
from cpu_pyjoules.sampling import RawReading, sample_ticks
from cpu_pyjoules.settings import Settings
from cpu_pyjoules.wraparound import CounterTracker
from monitoring_client.device_loop import END, BatchProcessor, ReadingBatches
from monitoring_client.errors import EnvironmentProblem
from monitoring_client.ratelimited_log import RateLimitedLog
from monitoring_client.series_batch import SeriesBatch
from monitoring_client.ticker import AbsoluteTicker

logger = logging.getLogger(__name__)

# Kinds of rate-limited log lines (keys of RateLimitedLog, also the words of its periodic summaries);
# those of sampling (unparsable readings, late ticks) are in cpu_pyjoules.sampling, merged samples in the
# base's device_loop.
DROPPED = "impossible energy deltas"
WARNING_PERIOD_S = 60.0


class ZoneSetup(NamedTuple):
    """First item on the raw queue: which zones the readings' values belong to, in order."""

    zones: tuple[RaplZone, ...]


def probe_zones(root: Any) -> tuple[RaplZone, ...]:
    """Discover the zones under ``root`` and check that every counter can be opened and read.

    Raises ``EnvironmentProblem`` otherwise. ``monitor_impl`` calls it at import time, so that a machine
    without readable RAPL stops at once with exit status 3, before the base client starts any thread.
    """
    zones = tuple(discover_zones(root))
    RaplReader([z.energy_path for z in zones]).close()
    return zones


@dataclass
class Collector:
    """``get_power``: discover zones, open the counters, sample them on an absolute schedule.

    Discovery, the reader and the clocks are injectable, so tests need no monkeypatching.
    """

    settings: Settings
    _: KW_ONLY
    discover: Callable[[Any], Sequence[RaplZone]] = discover_zones
    open_reader: Callable[[list[Any]], RaplReader] = RaplReader
    clock: Callable[[], float] = time.monotonic
    monotonic_ns: Callable[[], int] = time.monotonic_ns
    wall_ns: Callable[[], int] = time.time_ns
    schedule: AbsoluteTicker | None = field(default=None, init=False)
    warnings: RateLimitedLog = field(default_factory=lambda: RateLimitedLog(logger, WARNING_PERIOD_S), init=False)
    _batches: ReadingBatches | None = field(default=None, init=False)
    _relayed: int = field(default=0, init=False)  # readings relayed from the sampler child

    @property
    def samples(self) -> int:
        """Readings taken so far (handed on, or waiting in the current batch)."""
        return self._relayed + (self._batches.count if self._batches is not None else 0)

    def run(self, output_queue: queue.Queue[Any], scrape_interval_s: float, stop_event: threading.Event) -> None:
        try:
            zones = tuple(self.discover(self.settings.powercap_root))
            if use_process(self.settings.sampler_process, scrape_interval_s):
                self._relay_child(zones, output_queue, scrape_interval_s, stop_event)
                return
            reader = self.open_reader([z.energy_path for z in zones])
            with reader:
                logger.info(
                    "sampling %d RAPL zones under %s every %g s: %s",
                    len(zones),
                    self.settings.powercap_root,
                    scrape_interval_s,
                    ", ".join(f"{z.zone_id}={z.component}" for z in zones),
                )
                output_queue.put(ZoneSetup(zones))
                self._loop(reader, output_queue, scrape_interval_s, stop_event)
        finally:
            output_queue.put(END)

    def _loop(
        self, reader: RaplReader, output_queue: queue.Queue[Any], interval_s: float, stop_event: threading.Event
    ) -> None:
        schedule = self.schedule = AbsoluteTicker(interval_s, clock=self.clock)
        batches = self._batches = ReadingBatches(output_queue.put, clock_ns=self.monotonic_ns)
        try:
            sample_ticks(
                schedule,
                reader,
                batches,
                stop_event,
                self.warnings,
                monotonic_ns=self.monotonic_ns,
                wall_ns=self.wall_ns,
            )
        finally:
            batches.flush()  # what the last second read, before END

    def _relay_child(
        self,
        zones: tuple[RaplZone, ...],
        output_queue: queue.Queue[Any],
        interval_s: float,
        stop_event: threading.Event,
    ) -> None:
        """Sample in a child process (see ``sampler_process``) and pass its readings on unchanged."""
        child = SamplerProcess([z.energy_path for z in zones], interval_s, realtime=self.settings.sampler_realtime)
        logger.info(
            "sampling %d RAPL zones under %s every %g s in a child process (pid %d): %s",
            len(zones),
            self.settings.powercap_root,
            interval_s,
            child.pid,
            ", ".join(f"{z.zone_id}={z.component}" for z in zones),
        )

        def stop_child() -> None:  # closing the child's stdin is its stop signal
            stop_event.wait()
            child.stop()

        threading.Thread(target=stop_child, name="sampler-stop", daemon=True).start()
        try:
            output_queue.put(ZoneSetup(zones))
            put = output_queue.put
            for frame in child.frames():  # already batched by the child: one put per frame
                put(frame)
                self._relayed += len(frame)
            status = child.wait()
        finally:
            child.kill()
        if status == EnvironmentProblem.exit_status:
            raise EnvironmentProblem(
                "The RAPL sampler process stopped because a counter could not be read (its message is above)."
            )
        if status != 0 or not stop_event.is_set():
            raise RuntimeError(f"the RAPL sampler process (pid {child.pid}) ended unexpectedly with status {status}")


class Processor:
    """``process_data``: raw readings -> wrap-corrected energy, power and running total, as series batches.

    The loop is the base's ``BatchProcessor`` (one wake-up per list the collector hands on, same-millisecond
    readings merged into the next, a drained queue at shutdown); ``ZoneSetup`` goes to :meth:`setup`.
    """

    def __init__(self, settings: Settings, *, drain_grace_s: float = 2.0, clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        # Longest wait for the next batch before looking at the stop event again. Batches come every
        # second, and after the collector's END this thread waits on the stop event itself.
        self.idle_wait_s = 5.0
        self.drain_grace_s = drain_grace_s
        self.clock = clock
        self.zones: tuple[RaplZone, ...] = ()
        self.trackers: list[CounterTracker] = []
        self.series: ZoneSeries | None = None
        self.warnings = RateLimitedLog(logger, WARNING_PERIOD_S)
        self.loop: BatchProcessor | None = None

    @property
    def samples_out(self) -> int:
        """Samples handed on so far."""
        return self.loop.samples_out if self.loop is not None else 0

    def run(self, input_queue: queue.Queue[Any], output_queue: queue.Queue[Any], stop_event: threading.Event) -> None:
        self.loop = BatchProcessor(
            self.handle,
            self.take,
            on_item=self.setup,
            drain_grace_s=self.drain_grace_s,
            idle_wait_s=self.idle_wait_s,
            clock=self.clock,
        )
        self.loop.run(input_queue, output_queue, stop_event)

    def setup(self, item: object) -> None:
        """The zones the readings' values belong to (``ZoneSetup``, first on the queue)."""
        if not isinstance(item, ZoneSetup):
            raise TypeError(f"unexpected item on the raw queue: {item!r}")
        zones = self.zones = tuple(item.zones)
        ceiling = self.settings.max_zone_power_w
        self.trackers = [CounterTracker(z.max_energy_range_uj, ceiling) for z in zones]
        self.series = ZoneSeries(zones, self.settings.metric_prefix)

    def take(self) -> list[SeriesBatch]:
        return self.series.take() if self.series is not None else []

    def handle(self, readings: list[RawReading]) -> None:
        series = self.series
        assert series is not None, "raw reading before ZoneSetup"
        # Per zone and reading: the tracker, then four appends to the zone's lists (no call: this runs for
        # every zone of every reading).
        zones = [
            (i, tracker, series.stamps[i], energy_uj, power_w, total_j)
            for i, (tracker, (energy_uj, power_w, total_j)) in enumerate(zip(self.trackers, series.values, strict=True))
        ]
        for t_ns, wall_ms, values in readings:
            for i, tracker, stamps, energy_uj, power_w, total_j in zones:
                result = tracker.update(values[i], t_ns)
                if result is not None:
                    delta_uj, interval_ns = result
                    stamps.append(wall_ms)
                    energy_uj.append(float(delta_uj))
                    power_w.append(delta_uj * 1000.0 / interval_ns)  # µJ / ns * 1000 = J/s
                    total_j.append(tracker.total_uj / 1e6)
                elif tracker.dropped and tracker.suspect_ns == t_ns:
                    self.warnings.report(
                        DROPPED,
                        f"impossible RAPL energy delta dropped: zone {self.zones[i].zone_id}: "
                        f"counter {values[i]} after {tracker.prev_raw} "
                        f"(range {tracker.max_range_uj}, ceiling {tracker.ceiling_w:g} W)",
                    )
