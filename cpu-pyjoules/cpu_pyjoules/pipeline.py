"""The two halves of the seed's contract: ``get_power`` (collector) and ``process_data`` (processor).

The collector runs on the sampling schedule and does as little as possible per tick: one ``pread`` per zone,
a monotonic clock read before and after them (the reading is stamped with the midpoint; a read that was
preempted is redone), a wall-clock read, one queue put of ``(monotonic_ns, wall_ms, [raw counters])``.
Everything that can wait (wrap correction, plausibility, power, record dicts) happens in the processor,
which takes readings in batches, so a slow moment there never delays a sample.

Between them travels, in order: one :class:`ZoneSetup` (the zones found), the raw readings, and
:data:`END` when the collector returns for any reason. The processor returns once the stop event is set
and it has seen ``END`` with its queue drained, so a shutdown loses no reading that was taken.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any, Callable, List, NamedTuple, Optional, Sequence, Tuple

from monitoring_client.ratelimited_log import RateLimitedLog

from cpu_pyjoules.rapl_discovery import RaplZone, discover_zones
from cpu_pyjoules.rapl_reader import CounterGlitch, RaplReader
from cpu_pyjoules.records import Record, RecordBuilder
from cpu_pyjoules.schedule import AbsoluteSchedule
from cpu_pyjoules.settings import Settings
from cpu_pyjoules.wraparound import CounterTracker

logger = logging.getLogger(__name__)

# Kinds of rate-limited log lines (keys of RateLimitedLog, also the words of its periodic summaries).
GLITCH = "unparsable counter readings"
LATE = "late-tick reports"
DROPPED = "impossible energy deltas"
HELD_BACK = "merged samples"
WARNING_PERIOD_S = 60.0

RawReading = Tuple[int, int, List[int]]  # (monotonic ns, wall-clock ms, counters in zone order)


class ZoneSetup(NamedTuple):
    """First item on the raw queue: which zones the readings' values belong to, in order."""

    zones: Tuple[RaplZone, ...]


class _End:
    def __repr__(self) -> str:
        return "END"


END = _End()  # last item on the raw queue: the collector has returned

# Reading every counter takes some microseconds; one that took longer than this was interrupted.
_SLOW_READ_NS = 1_000_000

# Drain at most this many readings per batch, so the processor hands records on at least this often.
_BATCH = 512


def probe_zones(root: Any) -> Tuple[RaplZone, ...]:
    """Discover the zones under ``root`` and check that every counter can be opened and read.

    Raises ``EnvironmentProblem`` otherwise. ``monitor_impl`` calls it at import time, so that a machine
    without readable RAPL stops at once with exit status 3, before the base client starts any thread.
    """
    zones = tuple(discover_zones(root))
    RaplReader([z.energy_path for z in zones]).close()
    return zones


