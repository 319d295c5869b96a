"""The running client: four threads joined by bounded queues, and an orderly shutdown.

    collector  impl.get_power(raw_queue, SCRAPE_INTERVAL_S, collect_stop)
    processor  impl.process_data(raw_queue, proc_queue, process_stop)
    batcher    every PUSH_INTERVAL_S: proc_queue -> validate -> ordering guard -> group by series -> encode
               -> payload buffer (never touches the network, so a slow receiver cannot stall collection)
    sender     payload buffer -> HTTP POST, oldest first, with retries

Shutdown (SIGTERM/SIGINT, or a thread that failed) runs front to back so nothing in between is lost:
stop the collector; once it has returned, stop the processor (which drains its input queue first, per the
contract); then the batcher drains the processed queue and encodes the rest; then the sender sends what
is buffered. All of it within SHUTDOWN_TIMEOUT_S (default 8 s, under Docker's 10 s stop timeout); what
could not be sent by then is counted as dropped (reason shutdown_timeout) and logged.

A second stop request quits at once (``abort``): what is grouped or queued is encoded into the store first
when there is a spool (so it stays on disk for the next start), and the log says how many samples the
exit costs (counted ``aborted``).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

from monitoring_client.config import Config
from monitoring_client.encoder import Encoder, Payload, SeriesSamples
from monitoring_client.errors import EnvironmentProblem, UserError
from monitoring_client.health import HealthServer, HealthState
from monitoring_client.impl_loader import service_name
from monitoring_client.ordering import OrderingGuard
from monitoring_client.ratelimited_log import RateLimitedLog
from monitoring_client.records import (
    ABORTED,
    BUFFER_FULL,
    EXPIRED,
    OUT_OF_ORDER,
    REJECTED,
    SHUTDOWN_TIMEOUT,
    RecordNormalizer,
    SeriesKey,
    series_text,
)
from monitoring_client.redaction import redact_url
from monitoring_client.retry_policy import Backoff
from monitoring_client.self_metrics import SelfMetrics, SelfRegistry
from monitoring_client.send_buffer import DropListener, MemoryStore, PayloadStore
from monitoring_client.sender import Sender
from monitoring_client.series_batch import SeriesBatch, group_batch, samples_in
from monitoring_client.spool import Spool, SpoolCollector, SpoolStore
from monitoring_client.spool_files import max_file_bytes
from monitoring_client.transport_setup import build_transport

if TYPE_CHECKING:
    import requests

log = logging.getLogger(__name__)


class ProcessedQueue(queue.Queue[Any]):
    """The processed queue: a put does not wake the batcher, which takes everything when a push is due,
    unless the queue is half full (``on_high_water`` is then called). ``on_records(n)`` counts the samples
    of each item as it is put, so the count of received samples does not wait for the next push.
    Both callbacks run under the queue's lock."""

    def __init__(self, maxsize: int, on_high_water: Callable[[], None], on_records: Callable[[int], None]) -> None:
        super().__init__(maxsize)
        self._high_water = max(maxsize // 2, 1)
        self._on_high_water = on_high_water
        self._on_records = on_records

    def _put(self, item: Any) -> None:
        self.queue.append(item)
        self._on_records(samples_in(item))
        if len(self.queue) >= self._high_water:
            self._on_high_water()


# Longest sleep of the main thread between checks for a stop request (signals interrupt it anyway).
IDLE_WAKE_S = 5.0

# Part of SHUTDOWN_TIMEOUT_S kept for sending: the implementation's threads may use the rest to return.
SEND_RESERVE_FRACTION = 0.5
# How often the accepted window of timestamps (MAX_SAMPLE_AGE_S, MAX_SAMPLE_AHEAD_S) follows the clock.
WINDOW_UPDATE_S = 1.0
# Longest wait of a second stop request for the batcher to let go of what it holds.
ABORT_WAIT_S = 1.0
# At most one ERROR line per this many seconds about requests the receiver refused (the first at once).
REFUSAL_LOG_INTERVAL_S = 30.0


def build_store(config: Config, on_drop: DropListener, registry: SelfRegistry | None = None) -> PayloadStore:
    """The payload store: in memory, or with SPOOL_DIR on disk too (its metrics then join ``registry``).

    With a spool the memory bounds (MAX_RETRY_BATCHES, MAX_BUFFER_BYTES) only apply to payloads that could
    not be written to disk; SPOOL_MAX_BYTES and SPOOL_MAX_AGE_S bound the files.
    """
    if config.spool_dir is None:
        return MemoryStore(config.max_retry_batches, config.max_buffer_bytes, on_drop=on_drop)
    spool = Spool(
        config.spool_dir,
        max_bytes=config.spool_max_bytes,
        max_age_s=config.spool_max_age_s,
        max_file_bytes=max_file_bytes(config.max_request_bytes),
    )
    store = SpoolStore(
        spool,
        max_memory_payloads=config.max_retry_batches,
        max_memory_bytes=config.max_buffer_bytes,
        on_drop=on_drop,
    )
    if registry is not None:
        registry.register(SpoolCollector(store))
    return store


class Pipeline:
    """Wires the implementation to the sender. ``run()`` blocks until shutdown and returns the exit status."""

    def __init__(
        self,
        config: Config,
        impl: ModuleType,
        *,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.impl = impl
        self._clock = clock
        self._wall = wall_clock
        self.source = config.service_label or service_name(impl)
        self.external_labels = {"source": self.source, "host": config.host_label}

        self.raw_queue: queue.Queue[Any] = queue.Queue(config.raw_queue_size)
        self.collect_stop = threading.Event()
        self.process_stop = threading.Event()
        self._batcher_stop = threading.Event()
        self._batcher_wake = threading.Event()  # push early: the processed queue is half full, or shutdown
        self.metrics = SelfMetrics()
        self.proc_queue: queue.Queue[Any] = ProcessedQueue(
            config.proc_queue_size, self._batcher_wake.set, self.metrics.samples_received.inc
        )
        self._shutdown = threading.Event()
        self._lock = threading.Lock()
        self.exit_status = 0
        self.fatal_message: str | None = None
        self.stop_reason = ""

        # A request (or the work on one) lasting much longer than the request timeout means a stuck sender.
        self.health = HealthState(stuck_after_s=max(30.0, 3 * config.request_timeout_s))
        self.store = build_store(config, self._payload_dropped, self.metrics.registry)
        self.metrics.buffered_payloads.set_function(lambda: len(self.store))
        self.metrics.buffered_bytes.set_function(lambda: self.store.nbytes)
        self._drops = RateLimitedLog(log, 10.0)
        self._refusals = RateLimitedLog(log, REFUSAL_LOG_INTERVAL_S, level=logging.ERROR)
        self.normalizer = RecordNormalizer(
            self.external_labels, self._record_dropped, max_cached_series=config.max_series
        )
        self._window_due = 0.0
        self.guard = OrderingGuard(config.max_series)
        self.encoder = Encoder(config.max_samples_per_request, config.max_request_bytes, max_series=config.max_series)
        self.sender = Sender(
            config.remote_write_url,
            self.store,
            Backoff(config.retry_base_s, config.retry_max_s),
            self.metrics,
            self.health,
            timeout_s=config.request_timeout_s,
            session=session,
            transport=build_transport(config),
            clock=clock,
            wall_clock=wall_clock,
            max_sample_age_s=config.max_sample_age_s,
        )
        self._groups: dict[SeriesKey, SeriesSamples] = {}
        self._pending = 0
        # Held by the batcher while it ingests and encodes, so that a second stop request (``abort``) can
        # take over what it holds.
        self._batch_lock = threading.Lock()
        self._last_self_ts = 0
        self._self_keys: dict[tuple[str, tuple[tuple[str, str], ...]], SeriesKey | None] = {}
        self._threads: dict[str, threading.Thread] = {}
        self.health_server: HealthServer | None = None

    # -- drop accounting ---------------------------------------------------------------------------------
    def _record_dropped(self, reason: str, detail: str, count: int = 1) -> None:
        self.metrics.dropped(reason, count)
        self._drops.report(f"dropped records ({reason})", f"dropped {count} record(s) ({reason}): {detail}", count)

    def _payload_dropped(self, reason: str, payload: Payload, detail: str) -> None:
        """The store's drop listener: a payload let go (a bound, a refusal, an unreadable file) is counted
        like any other drop; refusals by the receiver are errors (someone has to look), logged as such."""
        if reason in (BUFFER_FULL, EXPIRED):
            self.health.overflow()
        age = self._clock() - payload.created
        text = f"{detail} ({payload.samples} samples, {age:.0f}s old)"
        if reason != REJECTED:
            self._record_dropped(reason, text, payload.samples)
            return
        self.metrics.dropped(reason, payload.samples)
        self._refusals.report("requests refused by the receiver", text, samples=payload.samples)

    # -- control -----------------------------------------------------------------------------------------
    def request_stop(self, reason: str = "stop requested") -> None:
        """Begin the orderly shutdown (from a signal handler or any thread); idempotent."""
        with self._lock:
            if not self.stop_reason:
                self.stop_reason = reason
        self._shutdown.set()

    def _fail(self, status: int, message: str) -> None:
        with self._lock:
            if self.fatal_message is None:
                self.exit_status = status
                self.fatal_message = message
        self.health.dead(message.splitlines()[0] if message else "failed")
        self.request_stop(message.splitlines()[0] if message else "failure")

    def _guarded(self, name: str, target: Callable[[], None], own_stop: threading.Event | None) -> Callable[[], None]:
        """Run a thread body; any escape (exception, or an early return) shuts the client down."""

        def body() -> None:
            try:
                target()
            except UserError as exc:
                self._fail(exc.exit_status, str(exc))
            except BaseException:
                log.exception("%s thread crashed; the client shuts down with exit status 1", name)
                self._fail(1, f"{name} crashed")
            else:
                if own_stop is not None and not own_stop.is_set():
                    log.error(
                        "%s returned before it was asked to stop; the client shuts down with exit status 1"
                        " so that it gets restarted",
                        name,
                    )
                    self._fail(1, f"{name} returned unexpectedly")

        return body

    def _start(self, name: str, target: Callable[[], None], own_stop: threading.Event | None) -> None:
        thread = threading.Thread(target=self._guarded(name, target, own_stop), name=name, daemon=True)
        self._threads[name] = thread
        thread.start()

    # -- run -----------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the health server (if configured) and the four threads."""
        cfg = self.config
        # What a previous run left goes first and bypasses the guard (it was checked when first encoded).
        # Seeding the guard with its newest timestamps makes new samples stamped earlier (the clock was set
        # back while the client was down) drop one by one, counted, instead of making the receiver refuse
        # whole requests.
        for key, ts in self.store.open().items():
            self.guard.accept(key, ts)
        if cfg.health_port is not None:
            try:
                self.health_server = HealthServer(cfg.health_host, cfg.health_port, self.health, self.metrics.registry)
            except OSError as exc:
                raise EnvironmentProblem(
                    f"HEALTH_PORT={cfg.health_port}: cannot listen on {cfg.health_host}:{cfg.health_port} ({exc}).\n"
                    "Choose a free port, or unset HEALTH_PORT to run without the health endpoint."
                ) from None
            self.health_server.start()
            log.info("health endpoint on http://%s:%d/healthz and /metrics", cfg.health_host, self.health_server.port)
        log.info(
            "pushing to %s every %gs (collecting every %gs) as source=%r host=%r",
            redact_url(cfg.remote_write_url),
            cfg.push_interval_s,
            cfg.scrape_interval_s,
            self.source,
            cfg.host_label,
        )
        self._start("sender", self.sender.run, None)
        self._start("batcher", self._batch_loop, self._batcher_stop)
        self._start(
            "process_data",
            lambda: self.impl.process_data(self.raw_queue, self.proc_queue, self.process_stop),
            self.process_stop,
        )
        self._start(
            "get_power",
            lambda: self.impl.get_power(self.raw_queue, cfg.scrape_interval_s, self.collect_stop),
            self.collect_stop,
        )

    def run(self) -> int:
        """Start, wait for a stop request, shut down in order; return the process exit status."""
        self.start()
        # Signals interrupt the wait (their handler sets the event); the timeout is only a safety net, long
        # because every wake-up of an idle thread costs CPU.
        while not self._shutdown.wait(IDLE_WAKE_S):
            pass
        self.shutdown()
        return self.exit_status

    def shutdown(self) -> None:
        cfg = self.config
        deadline = self._clock() + cfg.shutdown_timeout_s
        threads_deadline = deadline - cfg.shutdown_timeout_s * SEND_RESERVE_FRACTION
        log.info("stopping (%s): flushing within %gs", self.stop_reason or "stop requested", cfg.shutdown_timeout_s)

        self.collect_stop.set()
        self._join("get_power", threads_deadline)
        self.process_stop.set()
        self._join("process_data", threads_deadline)
        self._batcher_stop.set()
        self._batcher_wake.set()  # it sleeps until its next push: it drains the queue and flushes now
        self._join("batcher", deadline - 0.5)
        self.sender.finish(deadline)
        self._join("sender", deadline + 0.5)

        lost = self.store.drain()
        if lost:
            samples = sum(p.samples for p in lost)
            self.metrics.dropped(SHUTDOWN_TIMEOUT, samples)
            log.error(
                "could not send %d samples (%d requests) before the %gs shutdown deadline: they are lost",
                samples,
                len(lost),
                cfg.shutdown_timeout_s,
            )
        self._drops.flush()
        self._refusals.flush()
        if self.health_server is not None:
            self.health_server.stop()

    def close(self) -> None:
        """After a start that failed before any thread ran: let go of the store (its files stay) and the port."""
        self.store.drain()
        if self.health_server is not None:
            self.health_server.stop()

    def abort(self, why: str) -> str:
        """A second stop request: stop at once. With a spool, what is still grouped or queued for the
        batcher is encoded into it first (it stays on disk for the next start). Counts what the exit loses
        (``aborted``) and returns the line that says so."""
        spooled = isinstance(self.store, SpoolStore) and self.store.spool.disk_ok
        held = self._batch_lock.acquire(timeout=ABORT_WAIT_S)
        try:
            if held and spooled:  # the batcher is locked out: take over what waits for it
                self._take_processed(None)
                self.flush()
            grouped = self._pending
            queued = self._queued_records()
            kept = (
                (self.store.disk_payloads(), self.store.disk_samples()) if isinstance(self.store, SpoolStore) else None
            )
            lost_payloads = self.store.drain()
        finally:
            if held:
                self._batch_lock.release()
        in_memory = sum(p.samples for p in lost_payloads)
        lost = in_memory + grouped + queued
        self.metrics.dropped(ABORTED, lost)
        raw = self.raw_queue.qsize()
        line = (
            f"{why}: exiting at once without sending; {lost} samples dropped ({in_memory} buffered in memory,"
            f" {grouped} not yet encoded, {queued} queued for the batcher)"
            + (f", and {raw} readings the implementation had not processed" if raw else "")
        )
        if isinstance(self.store, SpoolStore) and kept is not None:
            line += (
                f"; {kept[1]} samples ({kept[0]} requests) stay in the spool {self.store.spool.directory} and are"
                " sent after the next start"
            )
        self._drops.flush()
        self._refusals.flush()
        return line

    def _queued_records(self) -> int:
        """Samples waiting in the processed queue (an item is a record, a series batch or a list of them)."""
        with self.proc_queue.mutex:
            items = list(self.proc_queue.queue)
        return sum(map(samples_in, items))

    def _join(self, name: str, until: float) -> None:
        thread = self._threads.get(name)
        if thread is None:
            return
        thread.join(max(until - self._clock(), 0.0))
        if thread.is_alive():
            log.warning("%s did not return in time after being asked to stop; going on without it", name)

    # -- batcher -------------------------------------------------------------------------------------------
    def _batch_loop(self) -> None:
        # One wake-up per push, whatever the implementation's rate of puts: the batcher sleeps until the
        # push is due and then takes everything queued (a put only wakes it when the queue is half full).
        cfg = self.config
        next_flush = self._clock() + cfg.push_interval_s
        next_self = self._clock()  # first self-metrics with the first push
        wake = self._batcher_wake
        while True:
            stopping = self._batcher_stop.is_set()
            if not stopping:
                wake.wait(max(next_flush - self._clock(), 0.0))
                wake.clear()
            with self._batch_lock:  # what it holds stays consistent for a second stop request (abort)
                taken = self._take_processed(0.05 if stopping else None)
                if stopping and not taken:
                    self.flush(with_self_metrics=cfg.self_metrics_interval_s > 0)
                    return
                now = self._clock()
                if now >= next_flush or self._pending >= cfg.max_samples_per_request * 10:
                    want_self = cfg.self_metrics_interval_s > 0 and now >= next_self
                    if want_self:
                        next_self = now + cfg.self_metrics_interval_s
                    self.flush(with_self_metrics=want_self)
                    next_flush = max(next_flush + cfg.push_interval_s, now)

    def _take_processed(self, timeout: float | None) -> int:
        """Ingest everything on the processed queue (waiting up to ``timeout`` for a first item when given);
        returns the number of items taken."""
        taken = 0
        if timeout is not None:
            try:
                self.ingest(self.proc_queue.get(timeout=timeout))
                taken = 1
            except queue.Empty:
                return 0
        get_nowait = self.proc_queue.get_nowait
        while True:
            try:
                item = get_nowait()
            except queue.Empty:
                return taken
            self.ingest(item)
            taken += 1

    def ingest(self, item: object) -> None:
        """Validate, order-check and group one queue item (a record, a series batch, or a list of them)."""
        records = item if isinstance(item, (list, tuple)) else (item,)  # counted as received when queued
        now = self._wall()
        if now >= self._window_due:
            self._follow_clock(now)
        normalize = self.normalizer.normalize
        accept = self.guard.accept
        groups = self._groups
        for record in records:
            if type(record) is SeriesBatch:  # one series, many samples: see series_batch
                grouped = group_batch(record, self.normalizer, self.guard, groups)
                if grouped:
                    self._pending += grouped
                else:
                    self.ingest(record.records())
                continue
            got = normalize(record)
            if got is None:
                continue
            key, ts, value = got
            if not accept(key, ts):
                self._record_dropped(
                    OUT_OF_ORDER,
                    f"timestamp_ms={ts} is not after {self.guard.last(key)} already sent for {series_text(key)}",
                )
                continue
            samples = groups.get(key)
            if samples is None:
                samples = groups[key] = SeriesSamples()
            samples.timestamps.append(ts)
            samples.values.append(value)
            self._pending += 1

    def _follow_clock(self, now: float) -> None:
        """Move the window of accepted timestamps with the clock (once per WINDOW_UPDATE_S, not per record)."""
        cfg = self.config
        now_ms = int(now * 1000)
        oldest = now_ms - int(cfg.max_sample_age_s * 1000) if cfg.max_sample_age_s else 0
        self.normalizer.set_window(
            oldest,
            now_ms + int(cfg.max_sample_ahead_s * 1000),
            f"MAX_SAMPLE_AGE_S={cfg.max_sample_age_s:g} (the receiver would refuse it)",
            f"MAX_SAMPLE_AHEAD_S={cfg.max_sample_ahead_s:g}",
        )
        self._window_due = now + WINDOW_UPDATE_S

    def _self_metric_groups(self) -> dict[SeriesKey, SeriesSamples]:
        ts = max(int(self._wall() * 1000), self._last_self_ts + 1)
        self._last_self_ts = ts
        groups: dict[SeriesKey, SeriesSamples] = {}
        keys = self._self_keys  # the same few dozen series every time: validate and sort their labels once
        for name, labels, value in self.metrics.samples():
            cache_key = (name, tuple(labels.items()))
            if cache_key in keys:
                key = keys[cache_key]
            else:
                key = keys[cache_key] = self.normalizer.series_key(name, labels)
            if key is not None and self.guard.accept(key, ts):
                groups[key] = SeriesSamples([ts], [value])
        return groups

    def flush(self, with_self_metrics: bool = False) -> list[Payload]:
        """Encode everything grouped so far into the payload buffer; returns the new payloads."""
        self_groups = self._self_metric_groups() if with_self_metrics else None
        if not self._groups and not self_groups:
            return []
        payloads = self.encoder.encode(self._groups, self_groups)
        self._groups = {}
        self._pending = 0
        for payload in payloads:
            self.store.put(payload)
        return payloads

    def summary(self) -> str:
        """One line of accounting for the log at exit."""
        m = self.metrics
        dropped = m.dropped_by_reason()
        dropped_text = ", ".join(f"{k}={v}" for k, v in sorted(dropped.items())) or "none"
        return (
            f"received={int(m.value('monitoring_client_samples_received_total'))}"
            f" sent={int(m.value('monitoring_client_samples_sent_total'))}"
            f" dropped={sum(dropped.values())} ({dropped_text})"
        )
