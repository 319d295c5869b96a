"""On-disk spool: encoded remote-write payloads kept in files until the receiver has acknowledged them.

Memory alone loses whatever is buffered when the process dies (a SIGKILL, an OOM kill, a power cut, a
container restart during an outage). With ``SPOOL_DIR`` set, every payload is written to its own file
*before* it is sent (written to a temporary name, fsync'd, renamed, directory fsync'd: a crash leaves
either the whole file or none) and removed once the receiver acknowledged it (2xx) or refused it for good
(a 4xx other than 429). At start, files left by a previous run are replayed in their original order,
before any new data.

File layout (little-endian), one payload per file, named ``<20-digit sequence>.rwp``::

    magic "MCSP" | version u8 | 3 reserved bytes | created_ms u64 | samples u32 | length u32 | crc32 u32
    payload (length bytes, the snappy-compressed WriteRequest exactly as sent)

The header makes a torn or damaged file detectable (wrong magic, length not matching the file size, CRC
mismatch): such a file is skipped with a warning and moved aside (``*.corrupt``), never a crash.

Two layers: ``Spool`` handles the files (format, durable writes, scan at start); ``SpoolBuffer`` is the
pipeline's ``PayloadStore`` on top of it (order, the payload in flight, bounds). Bounds: at most
SPOOL_MAX_BYTES of files and nothing older than SPOOL_MAX_AGE_S; the oldest payloads go first, reported
through ``on_drop`` so the pipeline counts them. A full or read-only disk (ENOSPC, EDQUOT, EROFS) or any
other write error does not stop the client: that payload is kept in memory only (under the memory
bounds), with one warning, and the spool tries the disk again for the next one.
"""

from __future__ import annotations

import collections
import dataclasses
import errno
import logging
import os
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from monitoring_client.encoder import Payload
from monitoring_client.records import BUFFER_FULL, CORRUPT, EXPIRED, SeriesKey

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

logger = logging.getLogger("monitoring_client.spool")

MAGIC = b"MCSP"
VERSION = 1
HEADER = struct.Struct("<4sB3xQIII")
SUFFIX = ".rwp"
TMP_SUFFIX = ".tmp"
CORRUPT_SUFFIX = ".corrupt"
# Errors that mean "the disk cannot take more now", as opposed to a bug or a bad path.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


class SpoolError(Exception):
    """The spool directory cannot be used at all (cannot be created, not a directory, not writable)."""


@dataclass
class SpoolEntry:
    """One payload: on disk (``path`` set) or, after a failed write, in memory only."""

    seq: int
    created_ms: int
    samples: int
    size: int
    path: Path | None = None
    data: bytes | None = field(default=None, repr=False)

    def load(self) -> bytes:
        """The payload bytes (read back from disk when not held in memory)."""
        if self.data is not None:
            return self.data
        assert self.path is not None
        return read_payload(self.path)[1]


def encode_file(payload: bytes, samples: int, created_ms: int) -> bytes:
    """Header plus payload, as stored in one spool file."""
    return HEADER.pack(MAGIC, VERSION, created_ms, samples, len(payload), zlib.crc32(payload)) + payload


class CorruptFile(ValueError):
    """A spool file whose header or checksum does not match its content."""


def decode_file(blob: bytes) -> tuple[int, int, bytes]:
    """``(created_ms, samples, payload)`` of one file's bytes; raise CorruptFile on any mismatch."""
    if len(blob) < HEADER.size:
        raise CorruptFile(f"{len(blob)} bytes, shorter than the {HEADER.size}-byte header")
    magic, version, created_ms, samples, length, crc = HEADER.unpack_from(blob)
    if magic != MAGIC:
        raise CorruptFile(f"bad magic {magic!r}")
    if version != VERSION:
        raise CorruptFile(f"unknown format version {version}")
    payload = blob[HEADER.size :]
    if len(payload) != length:
        raise CorruptFile(f"truncated: header says {length} payload bytes, file has {len(payload)}")
    if zlib.crc32(payload) != crc:
        raise CorruptFile("checksum mismatch")
    return created_ms, samples, payload


