"""The on-disk payload store (SPOOL_DIR): unsent requests survive a crash, a kill or a restart.

Every payload is written to its own file (``spool_files``) *before* it is queued, and the file is removed
once the receiver acknowledged the payload or refused it for good. Only the payload in flight is held in
memory, read back from its file, so a long outage costs disk, not memory. At start, files a previous run
left are queued first, in their original order.

Bounds: at most SPOOL_MAX_BYTES of files and nothing older than SPOOL_MAX_AGE_S; payloads that could not
be written (full or read-only disk) stay in memory under the memory bounds (MAX_RETRY_BATCHES,
MAX_BUFFER_BYTES). The oldest go first, never the one in flight, reported through the drop listener like
every other drop. At shutdown ``drain`` hands back only the memory-only payloads: the files stay for the
next start.

A replayed payload may have reached the receiver before the previous run could remove its file (killed
between the answer and the removal), so it is marked ``maybe_stored``: the sender then counts a refusal as
"already stored" as sent, exactly as for a retry whose first attempt got no answer.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING

from monitoring_client import remote_pb2
from monitoring_client.encoder import Payload, decode
from monitoring_client.records import BUFFER_FULL, EXPIRED, SeriesKey
from monitoring_client.send_buffer import DropListener, Eviction, QueuedStore, Unreadable, ignore_drops
from monitoring_client.spool_files import FOREIGN_SUFFIX, CorruptFile, ForeignFile, Spool, SpoolEntry, SpoolError

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

__all__ = ["Spool", "SpoolCollector", "SpoolStore", "newest_timestamps"]

logger = logging.getLogger("monitoring_client.spool")


class SpoolStore(QueuedStore):
    """The payload store used when SPOOL_DIR is set: the memory store's rules, with every payload on disk
    from the moment it is queued until it is acknowledged or refused."""

    def __init__(
        self,
        spool: Spool,
        *,
        max_memory_payloads: int,
        max_memory_bytes: int,
        on_drop: DropListener = ignore_drops,
    ) -> None:
        super().__init__(on_drop)
        self.spool = spool
        self.max_memory_payloads = max_memory_payloads
        self.max_memory_bytes = max_memory_bytes
        self._entries: dict[int, SpoolEntry] = {}  # by id() of the queued payload
        self._memory_count = 0
        self._memory_bytes = 0
        self.corrupt_files = 0
        self.replayed_samples = 0

    # -- start-up ------------------------------------------------------------------------------------------
    def open(self) -> Mapping[SeriesKey, int]:
        """Queue what a previous run left (oldest first, ahead of anything new); return, per series, the
        newest timestamp those payloads hold. An unusable directory is not fatal: memory only, said loudly."""
        try:
            entries = self.spool.open()
        except SpoolError as exc:
            # Like a full disk: keep collecting and sending, in memory only. Writes are tried again for every
            # request, so fixing the directory brings the spool back without a restart.
            self.spool.mark_unusable()
            logger.warning(
                "spool: %s; unsent data is kept in memory only (lost on a crash or restart) until the directory"
                " becomes writable. Give the client's user a writable SPOOL_DIR (in Docker: a named volume"
                " owned by the container's user), or unset SPOOL_DIR.",
                exc,
            )
            return {}
        wall_ms = int(self.spool.clock() * 1000)
        with self._cond:
            for entry in entries:
                age_s = max(0.0, (wall_ms - entry.created_ms) / 1000)
                payload = Payload(b"", entry.samples, 0, 0, 0, maybe_stored=True)
                payload.created -= age_s
                self._entries[id(payload)] = entry
                self._items.append(payload)
            dropped = self._evictions(None)
            kept = list(self._items)
            self._cond.notify_all()
        self._report(dropped)
        self.replayed_samples = sum(p.samples for p in kept)
        if not kept:
            return {}
        newest = self._read_replayed(kept)
        logger.info(
            "spool: %d requests (%d samples in %d series) left by a previous run in %s are sent first",
            len(kept),
            self.replayed_samples,
            len(newest),
            self.spool.directory,
        )
        return newest

    def _read_replayed(self, payloads: list[Payload]) -> dict[SeriesKey, int]:
        """Per series, the newest timestamp in the replayed payloads; fills in each payload's series count and
        oldest timestamp (the file header only says how many samples it holds)."""
        newest: dict[SeriesKey, int] = {}
        for payload in payloads:
            try:
                request = decode(self._entries[id(payload)].load())
            except Exception:  # noqa: BLE001 - unreadable or undecodable: take() reports it in its turn
                continue
            payload.series = len(request.timeseries)
            payload.oldest_ms = _merge_newest(request, newest)
        return newest

    # -- hooks of QueuedStore --------------------------------------------------------------------------------
    def _prepare(self, payload: Payload) -> Payload:
        """Write the payload to disk (outside the lock: fsync takes time). Returns a copy: the caller's
        payload is never changed; on disk, the body is read back when its turn comes."""
        return self._keep(payload, self.spool.put(payload.body, payload.samples))

    def _prepare_part(self, parent: Payload, index: int, part: Payload) -> Payload:
        """Write a part of the payload in flight to its own file (named after the parent's, see spool_files)."""
        return self._keep(part, self.spool.put_part(self._entries[id(parent)], index, part.body, part.samples))

    def _keep(self, payload: Payload, entry: SpoolEntry) -> Payload:
        stored = dataclasses.replace(payload, body=b"" if entry.path is not None else payload.body)
        with self._cond:
            self._entries[id(stored)] = entry
        return stored

    def _admit(self, payload: Payload) -> None:
        if self._entries[id(payload)].path is None:
            self._memory_count += 1
            self._memory_bytes += payload.nbytes

    def _forget(self, payload: Payload) -> None:
        entry = self._entries.pop(id(payload))
        if entry.path is None:
            self._memory_count -= 1
            self._memory_bytes -= payload.nbytes
        self.spool.remove(entry)
        payload.body = b""

    def _load(self, payload: Payload) -> None:
        entry = self._entries[id(payload)]
        if payload.body or entry.path is None:
            return
        try:
            payload.body = entry.load()
        except ForeignFile as exc:
            # Replaced behind the client's back (a link, a FIFO, a huge file): never read, set aside.
            self.spool.foreign_files += 1
            logger.warning("spool: %s is %s now; set aside unread", entry.path, exc.strerror)
            self.spool.set_aside(entry, FOREIGN_SUFFIX)
            raise Unreadable(f"spool file replaced by something else: {exc.strerror}") from None
        except (CorruptFile, OSError) as exc:
            self.corrupt_files += 1
            logger.warning("spool: cannot read %s back (%s); skipped", entry.path, exc)
            self.spool.set_aside(entry)
            raise Unreadable(f"unreadable spool file: {exc}") from None

    def _evictions(self, newest: Payload | None) -> list[Eviction]:
        spool = self.spool
        dropped: list[Eviction] = []
        oldest_ok_ms = int(spool.clock() * 1000) - int(spool.max_age_s * 1000)

        def evict(wanted: Callable[[SpoolEntry], bool], reason: str, detail: str) -> bool:
            victim = self._evict_oldest(lambda p: wanted(self._entries[id(p)]), newest)
            if victim is not None:
                dropped.append((reason, victim, detail))
            return victim is not None

        def on_disk(entry: SpoolEntry) -> bool:
            return entry.path is not None

        if spool.max_age_s > 0:
            expired_detail = f"spooled longer than SPOOL_MAX_AGE_S={spool.max_age_s:g}"
            while evict(lambda e: on_disk(e) and e.created_ms < oldest_ok_ms, EXPIRED, expired_detail):
                pass
        full_detail = f"spool over SPOOL_MAX_BYTES={spool.max_bytes}: dropped the oldest request"
        while spool.disk_bytes > spool.max_bytes and evict(on_disk, BUFFER_FULL, full_detail):
            pass
        memory_detail = (
            f"spool not writable and the memory bounds reached ({self.max_memory_payloads} requests /"
            f" {self.max_memory_bytes} bytes): dropped the oldest request"
        )
        while self._memory_count > self.max_memory_payloads or self._memory_bytes > self.max_memory_bytes:
            if not evict(lambda e: not on_disk(e), BUFFER_FULL, memory_detail):
                break
        return dropped

    # -- the rest of the interface ---------------------------------------------------------------------------
    def drain(self) -> list[Payload]:
        """At exit: what is on disk stays there for the next start; what is only in memory is returned."""
        with self._cond:
            lost = [p for p in self._items if self._entries[id(p)].path is None]
            kept = [p for p in self._items if self._entries[id(p)].path is not None]
            for payload in kept:
                payload.body = b""
            self._items.clear()
            self._entries.clear()
            self._in_flight = None
            self._memory_count = 0
            self._memory_bytes = 0
        self.spool.close()
        if kept:
            logger.info(
                "%d requests (%d samples) stay in the spool %s and will be sent after the next start",
                len(kept),
                sum(p.samples for p in kept),
                self.spool.directory,
            )
        return lost

    @property
    def nbytes(self) -> int:
        return self.spool.disk_bytes + self._memory_bytes

    def disk_payloads(self) -> int:
        """How many queued payloads are in spool files (the rest are in memory only)."""
        with self._cond:
            return len(self._items) - self._memory_count

    def disk_samples(self) -> int:
        """How many of the implementation's samples the queued spool files hold."""
        with self._cond:
            return sum(p.samples for p in self._items if self._entries[id(p)].path is not None)


def newest_timestamps(bodies: Iterable[bytes]) -> dict[SeriesKey, int]:
    """Per series, the newest sample timestamp in these encoded payloads."""
    newest: dict[SeriesKey, int] = {}
    for body in bodies:
        _merge_newest(decode(body), newest)
    return newest


def _merge_newest(request: remote_pb2.WriteRequest, newest: dict[SeriesKey, int]) -> int:
    """Fold the request's newest timestamp per series into ``newest``; return its oldest timestamp (0 if none)."""
    oldest = 0
    for series in request.timeseries:
        if not series.samples:
            continue
        key = tuple((label.name, label.value) for label in series.labels)
        stamps = [sample.timestamp for sample in series.samples]
        ts = max(stamps)
        if ts > newest.get(key, ts - 1):
            newest[key] = ts
        first = min(stamps)
        if not oldest or first < oldest:
            oldest = first
    return oldest


class SpoolCollector:
    """Exposes the spool's state with the client's own metrics (a prometheus-client custom collector)."""

    def __init__(self, store: SpoolStore) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        store, spool = self.store, self.store.spool
        yield GaugeMetricFamily(
            "monitoring_client_spool_bytes", "Bytes of spool files on disk.", value=spool.disk_bytes
        )
        yield GaugeMetricFamily(
            "monitoring_client_spool_max_bytes",
            "SPOOL_MAX_BYTES: bound of the spool files on disk.",
            value=spool.max_bytes,
        )
        yield GaugeMetricFamily(
            "monitoring_client_spool_payloads", "Requests waiting in spool files on disk.", value=store.disk_payloads()
        )
        yield GaugeMetricFamily(
            "monitoring_client_spool_disk_ok",
            "1 while spool writes succeed; 0 while new requests are kept in memory only.",
            value=1.0 if spool.disk_ok else 0.0,
        )
        yield CounterMetricFamily(
            "monitoring_client_spool_write_errors",
            "Spool writes that failed (full or read-only disk...): kept in memory instead.",
            value=spool.write_failures,
        )
        yield CounterMetricFamily(
            "monitoring_client_spool_corrupt_files",
            "Spool files skipped because they were truncated or damaged.",
            value=spool.corrupt_files + store.corrupt_files,
        )
        yield CounterMetricFamily(
            "monitoring_client_spool_foreign_files",
            "Names of spool files in SPOOL_DIR that were not regular files of plausible size (links, FIFOs,"
            " devices, huge files): set aside unread.",
            value=spool.foreign_files,
        )
        yield CounterMetricFamily(
            "monitoring_client_spool_replayed_samples",
            "Samples found in the spool at start (left by a previous run) and queued first.",
            value=store.replayed_samples,
        )
