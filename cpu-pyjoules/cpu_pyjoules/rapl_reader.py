"""Read the RAPL counters cheaply enough for kilohertz sampling.

pyJoules opens, reads and closes every ``energy_uj`` file on every sample and parses a float. Sysfs
attributes are regenerated on every read from offset 0, so the file can simply stay open: one ``os.pread``
per zone per tick, no open/close, no file object, integer parsing. The values are the same ones pyJoules
reads (the tests check this on the same tree); only the cost differs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from cpu_pyjoules import rapl_errors

# Longest counter text: 20 digits of a 64-bit value plus newline; sysfs never returns more for energy_uj.
READ_SIZE = 32


class CounterGlitch(Exception):
    """A counter file returned text that is not a number (a torn write in a fake tree, never real sysfs)."""


class RaplReader:
    """Holds one descriptor per ``energy_uj`` file and reads all of them per call, in the given order.

    Opening and a first read happen in the constructor, so a missing or unreadable counter is reported at
    start-up as ``EnvironmentProblem`` (exit 3) naming the file, not as a crash on the first tick.
    ``opener`` is injectable so tests can simulate failures that root cannot provoke with permissions.
    """

    def __init__(self, paths: Sequence[Path], opener: Callable[..., int] = os.open) -> None:
        self.paths = [Path(p) for p in paths]
        self._fds: list[int] = []
        self._sizes = [READ_SIZE] * len(self.paths)
        self._offsets = [0] * len(self.paths)
        try:
            for path in self.paths:
                try:
                    self._fds.append(opener(str(path), os.O_RDONLY | os.O_CLOEXEC))
                except OSError as exc:
                    raise rapl_errors.unreadable(path, exc) from None
            for path, fd in zip(self.paths, self._fds, strict=True):
                try:
                    int(os.pread(fd, READ_SIZE, 0))
                except OSError as exc:
                    raise rapl_errors.unreadable(path, exc) from None
                except ValueError:
                    raise rapl_errors.unreadable(path, ValueError("it does not hold an energy counter")) from None
        except BaseException:
            self.close()
            raise

    @property
    def fds(self) -> list[int]:
        """The open descriptors, in zone order (the sampling loop reads them directly)."""
        return self._fds

    def read(self) -> list[int]:
        """Current counter of every zone in µJ. Hot path: one pread and one int() per zone.

        Raises ``EnvironmentProblem`` if a counter stops being readable, ``CounterGlitch`` on unparsable text.
        """
        try:  # map, not a comprehension: no Python frame per call
            return list(map(int, map(os.pread, self._fds, self._sizes, self._offsets)))
        except OSError:
            raise self._diagnose() from None
        except ValueError as exc:
            raise CounterGlitch(str(exc)) from None

    def _diagnose(self) -> Exception:
        for path, fd in zip(self.paths, self._fds, strict=True):
            try:
                os.pread(fd, READ_SIZE, 0)
            except OSError as exc:
                return rapl_errors.unreadable(path, exc)
        return rapl_errors.unreadable(self.paths[0], OSError("read failed"))

    def close(self) -> None:
        fds, self._fds = self._fds, []
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> RaplReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
