"""A fake powercap tree of real files whose RAPL counters advance in real time at chosen powers.

Machines without RAPL (CI runners, laptops on battery, VMs, containers) can then run the real reader,
pyJoules, and the whole stack. It builds the layout of ``/sys/class/powercap``::

    DIR/intel-rapl/                          control type, what pyJoules's RAPL_API_DIR points at
    DIR/intel-rapl/intel-rapl:S/             package-S of socket S:  name, energy_uj, max_energy_range_uj
    DIR/intel-rapl/intel-rapl:S/intel-rapl:S:N/   its sub-zones (core, uncore, dram), same files
    DIR/intel-rapl/intel-rapl:P/             psys, after the packages, when asked for
    DIR/intel-rapl:S, DIR/intel-rapl:S:N     symlinks, as the class directory has them

and advances every ``energy_uj`` at the given watts, wrapping at ``max_energy_range_uj``.

Counters are rewritten in place (same inode, one ``pwrite`` at offset 0), because a reader that keeps the
file open, as cpu-pyjoules's does, would never see an atomically renamed replacement. Values are zero-padded
to a fixed width so that every write has the same length: a shorter value never leaves stale digits behind
and no truncate is needed (``int()`` and pyJoules's ``float()`` both accept the padding).

Command line (runs until SIGTERM/SIGINT, or ``--duration``)::

    python -m cpu_pyjoules.fake_powercap DIR --watts package-0=25,core=15,dram=4 \\
        [--sockets N] [--wrap-joules J] [--psys W] [--follow-cpu-load] [--update-ms MS]

In tests: ``FakePowercap(root, watts={"package-0": 25, "core": 15}).build()`` then ``advance(seconds)`` for
deterministic counters, or ``start()``/``stop()`` (or ``with``) for a background thread in real time.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from cpu_pyjoules.fake_zones import (
    CONTROL_TYPE,
    DEFAULT_MAX_RANGE_UJ,
    FakeZone,
    WattsSpec,
    parse_watts,
    zone_layout,
)

logger = logging.getLogger("cpu_pyjoules.fake_powercap")

# Held (flock) by the FakePowercap that owns a tree: two writers on one tree would make counters jump.
LOCK_FILE = ".fake-powercap.lock"
# With --follow-cpu-load a zone draws this share of its watts when idle, all of it at full load.
IDLE_SHARE = 0.25


class FakePowercap:
    """Build a fake powercap tree under ``root`` and advance its counters (manually or in a thread).

    ``watts``: see :func:`cpu_pyjoules.fake_zones.parse_watts`. ``sockets``: number of packages.
    ``wrap_joules``: counter range (default that of a real package, about 262 kJ). ``psys_watts``: add a
    psys zone. ``start_fraction``: where in the range the counters start (so the first wrap comes after
    that share of a period).
    ``follow_cpu_load``: scale the watts by this machine's CPU load (from ``proc_stat``).
    """

    def __init__(
        self,
        root: str | Path,
        watts: WattsSpec,
        *,
        sockets: int = 1,
        wrap_joules: float | None = None,
        psys_watts: float | None = None,
        update_interval_s: float = 0.001,
        start_fraction: float = 0.5,
        follow_cpu_load: bool = False,
        proc_stat: str | Path = "/proc/stat",
        clock: Callable[[], float] = time.monotonic,
        class_links: bool = True,
    ) -> None:
        if sockets < 1:
            raise ValueError("sockets must be at least 1")
        if wrap_joules is not None and not wrap_joules > 0:
            raise ValueError("wrap_joules must be positive")
        if not 0 <= start_fraction < 1:
            raise ValueError("start_fraction must be in [0, 1)")
        if not update_interval_s > 0:
            raise ValueError("update_interval_s must be positive")
        self.root = Path(root)
        self.watts = parse_watts(watts)
        if psys_watts is not None:
            self.watts["psys"] = float(psys_watts)
        self.sockets = sockets
        self.max_range_uj = int(wrap_joules * 1e6) if wrap_joules is not None else DEFAULT_MAX_RANGE_UJ
        if self.max_range_uj < 1000:
            raise ValueError("wrap_joules must be at least 0.001 J")
        self.width = len(str(self.max_range_uj))
        self.update_interval_s = update_interval_s
        self.start_fraction = start_fraction
        self.follow_cpu_load = follow_cpu_load
        self.proc_stat = Path(proc_stat)
        self.clock = clock
        self.class_links = class_links
        self.zones: dict[str, FakeZone] = {}
        self.load_factor = 1.0
        self._cpu_prev: tuple[int, int] | None = None
        self._cpu_checked = float("-inf")
        self._lock = threading.Lock()
        self._lock_fd = -1
        self.updates = 0  # counter rewrites done by the thread
        self.longest_gap_s = 0.0  # longest time between two of them (a reader can be off by this much)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- layout -------------------------------------------------------------------------------------------

    def build(self) -> FakePowercap:
        """Create (or re-create) the tree with the counters at their start values; returns self."""
        resolved = self.root.resolve()
        if resolved == Path("/sys") or Path("/sys") in resolved.parents:
            raise ValueError(f"refusing to build a fake tree inside /sys ({resolved})")
        self.close()
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock_tree()
        shutil.rmtree(self.root / CONTROL_TYPE, ignore_errors=True)
        for entry in os.listdir(self.root):
            if entry.startswith(CONTROL_TYPE + ":") and (self.root / entry).is_symlink():
                (self.root / entry).unlink()
        (self.root / CONTROL_TYPE).mkdir()
        (self.root / CONTROL_TYPE / "enabled").write_text("1\n")
        self.zones = {}
        for zone_id, name, watts, rel in zone_layout(self.watts, self.sockets):
            directory = self.root / rel
            directory.mkdir()
            (directory / "name").write_text(name + "\n")
            (directory / "max_energy_range_uj").write_text(f"{self.max_range_uj}\n")
            (directory / "enabled").write_text("1\n")
            zone = FakeZone(
                zone_id=zone_id,
                name=name,
                watts=watts,
                directory=directory,
                max_range_uj=self.max_range_uj,
                initial_uj=int(self.max_range_uj * self.start_fraction),
            )
            path = directory / "energy_uj"
            zone.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o444)
            self._write(zone)
            self.zones[zone_id] = zone
            if self.class_links:
                os.symlink(rel, self.root / zone_id)
        return self

    def _lock_tree(self) -> None:
        fd = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise ValueError(f"another fake powercap (pid {holder}) is already advancing {self.root}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def _write(self, zone: FakeZone) -> None:
        os.pwrite(zone.fd, b"%0*d\n" % (self.width, zone.counter_uj), 0)

    # -- advancing ------------------------------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Add ``seconds`` worth of energy to every zone at its (load-scaled) watts and rewrite the counters."""
        if not self.zones:
            raise RuntimeError("build() the tree first")
        if seconds < 0:
            raise ValueError("time only moves forward")
        with self._lock:
            if self.follow_cpu_load:
                self._update_load_factor()
            scale = seconds * 1e6 * self.load_factor
            for zone in self.zones.values():
                zone.energy_uj += zone.watts * scale
                self._write(zone)

    def _update_load_factor(self) -> None:
        now = self.clock()
        if now - self._cpu_checked < 0.1:
            return
        self._cpu_checked = now
        try:
            fields = self.proc_stat.read_text().split("\n", 1)[0].split()[1:]
            values = [int(v) for v in fields]
        except (OSError, ValueError, IndexError):
            return
        idle = values[3] + (values[4] if len(values) > 4 else 0)
        total = sum(values[:8])
        if self._cpu_prev is not None:
            d_total = total - self._cpu_prev[0]
            d_idle = idle - self._cpu_prev[1]
            if d_total > 0:
                busy = min(1.0, max(0.0, 1.0 - d_idle / d_total))
                self.load_factor = IDLE_SHARE + (1 - IDLE_SHARE) * busy
        self._cpu_prev = (total, idle)

    def start(self) -> FakePowercap:
        """Advance the counters in real time from a background thread (builds the tree if needed)."""
        if not self.zones:
            self.build()
        if self._thread is not None:
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="fake-powercap", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        # time.sleep, not Event.wait: cheaper per wake-up at a kilohertz, and stop() waits one period at most.
        sleep, stopped, period = time.sleep, self._stop.is_set, self.update_interval_s
        last = self.clock()
        while not stopped():
            sleep(period)
            now = self.clock()
            self.advance(now - last)
            self.updates += 1
            self.longest_gap_s = max(self.longest_gap_s, now - last)
            last = now
        now = self.clock()
        self.advance(now - last)

    def stop(self) -> None:
        """Stop the thread (the counters keep their last values; files stay)."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join()

    def close(self) -> None:
        """Stop, close the counter files and release the tree (it stays on disk)."""
        self.stop()
        for zone in self.zones.values():
            if zone.fd >= 0:
                os.close(zone.fd)
                zone.fd = -1
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = -1

    def __enter__(self) -> FakePowercap:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- inspection -------------------------------------------------------------------------------------------

    def zone(self, key: str) -> FakeZone:
        """A zone by id (``intel-rapl:0:1``) or, if unique, by name (``core``, ``package-0``)."""
        if key in self.zones:
            return self.zones[key]
        matches = [z for z in self.zones.values() if z.name == key]
        if len(matches) != 1:
            raise KeyError(f"{key!r} matches {len(matches)} zones")
        return matches[0]

    def describe(self) -> str:
        lines = []
        for zone in self.zones.values():
            period = zone.wrap_period_s
            wraps = f"wraps every {period:.3g} s" if period < 86400 * 365 else "never wraps"
            lines.append(f"  {zone.zone_id:<16} {zone.name:<10} {zone.watts:g} W, {wraps}")
        return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cpu_pyjoules.fake_powercap",
        description="Build a fake RAPL powercap tree in DIR and advance its counters in real time.",
    )
    parser.add_argument("dir", type=Path, help="directory to build the tree in (point POWERCAP_ROOT at it)")
    parser.add_argument(
        "--watts",
        default="package-0=25,core=15,dram=4",
        help="NAME=W,... with names package, package-N, core, uncore, dram, psys (default: %(default)s)",
    )
    parser.add_argument("--sockets", type=int, default=1, help="number of packages (default 1)")
    parser.add_argument("--wrap-joules", type=float, default=None, help="counter range in J (default ~262 kJ)")
    parser.add_argument("--psys", type=float, default=None, metavar="W", help="add a psys zone drawing W watts")
    parser.add_argument("--follow-cpu-load", action="store_true", help="scale the watts by this host's CPU load")
    parser.add_argument("--update-ms", type=float, default=1.0, help="counter update period (default 1 ms)")
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    parser.add_argument("--build-only", action="store_true", help="build the tree and exit (counters do not move)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s fake_powercap: %(message)s", stream=sys.stderr)
    try:
        fake = FakePowercap(
            args.dir,
            args.watts,
            sockets=args.sockets,
            wrap_joules=args.wrap_joules,
            psys_watts=args.psys,
            update_interval_s=args.update_ms / 1000.0,
            follow_cpu_load=args.follow_cpu_load,
        )
        fake.build()
    except (ValueError, OSError) as exc:
        parser.error(str(exc))
    logger.info("built fake powercap tree under %s (POWERCAP_ROOT=%s):\n%s", args.dir, args.dir, fake.describe())
    if args.build_only:
        fake.close()
        return 0

    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        logger.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    fake.start()
    logger.info(
        "advancing counters every %g ms%s", args.update_ms, " following CPU load" if args.follow_cpu_load else ""
    )
    stop.wait(args.duration)
    fake.close()
    totals = ", ".join(f"{z.zone_id}={z.joules:.3f} J" for z in fake.zones.values())
    logger.info(
        "stopped after %d updates (longest gap %.1f ms); energy drawn: %s",
        fake.updates,
        fake.longest_gap_s * 1000,
        totals,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