def read_payload(path: Path) -> tuple[int, bytes]:
    """``(samples, payload)`` from a spool file (raises CorruptFile or OSError)."""
    _, samples, payload = decode_file(path.read_bytes())
    return samples, payload


def write_durably(path: Path, data: bytes, *, fsync: Callable[[int], None] = os.fsync) -> None:
    """Write ``data`` so that ``path`` appears complete or not at all, and survives a power cut.

    Temporary name, write, fsync, rename, fsync of the directory (the rename is only durable then).
    """
    tmp = path.with_name(path.name + TMP_SUFFIX)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        fsync(fd)
    except BaseException:
        os.close(fd)
        _unlink_quietly(tmp)
        raise
    os.close(fd)
    try:
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    fsync_dir(path.parent, fsync=fsync)


def fsync_dir(directory: Path, *, fsync: Callable[[int], None] = os.fsync) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fsync(fd)
    finally:
        os.close(fd)


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


class Spool:
    """The files of one spool directory, oldest first; thread-safe."""

    def __init__(
        self,
        directory: Path | str,
        *,
        max_bytes: int,
        max_age_s: float,
        clock: Callable[[], float] = time.time,
        writer: Callable[[Path, bytes], None] = write_durably,
    ) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self.clock = clock  # wall clock: file ages must survive a restart
        self._writer = writer
        self.corrupt_files = 0
        self._lock = threading.Lock()
        self._next_seq = 1
        self._disk_bytes = 0
        self._disk_ok = True
        self.write_failures = 0

    # -- start-up ----------------------------------------------------------------------------------
    def open(self) -> list[SpoolEntry]:
        """Create the directory if needed and return the payloads a previous run left, oldest first.

        Temporary files (a write interrupted by a crash) are removed; damaged files are renamed to
        ``*.corrupt`` with a warning and counted in ``corrupt_files``. Bounds are the caller's business
        (``SpoolBuffer``). Raises SpoolError when the directory cannot be used at all.
        """
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SpoolError(f"cannot create the spool directory {self.directory}: {exc.strerror}") from None
        if not self.directory.is_dir():
            raise SpoolError(f"{self.directory} is not a directory")
        if not os.access(self.directory, os.W_OK | os.X_OK):
            raise SpoolError(f"the spool directory {self.directory} is not writable")
        entries: list[SpoolEntry] = []
        names = sorted(os.listdir(self.directory))
        for name in names:
            path = self.directory / name
            if name.endswith(TMP_SUFFIX):
                _unlink_quietly(path)
                continue
            if not name.endswith(SUFFIX):
                continue
            stem = name[: -len(SUFFIX)]
            if not stem.isdigit():
                continue
            try:
                blob = path.read_bytes()
                created_ms, samples, _ = decode_file(blob)
            except (CorruptFile, OSError) as exc:
                logger.warning(
                    "spool: skipping damaged file %s (%s); moved aside as %s%s", path, exc, name, CORRUPT_SUFFIX
                )
                try:
                    os.replace(path, path.with_name(name + CORRUPT_SUFFIX))
                except OSError:
                    _unlink_quietly(path)
                self.corrupt_files += 1
                continue
            entries.append(SpoolEntry(int(stem), created_ms, samples, len(blob), path=path))
        entries.sort(key=lambda e: e.seq)
        # New names sort after every left-over one; starting from the time (µs) also keeps them apart from
        # files this process could not see (a directory that only becomes readable later).
        self._next_seq = max(entries[-1].seq + 1 if entries else 1, int(self.clock() * 1e6))
        self._disk_bytes = sum(e.size for e in entries)
        return entries

    # -- steady state ------------------------------------------------------------------------------
    def put(self, payload: bytes, samples: int) -> SpoolEntry:
        """Persist one payload before it is sent; on a write error keep it in memory (with a warning)."""
        with self._lock:
            seq = self._next_seq
            self._next_seq += 1
        created_ms = int(self.clock() * 1000)
        blob = encode_file(payload, samples, created_ms)
        path = self.directory / f"{seq:020d}{SUFFIX}"
        try:
            if not self.disk_ok:
                self.directory.mkdir(parents=True, exist_ok=True)  # it may not have existed at start
            self._writer(path, blob)
        except OSError as exc:
            self.write_failures += 1
            with self._lock:
                was_ok, self._disk_ok = self._disk_ok, False
            if was_ok:
                why = "the disk is full or read-only" if exc.errno in DISK_FULL_ERRNOS else "it cannot be written"
                logger.warning(
                    "spool: %s (%s: %s); keeping payloads in memory only until a write succeeds",
                    why,
                    path,
                    exc.strerror or exc,
                )
            return SpoolEntry(seq, created_ms, samples, len(payload), path=None, data=payload)
        with self._lock:
            self._disk_bytes += len(blob)
            was_ok, self._disk_ok = self._disk_ok, True
        if not was_ok:
            logger.warning("spool: writing to %s works again", self.directory)
        return SpoolEntry(seq, created_ms, samples, len(blob), path=path)  # read back when sent

    def remove(self, entry: SpoolEntry) -> None:
        """Forget a payload for good (acknowledged, refused, or dropped by a bound)."""
        entry.data = None
        if entry.path is None:
            return
        try:
            entry.path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            logger.warning(
                "spool: cannot remove %s (%s); it may be sent again after a restart", entry.path, exc.strerror
            )
        with self._lock:
            self._disk_bytes = max(0, self._disk_bytes - entry.size)
        entry.path = None

    def set_aside(self, entry: SpoolEntry) -> None:
        """Rename a file that cannot be read back to ``*.corrupt`` (kept for inspection, never replayed)."""
        if entry.path is None:
            return
        try:
            os.replace(entry.path, entry.path.with_name(entry.path.name + CORRUPT_SUFFIX))
        except OSError:
            pass
        self.remove(entry)

    def mark_unusable(self) -> None:
        """The directory could not be opened: count as failing until a write succeeds."""
        with self._lock:
            self._disk_ok = False
            self._next_seq = max(self._next_seq, int(self.clock() * 1e6))

    @property
    def disk_bytes(self) -> int:
        with self._lock:
            return self._disk_bytes

    @property
    def disk_ok(self) -> bool:
        with self._lock:
            return self._disk_ok


