"""Sampling in a child process, for intervals so short that sharing the interpreter would make ticks late.

In the client's process the sampling thread shares one interpreter lock with the base client's batcher and
sender and with ``process_data``. A tick that comes due while one of them runs Python code waits for the
lock; at 1 kHz that costs ticks, and a process of its own takes markedly more of them (figures in the
README, current ones in docs/BENCHMARKS.md).

So at short intervals (``SAMPLER_PROCESS=auto``: below 5 ms, i.e. above 200 Hz) ``get_power`` starts this
module as a child (``python -m cpu_pyjoules.sampler_process [--realtime] INTERVAL_S COUNTER_FILE...``). The
child runs the same schedule and loop (:mod:`cpu_pyjoules.sampling`) on the counter files it is given, and
``get_power`` relays its readings, which arrive in batches through a pipe, to the raw queue unchanged. Zones
are discovered by the parent through pyJoules as before; the child imports neither pyJoules nor protobuf, so
it stays small.

Wire format on the child's stdout, little-endian: frames of ``u32 byte count`` followed by that many bytes
of ``int64``: each reading is ``monotonic_ns, wall_ms, counter_0 .. counter_n-1`` (the monotonic clock is
the same system-wide, so the processor's interval arithmetic is unchanged). The child stops, after sending
what it read, when its stdin reaches end of file: the parent closes it to stop the child, and a parent that
dies closes it too, so the child never outlives the client. SIGINT and SIGTERM are ignored (a Ctrl-C or a
signal to the whole process group reaches the child as well; the parent decides when to stop). Its log lines
go to the same stderr as the client's. Exit status 3, with the usual paragraph on stderr, when a counter
cannot be read.

``--realtime`` (``SAMPLER_REALTIME=true``) asks for the ``SCHED_FIFO`` real-time policy, which needs
CAP_SYS_NICE (root on a host; ``cap_add: [SYS_NICE]`` in Docker). It makes the sampler preempt everything
else when a tick is due. Without the capability it logs a warning and samples as usual.
"""

from __future__ import annotations

import logging
import os
import signal
import struct
import sys
import threading
import time
from array import array
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO

from cpu_pyjoules.rapl_reader import RaplReader
from cpu_pyjoules.sampling import RawReading, sample_ticks
from monitoring_client.device_loop import ReadingBatches
from monitoring_client.errors import EnvironmentProblem
from monitoring_client.ratelimited_log import RateLimitedLog
from monitoring_client.ticker import AbsoluteTicker

logger = logging.getLogger(__name__)

# SAMPLER_PROCESS values.
AUTO, YES, NO = "auto", "yes", "no"
SAMPLER_MODES = (AUTO, YES, NO)
# SAMPLER_PROCESS=auto uses the child process for sampling intervals shorter than this (above 200 Hz).
AUTO_BELOW_S = 0.005
# The child sends a frame at least this often, or as soon as this many readings are waiting.
FLUSH_S = 0.05
FLUSH_READINGS = 512
REALTIME_PRIORITY = 10

_HEADER = struct.Struct("<I")


def use_process(mode: str, interval_s: float) -> bool:
    """Whether to sample in a child process, for ``mode`` ``auto``, ``yes`` or ``no``."""
    if mode == YES:
        return True
    if mode == NO:
        return False
    return interval_s < AUTO_BELOW_S


# -- parent side -------------------------------------------------------------------------------------------


