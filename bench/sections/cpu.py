"""CPU per sampling tick of the whole client, measured at the same time as the seed's method.

At each rate, cpu-pyjoules runs as a real ``monitoring-client`` process with the settings a new user gets
(only the receiver URL, the fake tree, the sampling interval and a host label are set; logging at its
default INFO), pushing to a real Prometheus; *at the same time* the seed's method runs on its own
(``python -m bench.seed_alone``: pyJoules ``measure_energy`` around a sleep on every tick and its records
built, nothing pushed; see ``bench/seed_impl.py``). Both read the same fake tree (one socket: package-0,
core, uncore, dram; counters rewritten every millisecond by a separate process). After both run and a
warm-up, the CPU of every thread of each process (and of its children: cpu-pyjoules samples in a child
above 200 Hz) is read from ``/proc/<pid>/task/*/schedstat`` (nanoseconds) over the same window, with the
context switches from ``/proc/<pid>/task/*/status``. The client's ticks are the samples of one of its series
that Prometheus stored with a timestamp inside the window (read after the client stopped and flushed); the
seed's are its own measurements inside the window. So the figure is the whole client's cost per tick:
sampling, processing, encoding, pushing, self-metrics, every wake-up. Each window is repeated; the tables
give the minimum, median and maximum, and the host's steal and the rest of the machine's load during each
window, because a shared VM's figures move with what else runs on it. gpu-nvml (on the stand-in NVML
library ``gpu_nvml.fake_nvml``, one GPU) and jetson-ina3221 (on a fake Orin NX tree, three rails) are
measured the same way, each beside the seed's method on the RAPL tree: the same baseline for every client.

The idle row runs the client with an implementation that produces nothing (``bench/idle_impl.py``): the
base client's own cost per second when there is nothing to send. The start-up row is the CPU a new client
(cpu-pyjoules at 10 Hz) uses from its start to its first push stored in Prometheus: interpreter, imports,
configuration, discovery, first samples and push.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from bench import REPO
from bench.context import CPU_TREE, Context
from bench.measure import count_stored, fmt
from bench.procfs import MachineLoad, ProcessUsage, cpu_times
from bench.report import Section, Table
from bench.sections.common import METHODS, Method, make_client
from testkit.fake_rapl import FakeRaplTree
from testkit.ports import free_port
from testkit.process import ManagedProcess
from testkit.prometheus import PrometheusServer

# A client with nothing to send; its tick series is one of its own metrics (pushed every few seconds).
IDLE = Method("idle", "idle", REPO / "bench" / "idle_impl.py", '{__name__="monitoring_client_samples_sent_total"}', ())
JETSON_METRICS = ("power_watts", "energy_joules_total", "voltage_volts", "current_amperes")
# The targets: at least this many times less CPU per tick than the seed's method, at 10 and 100 Hz,
# and at most this share of one core at 10 Hz.
TARGET_RATIO = 10.0
TARGET_CORE_SHARE_10HZ = 0.002


@dataclass
class Window:
    """One measuring window of a side-by-side run."""

    seconds: float
    ours_us: float  # CPU per tick, µs
    seed_us: float
    ours_switches: float  # context switches per tick
    seed_switches: float
    ours_ticks: int
    seed_ticks: int
    ours_core_share: float  # fraction of one core
    steal: float  # fraction of the machine's CPU time the hypervisor took
    other_cores: float  # everything else on the machine, in cores (fake tree and Prometheus included)

    @property
    def ratio(self) -> float:
        return self.seed_us / self.ours_us if self.ours_us > 0 else float("nan")


def spread(values: Sequence[float], digits: int = 1) -> str:
    """``median (min-max)`` of the repetitions, or the single value."""
    if len(values) == 1:
        return fmt(values[0], digits)
    return f"{fmt(statistics.median(values), digits)} ({fmt(min(values), digits)}-{fmt(max(values), digits)})"


def _as_new_user(run: object) -> None:
    """A new user's settings: the harness's client minus its quieter logging (INFO is the default), with
    its health endpoint on as in the image (HEALTH_PORT, on a free loopback port here)."""
    env = run.client.env  # type: ignore[attr-defined]
    if env is not None:
        env.pop("LOG_LEVEL", None)
        env["HEALTH_PORT"] = str(free_port())


def _side_by_side(
    ctx: Context, prom: PrometheusServer, fake: FakeRaplTree, method: Method, rate: float, rep: int
) -> Window:
    plan = ctx.plan
    host = f"{method.key}-{rate:g}hz-{rep}"
    client_run = make_client(ctx, prom, fake, method, host, rate)
    _as_new_user(client_run)
    seed_ticks_file = ctx.path(f"{host}-seed.json")
    seed = ManagedProcess(
        [sys.executable, "-m", "bench.seed_alone", f"{1.0 / rate:g}", str(seed_ticks_file)],
        ctx.path(f"{host}-seed.log"),
        name=f"seed method {rate:g} Hz",
        env={**(client_run.client.env or {}), "BENCH_SEED_DECORATE": "per_tick"},
        cwd=REPO,
    ).start()
    try:
        with client_run.running() as run:
            time.sleep(plan.cpu_warmup_s)
            pids = (run.client.require_pid(), seed.require_pid(), fake.require_pid())
            m0, t0, w0 = cpu_times(), time.monotonic_ns(), time.time()
            u0 = [ProcessUsage.read(pid) for pid in pids]
            time.sleep(plan.cpu_window_s)
            u1 = [ProcessUsage.read(pid) for pid in pids]
            m1, t1, w1 = cpu_times(), time.monotonic_ns(), time.time()
    finally:
        seed_rc = seed.stop()
    if client_run.rc != 0 or seed_rc != 0:
        raise RuntimeError(f"{host}: client exited {client_run.rc}, seed method {seed_rc}; logs in {ctx.workdir}")
    seconds = (t1 - t0) / 1e9
    ours, theirs, tree = (after.since(before) for before, after in zip(u0, u1, strict=True))
    ours_ticks = count_stored(prom, method.selector(host), w1 - w0, at=w1)
    seed_ticks = sum(1 for t in json.loads(seed_ticks_file.read_text())["t_ns"] if t0 <= t < t1)
    load = MachineLoad.between(m0, m1)
    return Window(
        seconds=seconds,
        ours_us=ours.cpu_ns / 1e3 / ours_ticks,
        seed_us=theirs.cpu_ns / 1e3 / seed_ticks,
        ours_switches=ours.switches / ours_ticks,
        seed_switches=theirs.switches / seed_ticks,
        ours_ticks=ours_ticks,
        seed_ticks=seed_ticks,
        ours_core_share=ours.cpu_ns / 1e9 / seconds,
        steal=load.steal_fraction,
        other_cores=(load.busy_s - (ours.cpu_ns + theirs.cpu_ns + tree.cpu_ns) / 1e9) / seconds,
    )


def _idle(ctx: Context, prom: PrometheusServer, fake: FakeRaplTree, rep: int) -> tuple[float, float]:
    """CPU µs per second and context switches per second of a client with nothing to send."""
    client_run = make_client(ctx, prom, fake, IDLE, f"cpu-idle-{rep}", 10)
    _as_new_user(client_run)
    with client_run.running() as run:  # returns once its first push (of its own metrics) is stored
        time.sleep(ctx.plan.cpu_warmup_s)
        pid = run.client.require_pid()
        t0, u0 = time.monotonic_ns(), ProcessUsage.read(pid)
        time.sleep(ctx.plan.cpu_window_s)
        used, t1 = ProcessUsage.read(pid).since(u0), time.monotonic_ns()
    seconds = (t1 - t0) / 1e9
    return used.cpu_ns / 1e3 / seconds, used.switches / seconds


def _device_methods(ctx: Context) -> tuple[list[Method], list[str]]:
    """gpu-nvml on the stand-in NVML library (one GPU with an energy counter and instant power) and
    jetson-ina3221 on a fake Orin NX tree (three rails), as the clients to run beside the seed's method; and
    a note for each that cannot run here (no C compiler for the stand-in library)."""
    from gpu_nvml.fake_nvml import FakeGpu, FakeNvml, FakeNvmlError
    from jetson_ina3221.fake_sysfs import FakeJetson

    methods, notes = [], []
    try:
        nvml = FakeNvml(ctx.tree_dir() / "nvml", [FakeGpu("NVIDIA A100-SXM4-80GB", 250.0)]).build()
    except FakeNvmlError as exc:
        notes.append(f"gpu-nvml not measured: the stand-in NVML library could not be built ({exc}).")
    else:
        methods.append(
            Method(
                "gpu-nvml",
                "gpu-nvml",
                REPO / "gpu-nvml" / "monitor_impl.py",
                '{__name__="nvml_power_watts"}',
                ('{__name__="nvml_power_watts"}', '{__name__="nvml_energy_joules_total"}'),
                dict(nvml.env),
            )
        )
    jetson = FakeJetson(ctx.tree_dir() / "jetson", "orin-nx").build()
    methods.append(
        Method(
            "jetson-ina3221",
            "jetson-ina3221",
            REPO / "jetson-ina3221" / "monitor_impl.py",
            '{__name__="jetson_power_watts",component="VDD_IN"}',
            tuple(f'{{__name__="jetson_{m}"}}' for m in JETSON_METRICS),
            {"JETSON_SYSFS_ROOT": str(jetson.root)},
        )
    )
    return methods, notes


def _startup(ctx: Context, prom: PrometheusServer, fake: FakeRaplTree, rep: int) -> float:
    """CPU ms of a new client (a new user's settings, 10 Hz) from its start to its first push stored.

    Prometheus is asked every few milliseconds whether the client's first sample is there; the client's
    CPU is read then (every thread, from schedstat), so the figure includes interpreter start-up, imports,
    configuration, the implementation's discovery, the first samples and the first push, plus a few ms of
    the client's steady work (far under 1% of the figure at 10 Hz)."""
    client_run = make_client(ctx, prom, fake, METHODS["ours"], f"cpu-startup-{rep}", 10)
    _as_new_user(client_run)
    client = client_run.client
    selector = client_run.method.selector(client.host)
    client.start()
    try:
        pid = client.require_pid()
        deadline = time.monotonic() + 60
        while count_stored(prom, selector, 600) == 0:
            client.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"no push from the start-up client in 60 s; log in {ctx.workdir}")
            time.sleep(0.005)
        used = ProcessUsage.read(pid).since(ProcessUsage())
    finally:
        rc = client.stop()
    if rc != 0:
        raise RuntimeError(f"the start-up client exited {rc}; log in {ctx.workdir}")
    return used.cpu_ns / 1e6