class SpoolBuffer:
    """The ``PayloadStore`` used when SPOOL_DIR is set: the in-memory buffer's order and in-flight rules,
    with every payload on disk from the moment it is queued until it is acknowledged or refused.

    Only the payload being sent is held in memory (read back from its file), so a long outage costs disk,
    not memory. Bounds: SPOOL_MAX_BYTES and SPOOL_MAX_AGE_S for payloads on disk; the memory bounds
    (MAX_RETRY_BATCHES, MAX_BUFFER_BYTES) for payloads kept in memory after a failed write. Oldest first,
    never the one in flight. Drops are reported through ``on_drop(reason, payload, detail)``.

    At shutdown ``drain`` returns only the memory-only payloads (they are lost); those on disk stay for
    the next start, which queues them ahead of any new data.
    """

    def __init__(
        self,
        spool: Spool,
        *,
        max_memory_payloads: int,
        max_memory_bytes: int,
        on_drop: Callable[[str, Payload, str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.spool = spool
        self.max_memory_payloads = max_memory_payloads
        self.max_memory_bytes = max_memory_bytes
        self._on_drop = on_drop or (lambda reason, payload, detail: None)
        self._clock = clock
        self._cond = threading.Condition()
        self._items: collections.deque[_Item] = collections.deque()
        self._in_flight: _Item | None = None
        self._memory_count = 0
        self._memory_bytes = 0
        self.corrupt_files = 0
        self.replayed_samples = 0

    # -- start-up ----------------------------------------------------------------------------------
    def open(self) -> list[SpoolEntry]:
        """Queue what a previous run left (oldest first, ahead of anything new); return those entries."""
        try:
            entries = self.spool.open()
        except SpoolError as exc:
            # Like a full disk: keep collecting and sending, in memory only, and say so loudly. Writes are
            # tried again for every request, so fixing the directory brings the spool back without a restart.
            self.spool.mark_unusable()
            logger.warning(
                "spool: %s; unsent data is kept in memory only (lost on a crash or restart) until the directory"
                " becomes writable. Give the client's user a writable SPOOL_DIR (in Docker: a named volume"
                " owned by the container's user), or unset SPOOL_DIR.",
                exc,
            )
            return []
        now = self._clock()
        wall_ms = int(self.spool.clock() * 1000)
        with self._cond:
            for entry in entries:
                age_s = max(0.0, (wall_ms - entry.created_ms) / 1000)
                payload = Payload(b"", entry.samples, 0, 0, 0, created=now - age_s)
                self._items.append(_Item(payload, entry))
            dropped = self._enforce_bounds(exclude=None)
            kept = [it.entry for it in self._items]
            self._cond.notify_all()
        for reason, victim, detail in dropped:
            self._on_drop(reason, victim.payload, detail)
        self.replayed_samples = sum(e.samples for e in kept)
        if kept:
            logger.info(
                "spool: %d requests (%d samples) left by a previous run in %s are sent first",
                len(kept),
                self.replayed_samples,
                self.spool.directory,
            )
        return kept

    # -- PayloadStore ------------------------------------------------------------------------------
    def put(self, payload: Payload) -> list[Payload]:
        """Write the payload to disk (outside the lock: fsync takes time), queue it, apply the bounds.

        Returns nothing: evictions are reported through ``on_drop`` with their precise reason.
        """
        entry = self.spool.put(payload.body, payload.samples)
        # A copy: the caller's payload is never changed. On disk, the body is read back when its turn comes.
        stored = dataclasses.replace(payload, body=b"" if entry.path is not None else payload.body)
        dropped: list[tuple[str, _Item, str]] = []
        with self._cond:
            item = _Item(stored, entry)
            self._items.append(item)
            if entry.path is None:
                self._memory_count += 1
                self._memory_bytes += len(payload.body)
            dropped = self._enforce_bounds(exclude=item)
            self._cond.notify_all()
        for reason, victim, detail in dropped:
            self._on_drop(reason, victim.payload, detail)
        return []

    def _enforce_bounds(self, exclude: _Item | None) -> list[tuple[str, _Item, str]]:
        """Evict the oldest entries (never the one in flight, nor ``exclude``) until every bound holds.

        Returns what was evicted, for the caller to report outside the lock.
        """
        spool = self.spool
        dropped: list[tuple[str, _Item, str]] = []
        oldest_ok_ms = int(spool.clock() * 1000) - int(spool.max_age_s * 1000)

        def evict_first(wanted: Callable[[_Item], bool], reason: str, detail: str) -> bool:
            for candidate in self._items:
                if candidate is not self._in_flight and candidate is not exclude and wanted(candidate):
                    self._remove(candidate)
                    dropped.append((reason, candidate, detail))
                    return True
            return False

        def on_disk(item: _Item) -> bool:
            return item.entry.path is not None

        def in_memory(item: _Item) -> bool:
            return item.entry.path is None

        def expired(item: _Item) -> bool:
            return on_disk(item) and item.entry.created_ms < oldest_ok_ms

        if spool.max_age_s > 0:
            while evict_first(expired, EXPIRED, f"spooled longer than SPOOL_MAX_AGE_S={spool.max_age_s:g}"):
                pass
        while spool.disk_bytes > spool.max_bytes and evict_first(
            on_disk, BUFFER_FULL, f"spool over SPOOL_MAX_BYTES={spool.max_bytes}: dropped the oldest request"
        ):
            pass
        while (self._memory_count > self.max_memory_payloads or self._memory_bytes > self.max_memory_bytes) and (
            evict_first(
                in_memory,
                BUFFER_FULL,
                f"spool not writable and the memory bounds reached ({self.max_memory_payloads} requests /"
                f" {self.max_memory_bytes} bytes): dropped the oldest request",
            )
        ):
            pass
        return dropped

    def _remove(self, item: _Item) -> None:
        """Take ``item`` out of the queue and forget its file (caller holds the lock)."""
        self._items.remove(item)
        if item.entry.path is None:
            self._memory_count -= 1
            self._memory_bytes -= len(item.payload.body)
        if self._in_flight is item:
            self._in_flight = None
        self.spool.remove(item.entry)
        item.payload.body = b""

    def head(self, timeout: float | None = None) -> Payload | None:
        corrupt: list[tuple[_Item, str]] = []
        try:
            with self._cond:
                if not self._items:
                    self._cond.wait(timeout)
                while self._items:
                    item = self._items[0]
                    if not item.payload.body and item.entry.path is not None:
                        try:
                            item.payload.body = item.entry.load()
                        except (CorruptFile, OSError) as exc:
                            self.corrupt_files += 1
                            corrupt.append((item, str(exc)))
                            self.spool.set_aside(item.entry)
                            self._remove(item)
                            continue
                    self._in_flight = item
                    return item.payload
                return None
        finally:
            for victim, why in corrupt:
                logger.warning("spool: cannot read %s back (%s); skipped", victim.entry.path, why)
                self._on_drop(CORRUPT, victim.payload, f"unreadable spool file: {why}")

    def done(self, payload: Payload) -> bool:
        with self._cond:
            for item in self._items:
                if item.payload is payload:
                    self._remove(item)
                    return True
            return False

    def drain(self) -> list[Payload]:
        """At exit: what is on disk stays there for the next start; what is only in memory is returned."""
        with self._cond:
            lost = [it.payload for it in self._items if it.entry.path is None]
            kept = [it for it in self._items if it.entry.path is not None]
            for it in kept:
                it.payload.body = b""
            self._items.clear()
            self._in_flight = None
            self._memory_count = 0
            self._memory_bytes = 0
        if kept:
            logger.info(
                "%d requests (%d samples) stay in the spool %s and will be sent after the next start",
                len(kept),
                sum(it.payload.samples for it in kept),
                self.spool.directory,
            )
        return lost

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def __len__(self) -> int:
        return len(self._items)

    def disk_payloads(self) -> int:
        """How many queued payloads are in spool files (the rest are in memory only)."""
        with self._cond:
            return len(self._items) - self._memory_count

    @property
    def nbytes(self) -> int:
        return self.spool.disk_bytes + self._memory_bytes

    def oldest_age(self) -> float:
        with self._cond:
            return self._clock() - self._items[0].payload.created if self._items else 0.0

    def newest_replayed_timestamps(self) -> dict[SeriesKey, int]:
        """``newest_timestamps`` of the payloads queued by ``open`` (read one at a time from disk)."""
        with self._cond:
            entries = [it.entry for it in self._items if it.entry.path is not None]

        def bodies() -> Iterable[bytes]:
            for entry in entries:
                try:
                    yield entry.load()
                except (CorruptFile, OSError):
                    continue  # head() reports it when its turn comes

        try:
            return newest_timestamps(bodies())
        except Exception as exc:  # noqa: BLE001 - a payload we cannot decode must not stop the client
            logger.warning(
                "spool: could not read the series of the replayed requests (%s); the ordering guard starts empty", exc
            )
            return {}


@dataclass(eq=False)
class _Item:
    payload: Payload
    entry: SpoolEntry


def newest_timestamps(bodies: Iterable[bytes]) -> dict[SeriesKey, int]:
    """Per series, the newest sample timestamp in these encoded payloads.

    Used at start to seed the ordering guard with what the replayed payloads will deliver, so that new
    samples stamped earlier (the host clock was set back while the client was down) are dropped one by
    one, counted, instead of making the receiver reject whole requests. The replayed payloads themselves
    bypass the guard: they were checked when first encoded.
    """
    import snappy

    from monitoring_client import remote_pb2

    newest: dict[SeriesKey, int] = {}
    for body in bodies:
        request = remote_pb2.WriteRequest()
        request.ParseFromString(snappy.uncompress(body))
        for series in request.timeseries:
            if not series.samples:
                continue
            key = tuple((label.name, label.value) for label in series.labels)
            ts = max(sample.timestamp for sample in series.samples)
            if ts > newest.get(key, ts - 1):
                newest[key] = ts
    return newest


class SpoolCollector:
    """Exposes the spool's state with the client's own metrics (a prometheus-client custom collector)."""

    def __init__(self, store: SpoolBuffer) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        store, spool = self.store, self.store.spool
        yield GaugeMetricFamily(
            "monitoring_client_spool_bytes", "Bytes of spool files on disk.", value=spool.disk_bytes
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
            "monitoring_client_spool_replayed_samples",
            "Samples found in the spool at start (left by a previous run) and queued first.",
            value=store.replayed_samples,
        )
