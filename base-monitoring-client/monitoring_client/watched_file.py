"""A file the client re-reads when it changes: a password, a token, a certificate, a key.

Fixing a secret on disk must take effect without a restart, yet a push must stay cheap: a change is noticed
from the file's status (modification time in ns, size, inode, device: an in-place rewrite changes the
first two, an atomic rename or a Kubernetes secret update, which swaps a symlink, changes the inode), never
by reading it each time. Reading is bounded and never blocks: only a regular file is read (a FIFO or a
device put in its place is refused), and at most ``limit`` bytes of it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

Signature = tuple[int, int, int, int]


class UnreadableFile(Exception):
    """The file cannot be used; the message says why in a few words, never with its content."""


def signature(path: Path) -> Signature | None:
    """(mtime ns, size, inode, device) following symlinks, or None when the file cannot be examined."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_dev)


def read_bounded(path: Path, limit: int) -> bytes:
    """The whole content of a regular file of at most ``limit`` bytes; ``UnreadableFile`` otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise UnreadableFile("no such file") from None
    except PermissionError:
        raise UnreadableFile("not readable by this user") from None
    except OSError as exc:
        raise UnreadableFile(exc.strerror or exc.__class__.__name__) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnreadableFile("not a regular file")
        chunks = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise UnreadableFile(f"larger than {limit} bytes")
        return b"".join(chunks)
    except OSError as exc:
        raise UnreadableFile(exc.strerror or exc.__class__.__name__) from None
    finally:
        os.close(fd)


class WatchedFile:
    """One path and the status it had when last read; ``changed()`` costs one ``stat``."""

    def __init__(self, path: Path, variable: str) -> None:
        self.path = path
        self.variable = variable  # the setting that names it, for messages
        self._seen: Signature | None = None

    def changed(self) -> bool:
        return signature(self.path) != self._seen

    def mark_read(self, seen: Signature | None) -> None:
        self._seen = seen

    def read(self, limit: int) -> bytes:
        """The content (``UnreadableFile`` when it cannot be read); remembers the status it was read at."""
        seen = signature(self.path)
        data = read_bounded(self.path, limit)
        self._seen = seen
        return data

    def where(self) -> str:
        return f"{self.variable}={self.path}"
