"""Pieces the client-running sections share: which implementation a method is, how a client is configured
and run (testkit's ``MonitoringClient``, stopped by PID), waiting for its data in Prometheus."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench import REPO
from bench.context import Context
from bench.measure import count_stored
from testkit.client import MonitoringClient
from testkit.fake_rapl import FakeRaplTree
from testkit.prometheus import PrometheusServer
from testkit.wait import wait_until

# BENCH_CPU_IMPL points the benchmarks at another checkout of cpu-pyjoules (to compare a change).
CPU_IMPL = Path(os.environ.get("BENCH_CPU_IMPL", REPO / "cpu-pyjoules" / "monitor_impl.py")).resolve()
SEED_IMPL = REPO / "bench" / "seed_impl.py"
PROBE_IMPL = REPO / "bench" / "probe_impl.py"


@dataclass(frozen=True)
class Method:
    """A way of sampling RAPL inside the same base client, and a series that has one sample per tick."""

    key: str
    label: str
    impl: Path
    tick_selector: str  # PromQL selector (without host) of one series with one sample per tick
    data_selectors: tuple[str, ...]  # every data series of the implementation, one selector per name (no host)
    env: dict[str, str] = field(default_factory=dict)

    def selector(self, host: str) -> str:
        """The tick series of ``host``."""
        return _with(self.tick_selector, f'host="{host}"')

    def data(self, matcher: str) -> list[str]:
        """Every data series, restricted by a label matcher such as ``host="a"``."""
        return [_with(s, matcher) for s in self.data_selectors]


def _with(selector: str, matcher: str) -> str:
    return selector[:-1] + "," + matcher + "}"


_OURS_TICK = '{__name__="pyjoules_remote_write_power_watts",zone="intel-rapl:0"}'
_OURS_DATA = tuple(
    f'{{__name__="pyjoules_remote_write_{m}"}}' for m in ("energy_uj", "power_watts", "energy_joules_total")
)
_SEED_TICK = '{__name__="pyjoules_remote_write_energy_uj",component="package_0"}'
_SEED_DATA = ('{__name__="pyjoules_remote_write_energy_uj"}',)

METHODS = {
    "ours": Method("ours", "cpu-pyjoules", CPU_IMPL, _OURS_TICK, _OURS_DATA),
    "ours-rt": Method(
        "ours-rt", "cpu-pyjoules, SAMPLER_REALTIME=true", CPU_IMPL, _OURS_TICK, _OURS_DATA, {"SAMPLER_REALTIME": "true"}
    ),
    "seed": Method(
        "seed",
        "seed method (measure_energy per tick)",
        SEED_IMPL,
        _SEED_TICK,
        _SEED_DATA,
        {"BENCH_SEED_DECORATE": "per_tick"},
    ),
    "seed-once": Method(
        "seed-once",
        "seed method, decorator built once",
        SEED_IMPL,
        _SEED_TICK,
        _SEED_DATA,
        {"BENCH_SEED_DECORATE": "once"},
    ),
}


def client_env(
    *,
    write_url: str,
    impl: Path,
    powercap_root: Path,
    interval_s: float,
    host: str,
    probe_out: Path | None = None,
    extra: Mapping[str, str] | None = None,
    push_interval_s: float | None = None,
    plan_env: Iterable[tuple[str, str]] = (),
) -> dict[str, str]:
    """Environment of a client run: the implementation (optionally behind the probe) and its settings."""
    env = dict(os.environ)
    env.update(
        REMOTE_WRITE_URL=write_url,
        SCRAPE_INTERVAL_S=f"{interval_s:g}",
        POWERCAP_ROOT=str(powercap_root),
        HOST_LABEL=host,
        LOG_LEVEL="WARNING",
    )
    if probe_out is not None:
        env.update(MONITOR_IMPL=str(PROBE_IMPL), BENCH_INNER_IMPL=str(impl), BENCH_PROBE_OUT=str(probe_out))
    else:
        env["MONITOR_IMPL"] = str(impl)
    if push_interval_s is not None:
        env["PUSH_INTERVAL_S"] = f"{push_interval_s:g}"
    env.update(plan_env)
    if extra:
        env.update(extra)
    return env


@dataclass
class ClientRun:
    """One benchmarked client of a method: the process, where its probe writes (if behind the probe), the
    Prometheus it pushes to, and its exit status once stopped."""

    client: MonitoringClient
    method: Method
    prom: PrometheusServer
    probe: Path | None = None
    rc: int | None = None

    def probe_file(self, kind: str) -> Path:
        """The probe's ``ticks``, ``records`` or ``threads`` JSON file."""
        assert self.probe is not None, "this client runs without the probe"
        return self.probe.with_name(f"{self.probe.name}.{kind}.json")

    @contextmanager
    def running(self) -> Iterator[ClientRun]:
        """Start the client, wait until Prometheus holds its first tick; SIGTERM it at the end (``rc``)."""
        self.client.start()
        try:
            wait_for_data(self.prom, [self.client], [self.method.selector(self.client.host)], timeout=60)
            yield self
        finally:
            self.rc = self.client.stop()


def make_client(
    ctx: Context,
    prom: PrometheusServer,
    fake: FakeRaplTree,
    method: Method,
    host: str,
    rate_hz: float,
    *,
    probe: bool = False,
) -> ClientRun:
    """A client of ``method`` sampling ``fake`` at ``rate_hz`` into ``prom`` (not started yet)."""
    probe_out = ctx.path(f"{host}-probe") if probe else None
    env = client_env(
        write_url=prom.write_url,
        impl=method.impl,
        powercap_root=fake.root,
        interval_s=1.0 / rate_hz,
        host=host,
        probe_out=probe_out,
        extra=method.env,
        push_interval_s=ctx.plan.push_interval_s,
        plan_env=ctx.plan.client_env,
    )
    client = MonitoringClient(env, ctx.path(f"{host}.log"), name=host, cwd=REPO)
    return ClientRun(client, method, prom, probe_out)


def stop_all(clients: Sequence[MonitoringClient], timeout: float = 20.0) -> list[int | None]:
    """SIGTERM every client first, then wait for each: N clients shut down in parallel, not in series."""
    for client in clients:
        client.terminate()
    return [client.stop(timeout) for client in clients]


def wait_for_data(
    prom: PrometheusServer, clients: list[MonitoringClient], selectors: list[str], timeout: float
) -> None:
    """Wait until every client has at least one sample in Prometheus; fail at once if a client died."""
    pending = list(zip(clients, selectors, strict=True))

    def all_pushing() -> bool:
        nonlocal pending
        for client, _ in pending:
            client.check_alive()
        if len(pending) == 1:
            pending = [(c, s) for c, s in pending if count_stored(prom, s, 600) == 0]
        else:  # one query for all: which hosts have data
            hosts = count_stored(prom, '{__name__="pyjoules_remote_write_power_watts"}', 600, by="host")
            pending = [(c, s) for c, s in pending if hosts.get(c.host, 0) == 0]
        return not pending

    wait_until(all_pushing, timeout, interval=0.2, message=f"first samples of {len(clients)} client(s) stored")
