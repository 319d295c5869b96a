"""What every benchmark section gets: a plan of durations for the chosen mode, a work directory, logging,
and helpers to start a real Prometheus and a fake RAPL tree that are stopped by PID afterwards."""

from __future__ import annotations

import dataclasses
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from testkit.fake_rapl import FakeRaplTree
from testkit.prometheus import PrometheusServer, find_prometheus


@dataclass(frozen=True)
class Tree:
    """A fake RAPL tree's layout: watts per zone name, sockets, psys watts (None: no psys zone)."""

    watts: str
    sockets: int = 1
    psys: float | None = None


# The tree of the CPU comparison: one socket with the four zones of the field guide's seed measurement.
CPU_TREE = Tree("package-0=25,core=15,uncore=2,dram=4")
# "All zones": two sockets with package, core, uncore and dram each, plus psys (pyJoules 0.5.1 cannot see psys).
ALL_ZONES_TREE = Tree("package=25,core=15,uncore=2,dram=4", sockets=2, psys=12.0)


@dataclass(frozen=True)
class Plan:
    """Durations and sizes of one mode. ``full`` is the documented run; the others only shorten it."""

    mode: str
    encoder_budget_s: float
    cpu_rates: tuple[float, ...]
    device_rates: tuple[float, ...]  # rates of the gpu-nvml and jetson-ina3221 rows of the cpu section
    cpu_warmup_s: float
    cpu_window_s: float
    cpu_repeats: int  # windows per rate (the tables give median, min and max)
    sched_rates: tuple[float, ...]
    sched_seconds: float
    sched_skip_s: float
    fleet_sizes: tuple[int, ...]
    fleet_warmup_s: float
    fleet_window_s: float
    mem_steady_s: float
    mem_outage_s: float
    mem_after_s: float
    churn_s: float = 600.0  # label churn: the documented run is ten minutes
    push_interval_s: float | None = None  # None: the client's default (1 s)
    sched_variants: tuple[str, ...] = ("realtime",)  # also run cpu-pyjoules with SAMPLER_REALTIME at the top rate
    share_prometheus: bool = False  # one Prometheus for every section (saves start-ups in the smoke run)
    client_env: tuple[tuple[str, str], ...] = ()  # extra client settings (the smoke run retries sooner)
    transport_requests: int = 300  # requests timed per transport security mode


FULL = Plan(
    mode="full",
    encoder_budget_s=2.0,
    cpu_rates=(10, 100, 1000),
    device_rates=(10, 100),
    cpu_warmup_s=5,
    cpu_window_s=40,
    cpu_repeats=3,
    sched_rates=(100, 1000),
    sched_seconds=60,
    sched_skip_s=2,
    fleet_sizes=(10, 50, 100),
    fleet_warmup_s=5,
    fleet_window_s=30,
    mem_steady_s=60,
    mem_outage_s=600,
    mem_after_s=20,
)
PLANS = {
    "full": FULL,
    "quick": dataclasses.replace(
        FULL,
        mode="quick",
        encoder_budget_s=0.5,
        cpu_warmup_s=3,
        cpu_window_s=10,
        cpu_repeats=2,
        sched_seconds=10,
        sched_skip_s=1,
        fleet_sizes=(10, 50),
        fleet_warmup_s=3,
        fleet_window_s=10,
        mem_steady_s=15,
        mem_outage_s=60,
        mem_after_s=10,
        transport_requests=100,
        churn_s=120,
    ),
    "smoke": dataclasses.replace(
        FULL,
        mode="smoke",
        encoder_budget_s=0.1,
        cpu_rates=(100,),
        device_rates=(100,),
        cpu_warmup_s=0.3,
        cpu_window_s=0.7,
        cpu_repeats=1,
        sched_rates=(100,),
        sched_seconds=0.8,
        sched_skip_s=0.2,
        fleet_sizes=(2,),
        fleet_warmup_s=0.3,
        fleet_window_s=0.7,
        mem_steady_s=1.0,
        mem_outage_s=1.0,
        mem_after_s=0.5,
        churn_s=5.0,
        push_interval_s=0.25,
        share_prometheus=True,
        sched_variants=(),
        client_env=(("RETRY_BASE_S", "0.1"), ("RETRY_MAX_S", "0.5")),
        transport_requests=5,
    ),
}


class Context:
    """Shared by the sections of one run."""

    def __init__(self, plan: Plan, workdir: Path, verbose: bool = True) -> None:
        self.plan = plan
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.verbose = verbose
        self.t0 = time.monotonic()
        self._n = 0
        self._tmpfs: Path | None = None
        self._shared: PrometheusServer | None = None

    def tree_dir(self) -> Path:
        """Where fake trees go: tmpfs (/dev/shm) when available, like sysfs in memory.

        On a disk-backed filesystem a counter rewrite can stall during writeback, which the reader would
        then see as a frozen counter; tmpfs has no writeback.
        """
        if self._tmpfs is None:
            shm = Path("/dev/shm")
            try:
                self._tmpfs = Path(tempfile.mkdtemp(prefix="powermon-bench-", dir=shm))
            except OSError:
                self._tmpfs = self.workdir
        return self._tmpfs

    def close(self) -> None:
        """Remove the fake trees' tmpfs directory (the work directory is the caller's)."""
        if self._shared is not None:
            self._shared.stop()
            self._shared = None
        if self._tmpfs is not None and self._tmpfs != self.workdir:
            shutil.rmtree(self._tmpfs, ignore_errors=True)
        self._tmpfs = None

    def log(self, message: str) -> None:
        if self.verbose:
            print(f"[bench {time.monotonic() - self.t0:7.1f}s] {message}", file=sys.stderr, flush=True)

    def path(self, name: str) -> Path:
        """A fresh path in the work directory (unique per call)."""
        self._n += 1
        return self.workdir / f"{self._n:03d}-{name}"

    @contextmanager
    def prometheus(self, name: str) -> Iterator[PrometheusServer]:
        """A fresh Prometheus for a section (stopped after it), or the run's shared one (smoke mode)."""
        if self.plan.share_prometheus:
            if self._shared is None:
                self._shared = PrometheusServer(self.path("prometheus-shared"))
            self._shared.start()  # no-op when running; restarts it if a section stopped it
            yield self._shared
            return
        server = PrometheusServer(self.path(f"prometheus-{name}"))
        server.start()
        self.log(f"prometheus {server.url} (pid {server.pid})")
        try:
            yield server
        finally:
            server.stop()

    @contextmanager
    def fake_tree(self, name: str, tree: Tree, update_ms: float = 1.0) -> Iterator[FakeRaplTree]:
        """A fake tree on tmpfs in its own process; nice 10: it stands in for hardware, whose counters cost
        the CPU nothing, so it should not take a core from the client being measured when both want one."""
        root = self.tree_dir() / self.path(f"powercap-{name}").name
        fake = FakeRaplTree(
            root,
            tree.watts,
            self.path(f"powercap-{name}.log"),
            sockets=tree.sockets,
            psys_watts=tree.psys,
            update_ms=update_ms,
            nice=10,
        )
        fake.start(timeout=20)
        self.log(f"fake powercap {root} with {fake.zone_count()} zones, updated every {update_ms:g} ms")
        try:
            yield fake
        finally:
            fake.stop()


def prometheus_binary() -> str | None:
    return find_prometheus()
