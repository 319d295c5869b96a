"""Read every rail's voltage and current once per tick: one ``pread`` per file on descriptors kept open.

Sysfs attributes are regenerated on each read from offset 0, so the files stay open and a tick costs two
system calls per rail and two ``int()``: no open, no close, no file object.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence

from jetson_ina3221.discovery import Rail, unreadable
from monitoring_client.device_loop import SkipTick

_READ_SIZE = 32


class RailReader:
    """Holds two descriptors per rail; ``read()`` returns ``[mV, mA, mV, mA, ...]`` in rail order.

    Opening and a first read happen in the constructor, so an unreadable rail is reported at start-up as
    ``EnvironmentProblem`` (exit status 3) naming the file.
    """

    def __init__(self, rails: Sequence[Rail]) -> None:
        self.paths = [path for rail in rails for path in (rail.volts_path, rail.amps_path)]
        self._fds: list[int] = []
        try:
            for path in self.paths:
                try:
                    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                    self._fds.append(fd)
                    int(os.pread(fd, _READ_SIZE, 0))
                except OSError as exc:
                    raise unreadable(path, exc) from None
                except ValueError:
                    raise unreadable(path, ValueError("it does not hold a number")) from None
        except BaseException:
            self.close()
            raise

    def read(self) -> list[int]:
        """Hot path. Raises ``SkipTick`` on unparsable text, ``EnvironmentProblem`` if a file stops being readable."""
        pread = os.pread
        try:
            return [int(pread(fd, _READ_SIZE, 0)) for fd in self._fds]
        except ValueError as exc:
            raise SkipTick(f"unparsable INA3221 value: {exc}") from None
        except OSError:
            raise self._diagnose() from None

    def _diagnose(self) -> Exception:
        for path, fd in zip(self.paths, self._fds, strict=True):
            try:
                os.pread(fd, _READ_SIZE, 0)
            except OSError as exc:
                return unreadable(path, exc)
        return unreadable(self.paths[0], OSError("read failed"))

    def close(self) -> None:
        while self._fds:
            with contextlib.suppress(OSError):
                os.close(self._fds.pop())