class Collector:
    """``get_power``: discover zones, open the counters, sample them on an absolute schedule."""

    def __init__(
        self,
        settings: Settings,
        *,
        discover: Callable[[Any], Sequence[RaplZone]] = discover_zones,
        open_reader: Callable[[List[Any]], RaplReader] = RaplReader,
        clock: Callable[[], float] = time.monotonic,
        monotonic_ns: Callable[[], int] = time.monotonic_ns,
        wall_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.settings = settings
        self.discover = discover
        self.open_reader = open_reader
        self.clock = clock
        self.monotonic_ns = monotonic_ns
        self.wall_ns = wall_ns
        self.schedule: Optional[AbsoluteSchedule] = None
        self.samples = 0
        self.warnings = RateLimitedLog(logger, WARNING_PERIOD_S)

    def run(self, output_queue: "queue.Queue[Any]", scrape_interval_s: float, stop_event: threading.Event) -> None:
        try:
            zones = tuple(self.discover(self.settings.powercap_root))
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
        self, reader: RaplReader, output_queue: "queue.Queue[Any]", interval_s: float, stop_event: threading.Event
    ) -> None:
        schedule = self.schedule = AbsoluteSchedule(interval_s, clock=self.clock)
        read = reader.read
        put = output_queue.put
        monotonic_ns = self.monotonic_ns
        wall_ns = self.wall_ns
        skipped_seen = 0
        for _ in schedule.ticks(stop_event):
            try:
                t0 = monotonic_ns()
                values = read()
                t1 = monotonic_ns()
                if t1 - t0 > _SLOW_READ_NS:
                    # Preempted mid-read: the time stamp would not match the counters. Read again.
                    t0 = monotonic_ns()
                    values = read()
                    t1 = monotonic_ns()
            except CounterGlitch as exc:
                self.warnings.report(GLITCH, f"unparsable RAPL counter text, sample skipped: {exc}")
                continue
            put(((t0 + t1) >> 1, wall_ns() // 1_000_000, values))
            self.samples += 1
            if schedule.skipped != skipped_seen:
                missed = schedule.skipped - skipped_seen
                self.warnings.report(LATE, f"{missed} sampling tick(s) skipped because the collector ran late", missed)
                skipped_seen = schedule.skipped


class Processor:
    """``process_data``: raw readings -> wrap-corrected energy, power and running total records."""

    def __init__(self, settings: Settings, *, drain_grace_s: float = 2.0, clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        self.batch_period_s = 0.25
        self.drain_grace_s = drain_grace_s
        self.clock = clock
        self.zones: Tuple[RaplZone, ...] = ()
        self.trackers: List[CounterTracker] = []
        self.builder: Optional[RecordBuilder] = None
        self.last_wall_ms = -1
        self.records_out = 0
        self.warnings = RateLimitedLog(logger, WARNING_PERIOD_S)
        # Merged samples are normal at kHz rates (timestamps have millisecond resolution): INFO, not WARNING.
        self.notices = RateLimitedLog(logger, WARNING_PERIOD_S, level=logging.INFO)

    def run(
        self, input_queue: "queue.Queue[Any]", output_queue: "queue.Queue[Any]", stop_event: threading.Event
    ) -> None:
        # Readings are taken in batches every ``batch_period_s`` rather than one blocking get() per reading:
        # waking a thread costs more CPU than handling a reading, and at 1 kHz that would double the
        # cost of a tick. The delay this adds (<= 0.25 s) is well below the base client's push interval.
        ended = False
        stop_seen_at: Optional[float] = None
        while True:
            stopping = stop_event.is_set()
            batch: List[Any] = []
            if not stopping:
                stop_event.wait(self.batch_period_s)
            else:
                if stop_seen_at is None:
                    stop_seen_at = self.clock()
                try:  # wait briefly for what the collector still sends (its END)
                    batch.append(input_queue.get(timeout=0.05))
                except queue.Empty:
                    pass
            ended = self._drain(input_queue, output_queue, batch) or ended
            if stopping and input_queue.empty():
                assert stop_seen_at is not None
                if ended or self.clock() - stop_seen_at >= self.drain_grace_s:
                    return

    def _drain(self, input_queue: "queue.Queue[Any]", output_queue: "queue.Queue[Any]", batch: List[Any]) -> bool:
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

    def _handle(self, batch: List[Any], output_queue: "queue.Queue[Any]") -> bool:
        """Process a batch; put the records as one list. Returns True if END was in it."""
        out: List[Record] = []
        ended = False
        for item in batch:
            if type(item) is tuple:
                self._reading(item, out)
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

    def _reading(self, reading: RawReading, out: List[Record]) -> None:
        t_ns, wall_ms, values = reading
        if wall_ms <= self.last_wall_ms:
            # Same millisecond as the previous sample (or the wall clock stepped back): a remote-write
            # receiver rejects non-increasing timestamps, so skip it; the trackers have not seen it, so
            # the next sample's interval includes this one and no energy is lost.
            self.notices.report(
                HELD_BACK, f"sample merged into the next one: wall clock {wall_ms} ms <= previous {self.last_wall_ms} ms"
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
                    f"(range {tracker.max_range_uj}, ceiling {tracker.ceiling_w:g} W)"
                )