class SamplerProcess:
    """The child seen from ``get_power``: start it, iterate over its readings, stop it, check how it ended."""

    def __init__(
        self, paths: Sequence[Path], interval_s: float, *, realtime: bool = False, python: str = sys.executable
    ) -> None:
        self.width = 2 + len(paths)
        args = [python, "-m", "cpu_pyjoules.sampler_process"]
        if realtime:
            args.append("--realtime")
        args += [repr(float(interval_s)), *(str(p) for p in paths)]
        import subprocess  # here: only a client sampling above 200 Hz starts a child

        self._timeout_expired = subprocess.TimeoutExpired
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        """Ask the child to finish: it sends what it has read and exits."""
        stdin = self.proc.stdin
        if stdin is not None and not stdin.closed:
            try:
                stdin.close()
            except OSError:
                pass

    def frames(self) -> Iterator[list[RawReading]]:
        """The readings the child sends, one list per frame, in order, until it exits."""
        out = self.proc.stdout
        assert out is not None
        width = self.width
        while True:
            header = _read_exact(out, _HEADER.size)
            if len(header) < _HEADER.size:
                return
            (size,) = _HEADER.unpack(header)
            values = array("q")
            values.frombytes(_read_exact(out, size))
            yield [
                (values[i], values[i + 1], values[i + 2 : i + width].tolist())
                for i in range(0, len(values) - width + 1, width)
            ]

    def readings(self) -> Iterator[RawReading]:
        """Every reading the child sends, in order, until it exits."""
        for frame in self.frames():
            yield from frame

    def wait(self, timeout: float | None = None) -> int:
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """Last resort (the parent is failing): make sure no child is left behind."""
        self.stop()
        if self.proc.poll() is None:
            try:
                self.proc.wait(2.0)
            except self._timeout_expired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _read_exact(stream: IO[bytes], size: int) -> bytes:
    chunks = []
    while size > 0:
        chunk = stream.read(size)
        if not chunk:
            break
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


# -- child side --------------------------------------------------------------------------------------------


class FrameWriter:
    """Writes lists of readings as frames (the parent's ``frames`` reads them); see :func:`frame_batches`."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out

    def write(self, readings: list[RawReading]) -> None:
        buffer = array("q")
        for t_ns, wall_ms, values in readings:
            buffer.append(t_ns)
            buffer.append(wall_ms)
            buffer.extend(values)
        data = buffer.tobytes()
        self.out.write(_HEADER.pack(len(data)) + data)
        self.out.flush()


def frame_batches(out: IO[bytes], *, clock_ns: Callable[[], int] = time.monotonic_ns) -> ReadingBatches:
    """The child's readings, sent as a frame every ``FLUSH_S`` or ``FLUSH_READINGS`` readings."""
    return ReadingBatches(FrameWriter(out).write, FLUSH_S, FLUSH_READINGS, clock_ns=clock_ns)


def _go_realtime() -> None:
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(REALTIME_PRIORITY))
        logger.info("sampler runs with the SCHED_FIFO real-time policy (priority %d)", REALTIME_PRIORITY)
    except (OSError, AttributeError) as exc:
        logger.warning(
            "SAMPLER_REALTIME: cannot use real-time scheduling (%s); it needs CAP_SYS_NICE. Sampling as usual.", exc
        )


def child_main(argv: Sequence[str]) -> int:
    """Entry point of the child process (see the module docstring)."""
    level = os.environ.get("LOG_LEVEL", "INFO").upper()
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    args = list(argv)
    realtime = "--realtime" in args
    if realtime:
        args.remove("--realtime")
    interval_s, paths = float(args[0]), [Path(p) for p in args[1:]]
    stop = threading.Event()

    def watch_stdin() -> None:
        # The raw descriptor, not sys.stdin: a daemon thread blocked inside a buffered reader makes the
        # interpreter abort at exit ("could not acquire lock ... at interpreter shutdown").
        try:
            while os.read(0, 4096):
                pass
        except OSError:
            pass
        stop.set()

    threading.Thread(target=watch_stdin, name="stdin-watch", daemon=True).start()
    if realtime:
        _go_realtime()
    try:
        reader = RaplReader(paths)
    except EnvironmentProblem as exc:  # its paragraph, and the same exit status as the client's
        print(exc, file=sys.stderr)
        return exc.exit_status
    out = os.fdopen(sys.stdout.fileno(), "wb", closefd=False)
    batches = frame_batches(out)
    warnings = RateLimitedLog(logger, 60.0)
    with reader:
        try:
            sample_ticks(AbsoluteTicker(interval_s), reader, batches, stop, warnings)
            batches.flush()
        except BrokenPipeError:
            return 0  # the parent is gone
        except EnvironmentProblem as exc:  # a counter that became unreadable
            print(exc, file=sys.stderr)
            return exc.exit_status
        finally:
            warnings.flush()
    return 0


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
