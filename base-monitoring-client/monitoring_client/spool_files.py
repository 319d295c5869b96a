"""The spool's files: their format, durable writes, and the scan of a directory at start.

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

``Spool`` here handles the files of one directory; ``spool.SpoolStore`` is the pipeline's payload store
on top of it (order, the payload in flight, bounds). A full or read-only disk (ENOSPC, EDQUOT, EROFS) or
any other write error does not stop the client: ``Spool.put`` then returns an entry held in memory only,
with one warning, and tries the disk again for the next payload.
"""

from __future__ import annotations

import errno
import logging
import os
import struct
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

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
        (``SpoolStore``). Raises SpoolError when the directory cannot be used at all.
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