def run(ctx: Context) -> Section:
    plan = ctx.plan
    windows: dict[tuple[str, float], list[Window]] = {}
    runs = Table(
        "Windows",
        [
            "client",
            "rate",
            "window",
            "ours: ticks",
            "ours: µs/tick",
            "seed: ticks",
            "seed: µs/tick",
            "seed / ours",
            "ours: % of a core",
            "switches/tick ours / seed",
            "host steal",
            "other load (cores)",
        ],
    )

    def measure(fake: FakeRaplTree, prom: PrometheusServer, method: Method, rate: float) -> None:
        for rep in range(1, plan.cpu_repeats + 1):
            w = _side_by_side(ctx, prom, fake, method, rate, rep)
            windows.setdefault((method.label, rate), []).append(w)
            ctx.log(
                f"cpu: {method.label} {rate:g} Hz #{rep}: ours {w.ours_us:.1f} µs/tick, seed {w.seed_us:.1f},"
                f" ratio {w.ratio:.1f}, steal {100 * w.steal:.1f}%"
            )
            runs.rows.append(
                [
                    method.label,
                    f"{rate:g} Hz",
                    str(rep),
                    str(w.ours_ticks),
                    fmt(w.ours_us),
                    str(w.seed_ticks),
                    fmt(w.seed_us),
                    f"{w.ratio:.1f}x",
                    fmt(100 * w.ours_core_share, 3),
                    f"{fmt(w.ours_switches, 2)} / {fmt(w.seed_switches, 2)}",
                    f"{100 * w.steal:.1f}%",
                    fmt(w.other_cores, 2),
                ]
            )

    with ctx.fake_tree("cpu", CPU_TREE, update_ms=1.0) as fake, ctx.prometheus("cpu") as prom:
        for rate in plan.cpu_rates:
            measure(fake, prom, METHODS["ours"], rate)
        devices, device_notes = _device_methods(ctx)
        for method in devices:
            for rate in plan.device_rates:
                measure(fake, prom, method, rate)
        idle = [_idle(ctx, prom, fake, rep) for rep in range(1, plan.cpu_repeats + 1)]
        startup = [_startup(ctx, prom, fake, rep) for rep in range(1, plan.cpu_repeats + 1)]
    summary = Table(
        "CPU per sampling tick, whole client vs the seed's method at the same time (µs; median (min-max))",
        [
            "client",
            "rate",
            "client: µs/tick",
            "seed method: µs/tick",
            "seed / client",
            "client: % of a core",
            "switches/tick client",
            "switches/tick seed",
            "host steal (max)",
            "other load (cores, median)",
        ],
    )
    for (label, rate), ws in windows.items():
        summary.rows.append(
            [
                label,
                f"{rate:g} Hz",
                spread([w.ours_us for w in ws]),
                spread([w.seed_us for w in ws]),
                spread([w.ratio for w in ws]) + " x",
                spread([100 * w.ours_core_share for w in ws], 3),
                spread([w.ours_switches for w in ws], 2),
                spread([w.seed_switches for w in ws], 2),
                f"{100 * max(w.steal for w in ws):.1f}%",
                fmt(statistics.median(w.other_cores for w in ws), 2),
            ]
        )
    empty = [""] * 7
    summary.rows.append(
        [
            "idle (nothing to send)",
            "",
            spread([us for us, _ in idle]) + " µs/s",
            "",
            "",
            spread([us / 1e4 for us, _ in idle], 3),
            spread([sw for _, sw in idle], 2) + " /s",
            "",
            "",
            "",
        ]
    )
    summary.rows.append(["start-up (to the first push)", "10 Hz", spread(startup) + " ms of CPU", *empty])
    summary.notes.append(
        f"{plan.cpu_repeats} window(s) of {plan.cpu_window_s:g} s per client and rate, each after"
        f" {plan.cpu_warmup_s:g} s of warm-up, the client and the seed's method measured over the same seconds;"
        " the seed / client ratio is taken window by window. The seed's method reads the fake RAPL tree in"
        " every row: it is the same baseline for the device clients (gpu-nvml on the stand-in NVML library,"
        " one GPU; jetson-ina3221 on a fake Orin NX, three rails). At 1 kHz two readings in the same"
        " wall-clock millisecond become one sample, so ours is, if anything, overstated. Host steal and the"
        " other load are those of the machine during the window."
    )
    summary.notes.extend(device_notes)
    targets: list[tuple[str, str, bool | None]] = []
    for label, rate in [("cpu-pyjoules", 10.0), ("cpu-pyjoules", 100.0), ("gpu-nvml", 10.0), ("jetson-ina3221", 10.0)]:
        ws = windows.get((label, rate))
        if ws:
            ratios = [w.ratio for w in ws]
            targets.append(
                (
                    f">= {TARGET_RATIO:g}x less CPU per tick than the seed's method, {label} at {rate:g} Hz"
                    " (median window)",
                    spread(ratios) + "x",
                    statistics.median(ratios) >= TARGET_RATIO,
                )
            )
        if ws and rate == 10.0:
            shares = [w.ours_core_share for w in ws]
            targets.append(
                (
                    f"<= {100 * TARGET_CORE_SHARE_10HZ:g}% of one core, {label} at 10 Hz (median window)",
                    spread([100 * s for s in shares], 3) + "%",
                    statistics.median(shares) <= TARGET_CORE_SHARE_10HZ,
                )
            )
    return Section("cpu", "CPU per sampling tick", __doc__.split("\n", 1)[1], [summary, runs], targets)
