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
from cpu_pyjoules.records import Record, RecordBuilder
from cpu_pyjoules.sampler_process import SamplerProcess, use_process
from cpu_pyjoules.sampling import RawReading, sample_ticks
from cpu_pyjoules.schedule import AbsoluteSchedule
from cpu_pyjoules.settings import Settings
from cpu_pyjoules.wraparound import CounterTracker
from monitoring_client.device_loop import ReadingBatches
from monitoring_client.errors import EnvironmentProblem
from monitoring_client.ratelimited_log import RateLimitedLog

logger = logging.getLogger(__name__)

# Kinds of rate-limited log lines (keys of RateLimitedLog, also the words of its periodic summaries);
# those of sampling (unparsable readings, late ticks) are in cpu_pyjoules.sampling.
DROPPED = "impossible energy deltas"
HELD_BACK = "merged samples"
WARNING_PERIOD_S = 60.0


class ZoneSetup(NamedTuple):
    """First item on the raw queue: which zones the readings' values belong to, in order."""

    zones: tuple[RaplZone, ...]


class _End:
    def __repr__(self) -> str:
        return "END"


END = _End()  # last item on the raw queue: the collector has returned

# Drain at most this many readings per batch, so the processor hands records on at least this often.
_BATCH = 512


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
    schedule: AbsoluteSchedule | None = field(default=None, init=False)
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
        schedule = self.schedule = AbsoluteSchedule(interval_s, clock=self.clock)
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
    """``process_data``: raw readings -> wrap-corrected energy, power and running total records."""

    def __init__(self, settings: Settings, *, drain_grace_s: float = 2.0, clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        # Longest wait for the next batch before looking at the stop event again. Batches come every
        # second, and after the collector's END this thread waits on the stop event itself.
        self.idle_wait_s = 5.0
        self.drain_grace_s = drain_grace_s
        self.clock = clock
        self.zones: tuple[RaplZone, ...] = ()
        self.trackers: list[CounterTracker] = []
        self.builder: RecordBuilder | None = None
        self.last_wall_ms = -1
        self.records_out = 0
        self.warnings = RateLimitedLog(logger, WARNING_PERIOD_S)
        # Merged samples are normal at kHz rates (timestamps have millisecond resolution): INFO, not WARNING.
        self.notices = RateLimitedLog(logger, WARNING_PERIOD_S, level=logging.INFO)

    def run(self, input_queue: queue.Queue[Any], output_queue: queue.Queue[Any], stop_event: threading.Event) -> None:
        # Blocks on the queue: the collector puts its readings once a second as one list, so this thread
        # wakes about once a second whatever the sampling rate, and hands the records of a whole batch on
        # with one put. After the stop event it drains the queue and returns once the collector's END was
        # seen (or, if END never comes, after the grace period).
        get = input_queue.get
        ended = False
        stop_seen_at: float | None = None
        while True:
            stopping = stop_event.is_set()
            if stopping and stop_seen_at is None:
                stop_seen_at = self.clock()
            if ended and not stopping:  # the collector has returned: nothing comes before the stop
                stop_event.wait(self.idle_wait_s)
                continue
            batch: list[Any] = []
            try:
                batch.append(get(timeout=0.05 if stopping else self.idle_wait_s))
            except queue.Empty:
                pass
            ended = self._drain(input_queue, output_queue, batch) or ended
            if stopping and input_queue.empty():
                assert stop_seen_at is not None
                if ended or self.clock() - stop_seen_at >= self.drain_grace_s:
                    return

    def _drain(self, input_queue: queue.Queue[Any], output_queue: queue.Queue[Any], batch: list[Any]) -> bool:
        """Handle everything queued, in chunks of at most _BATCH readings; True if END was among them."""
        get_nowait = input_queue.get_nowait
        ended = False
        while True:
            try:
                while len(batch) < _BATCH:
                    batch.append(get_nowait())
            except queue.Empty:
                if batch:
                    ended = self._handle(batch, output_queue) or ended
                return ended
            ended = self._handle(batch, output_queue) or ended
            batch = []

    def _handle(self, batch: list[Any], output_queue: queue.Queue[Any]) -> bool:
        """Process a batch; put the records as one list. Returns True if END was in it."""
        out: list[Record] = []
        ended = False
        reading = self._reading
        for item in batch:
            if type(item) is list:
                for one in item:
                    reading(one, out)
            elif type(item) is tuple:
                reading(item, out)
            elif item is END:
                ended = True
            elif isinstance(item, ZoneSetup):
                self._setup(item.zones)
        if out:
            output_queue.put(out)
            self.records_out += len(out)
        return ended

    def _setup(self, zones: Sequence[RaplZone]) -> None:
        self.zones = tuple(zones)
        ceiling = self.settings.max_zone_power_w
        self.trackers = [CounterTracker(z.max_energy_range_uj, ceiling) for z in zones]
        self.builder = RecordBuilder(zones, self.settings.metric_prefix)

    def _reading(self, reading: RawReading, out: list[Record]) -> None:
        t_ns, wall_ms, values = reading
        if wall_ms <= self.last_wall_ms:
            # Same millisecond as the previous sample (or the wall clock stepped back): a remote-write
            # receiver rejects non-increasing timestamps, so skip it; the trackers have not seen it, so
            # the next sample's interval includes this one and no energy is lost.
            self.notices.report(
                HELD_BACK,
                f"sample merged into the next one: wall clock {wall_ms} ms <= previous {self.last_wall_ms} ms",
            )
            return
        self.last_wall_ms = wall_ms
        builder = self.builder
        assert builder is not None, "raw reading before ZoneSetup"
        append = builder.append
        for i, tracker in enumerate(self.trackers):
            result = tracker.update(values[i], t_ns)
            if result is not None:
                append(out, i, result[0], result[1], tracker.total_uj, wall_ms)
            elif tracker.dropped and tracker.suspect_ns == t_ns:
                self.warnings.report(
                    DROPPED,
                    f"impossible RAPL energy delta dropped: zone {self.zones[i].zone_id}: "
                    f"counter {values[i]} after {tracker.prev_raw} "
                    f"(range {tracker.max_range_uj}, ceiling {tracker.ceiling_w:g} W)",
                )
