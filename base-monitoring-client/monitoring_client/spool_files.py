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

A request the receiver refused in part is split in halves (``payload_split``); each half becomes a file
named after it, ``<sequence>-<part>.rwp``, where ``part`` is the path of 0s (older half) and 1s (newer
half) from the original request, so names still sort in sending order. The halves are written before the
file they replace is removed: when a crash leaves both, the original wins and the halves are deleted.

The directory is shared with nobody: an exclusive lock on ``.lock`` in it (holding the owner's pid and
host name) keeps a second client from taking this one's files for left-overs (``SpoolInUse``, exit 2).
Only regular files of plausible size are ever read, without following links and without blocking (a FIFO
or a device named like a spool file is set aside as ``*.foreign`` and counted, never opened for reading).

``Spool`` here handles the files of one directory; ``spool.SpoolStore`` is the pipeline's payload store
on top of it (order, the payload in flight, bounds). A full or read-only disk (ENOSPC, EDQUOT, EROFS) or
any other write error does not stop the client: ``Spool.put`` then returns an entry held in memory only,
with one warning, and tries the disk again for the next payload.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import socket
import stat
import struct
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from monitoring_client.errors import ConfigError

logger = logging.getLogger("monitoring_client.spool")

MAGIC = b"MCSP"
VERSION = 1
HEADER = struct.Struct("<4sB3xQIII")
SUFFIX = ".rwp"
TMP_SUFFIX = ".tmp"
CORRUPT_SUFFIX = ".corrupt"
FOREIGN_SUFFIX = ".foreign"
LOCK_NAME = ".lock"
# Largest file read back when the caller gives no bound: a request of the default MAX_REQUEST_BYTES (4 MiB)
# that snappy could not compress at all, twice over.
DEFAULT_MAX_FILE_BYTES = 2 * (4 * 1024 * 1024 * 7 // 6 + 32) + 28
# Errors that mean "the disk cannot take more now", as opposed to a bug or a bad path.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


class SpoolError(Exception):
    """The spool directory cannot be used at all (cannot be created, not a directory, not writable)."""


class SpoolInUse(ConfigError):
    """Another running client holds the spool directory (exit status 2: give each client its own)."""


class ForeignFile(OSError):
    """A name in the spool directory that is not a regular file of plausible size: never read."""


def max_file_bytes(max_request_bytes: int) -> int:
    """The largest plausible spool file for requests of at most ``max_request_bytes`` (uncompressed)."""
    biggest = max(max_request_bytes, 4 * 1024 * 1024)
    return 2 * (biggest * 7 // 6 + 32) + HEADER.size  # snappy's worst case, with room to spare


@dataclass
class SpoolEntry:
    """One payload: on disk (``path`` set) or, after a failed write, in memory only.

    ``part`` is empty for a request as encoded, and the path of 0s and 1s to one of its halves otherwise.
    """

    seq: int
    created_ms: int
    samples: int
    size: int
    path: Path | None = None
    data: bytes | None = field(default=None, repr=False)
    part: str = ""
    max_bytes: int = field(default=DEFAULT_MAX_FILE_BYTES, repr=False)

    def load(self) -> bytes:
        """The payload bytes (read back from disk when not held in memory)."""
        if self.data is not None:
            return self.data
        assert self.path is not None
        return decode_file(read_regular(self.path, self.max_bytes))[2]


def file_name(seq: int, part: str = "") -> str:
    """The name of the file of request ``seq`` (or of its part ``part``)."""
    return f"{seq:020d}-{part}{SUFFIX}" if part else f"{seq:020d}{SUFFIX}"


def parse_name(name: str) -> tuple[int, str] | None:
    """``(seq, part)`` of a spool file name, None for any other name."""
    if not name.endswith(SUFFIX):
        return None
    seq_text, dash, part = name[: -len(SUFFIX)].partition("-")
    if not seq_text.isdigit() or (dash and (not part or part.strip("01"))):
        return None
    return int(seq_text), part


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


def read_payload(path: Path, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> tuple[int, bytes]:
    """``(samples, payload)`` from a spool file (raises CorruptFile, ForeignFile or OSError)."""
    _, samples, payload = decode_file(read_regular(path, max_bytes))
    return samples, payload


def read_regular(path: Path, max_bytes: int) -> bytes:
    """The content of ``path`` if it is a regular file of at most ``max_bytes``; ForeignFile otherwise.

    Opened without following a link and without blocking (a FIFO would block ``open`` for reading until a
    writer comes; ``/dev/zero`` never ends), checked with ``fstat`` on what was opened, read up to its size.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ForeignFile(errno.ELOOP, "a symbolic link, not a spool file", str(path)) from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ForeignFile(errno.EINVAL, f"not a regular file ({_file_type(info.st_mode)})", str(path))
        if info.st_size > max_bytes:
            raise ForeignFile(errno.EFBIG, f"{info.st_size} bytes, more than any spool file ({max_bytes})", str(path))
        chunks: list[bytes] = []
        left = info.st_size
        while left > 0:
            chunk = os.read(fd, left)
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _file_type(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISLNK, "a symbolic link"),
    ):
        if test(mode):
            return name
    return f"mode {mode:o}"


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
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    ) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self.max_file_bytes = max_file_bytes
        self.clock = clock  # wall clock: file ages must survive a restart
        self._writer = writer
        self.corrupt_files = 0
        self.foreign_files = 0
        self._lock_fd: int | None = None
        self._lock_seq = threading.Lock()
        self._next_seq = 1
        self._disk_bytes = 0
        self._disk_ok = True
        self.write_failures = 0

    # -- start-up ----------------------------------------------------------------------------------
    def open(self) -> list[SpoolEntry]:
        """Create the directory if needed, lock it, and return the payloads a previous run left, oldest first.

        Temporary files (a write interrupted by a crash) are removed; damaged files are renamed to
        ``*.corrupt`` with a warning and counted in ``corrupt_files``; names of spool files that are not
        regular files of plausible size are renamed ``*.foreign`` unread and counted in ``foreign_files``.
        Bounds are the caller's business (``SpoolStore``). Raises SpoolInUse when another client holds the
        directory, SpoolError when it cannot be used at all.
        """
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SpoolError(f"cannot create the spool directory {self.directory}: {exc.strerror}") from None
        if not self.directory.is_dir():
            raise SpoolError(f"{self.directory} is not a directory")
        if not os.access(self.directory, os.W_OK | os.X_OK):
            raise SpoolError(f"the spool directory {self.directory} is not writable")
        self._hold_directory()
        entries: list[SpoolEntry] = []
        for name in sorted(os.listdir(self.directory)):
            path = self.directory / name
            if name.endswith(TMP_SUFFIX):
                _unlink_quietly(path)
                continue
            parsed = parse_name(name)
            if parsed is None:
                continue
            try:
                blob = read_regular(path, self.max_file_bytes)
                created_ms, samples, _ = decode_file(blob)
            except ForeignFile as exc:
                logger.warning("spool: %s is %s; set aside unread as %s%s", path, exc.strerror, name, FOREIGN_SUFFIX)
                self._set_aside(path, FOREIGN_SUFFIX)
                self.foreign_files += 1
                continue
            except (CorruptFile, OSError) as exc:
                logger.warning(
                    "spool: skipping damaged file %s (%s); moved aside as %s%s", path, exc, name, CORRUPT_SUFFIX
                )
                self._set_aside(path, CORRUPT_SUFFIX)
                self.corrupt_files += 1
                continue
            seq, part = parsed
            entries.append(
                SpoolEntry(seq, created_ms, samples, len(blob), path=path, part=part, max_bytes=self.max_file_bytes)
            )
        entries = self._without_superseded(entries)
        # New names sort after every left-over one; starting from the time (µs) also keeps them apart from
        # files this process could not see (a directory that only becomes readable later).
        self._next_seq = max(entries[-1].seq + 1 if entries else 1, int(self.clock() * 1e6))
        self._disk_bytes = sum(e.size for e in entries)
        return entries

    def _without_superseded(self, entries: list[SpoolEntry]) -> list[SpoolEntry]:
        """Sorted in sending order, without the halves of a request whose own file is still there (a crash
        came between writing the halves and removing it: the whole request is authoritative)."""
        entries.sort(key=lambda e: (e.seq, e.part))
        kept: list[SpoolEntry] = []
        for entry in entries:
            # A request sorts right before its halves, so an ancestor is among the last kept of its seq.
            if kept and kept[-1].seq == entry.seq and entry.part.startswith(kept[-1].part):
                assert entry.path is not None
                _unlink_quietly(entry.path)
                continue
            kept.append(entry)
        return kept

    def _hold_directory(self) -> None:
        """Hold the directory for this process (released when it exits); SpoolInUse if another holds it."""
        if self._lock_fd is not None:
            return
        path = self.directory / LOCK_NAME
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise SpoolError(f"cannot create the lock file {path}: {exc.strerror}") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise SpoolError(f"the lock file {path} is not a regular file: remove it")
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise SpoolError(f"cannot lock {path}: {exc.strerror}") from None
                holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "holder unknown"
                raise SpoolInUse(
                    f"SPOOL_DIR={self.directory} is in use by another monitoring-client ({holder}): two clients"
                    " must not share a spool directory (each would send and delete the other's files); give"
                    " each client its own SPOOL_DIR."
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} on host {socket.gethostname()}\n".encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self._lock_fd = fd

    def close(self) -> None:
        """Release the directory (the process's exit does it too)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _set_aside(self, path: Path, suffix: str) -> None:
        try:
            os.replace(path, path.with_name(path.name + suffix))
        except OSError:
            _unlink_quietly(path)

    # -- steady state ------------------------------------------------------------------------------
    def put(self, payload: bytes, samples: int) -> SpoolEntry:
        """Persist one payload before it is sent; on a write error keep it in memory (with a warning)."""
        with self._lock_seq:
            seq = self._next_seq
            self._next_seq += 1
        return self._store(seq, "", int(self.clock() * 1000), payload, samples)

    def put_part(self, parent: SpoolEntry, index: int, payload: bytes, samples: int) -> SpoolEntry:
        """Persist part ``index`` (0: older half, 1: newer half) of ``parent``, which it will replace; it
        keeps the parent's age and sorts where the parent did."""
        return self._store(parent.seq, parent.part + str(index), parent.created_ms, payload, samples)

    def _store(self, seq: int, part: str, created_ms: int, payload: bytes, samples: int) -> SpoolEntry:
        blob = encode_file(payload, samples, created_ms)
        path = self.directory / file_name(seq, part)
        try:
            if not self.disk_ok:
                self.directory.mkdir(parents=True, exist_ok=True)  # it may not have existed at start
                self._hold_directory()  # nor been lockable: never write beside another client
            self._writer(path, blob)
        except (OSError, SpoolError, SpoolInUse) as exc:
            self.write_failures += 1
            with self._lock_seq:
                was_ok, self._disk_ok = self._disk_ok, False
            if was_ok:
                code = exc.errno if isinstance(exc, OSError) else None
                why = "the disk is full or read-only" if code in DISK_FULL_ERRNOS else "it cannot be written"
                detail = (exc.strerror if isinstance(exc, OSError) else None) or exc
                logger.warning(
                    "spool: %s (%s: %s); keeping payloads in memory only until a write succeeds", why, path, detail
                )
            return SpoolEntry(seq, created_ms, samples, len(payload), path=None, data=payload, part=part)
        with self._lock_seq:
            self._disk_bytes += len(blob)
            was_ok, self._disk_ok = self._disk_ok, True
        if not was_ok:
            logger.warning("spool: writing to %s works again", self.directory)
        # Read back when sent.
        return SpoolEntry(seq, created_ms, samples, len(blob), path=path, part=part, max_bytes=self.max_file_bytes)

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
        with self._lock_seq:
            self._disk_bytes = max(0, self._disk_bytes - entry.size)
        entry.path = None

    def set_aside(self, entry: SpoolEntry, suffix: str = CORRUPT_SUFFIX) -> None:
        """Rename a file that cannot be read back to ``*.corrupt`` (``*.foreign`` when it is not a regular
        file of plausible size): kept for inspection, never replayed."""
        if entry.path is None:
            return
        try:
            os.replace(entry.path, entry.path.with_name(entry.path.name + suffix))
        except OSError:
            pass
        self.remove(entry)

    def mark_unusable(self) -> None:
        """The directory could not be opened: count as failing until a write succeeds."""
        with self._lock_seq:
            self._disk_ok = False
            self._next_seq = max(self._next_seq, int(self.clock() * 1e6))

    @property
    def disk_bytes(self) -> int:
        with self._lock_seq:
            return self._disk_bytes

    @property
    def disk_ok(self) -> bool:
        with self._lock_seq:
            return self._disk_ok
