"""Pieces the client-running sections share: which implementation a method is, waiting for data."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.measure import count_stored
from bench.processes import CPU_IMPL, SEED_IMPL, Client


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


METHODS = {
    "ours": Method(
        "ours",
        "cpu-pyjoules",
        CPU_IMPL,
        '{__name__="pyjoules_remote_write_power_watts",zone="intel-rapl:0"}',
        tuple(f'{{__name__="pyjoules_remote_write_{m}"}}' for m in ("energy_uj", "power_watts", "energy_joules_total")),
    ),
    "ours-rt": Method(
        "ours-rt",
        "cpu-pyjoules, SAMPLER_REALTIME=true",
        CPU_IMPL,
        '{__name__="pyjoules_remote_write_power_watts",zone="intel-rapl:0"}',
        tuple(f'{{__name__="pyjoules_remote_write_{m}"}}' for m in ("energy_uj", "power_watts", "energy_joules_total")),
        {"SAMPLER_REALTIME": "true"},
    ),
    "seed": Method(
        "seed",
        "seed method (measure_energy per tick)",
        SEED_IMPL,
        '{__name__="pyjoules_remote_write_energy_uj",component="package_0"}',
        ('{__name__="pyjoules_remote_write_energy_uj"}',),
        {"BENCH_SEED_DECORATE": "per_tick"},
    ),
    "seed-once": Method(
        "seed-once",
        "seed method, decorator built once",
        SEED_IMPL,
        '{__name__="pyjoules_remote_write_energy_uj",component="package_0"}',
        ('{__name__="pyjoules_remote_write_energy_uj"}',),
        {"BENCH_SEED_DECORATE": "once"},
    ),
}


def wait_for_data(prom: Any, clients: list[Client], selectors: list[str], timeout: float) -> None:
    """Wait until every client has at least one sample in Prometheus; fail early if a client died."""
    deadline = time.monotonic() + timeout
    pending = list(zip(clients, selectors))
    while pending:
        for client in [c for c, _ in pending]:
            if not client.alive():
                raise RuntimeError(f"client pid {client.pid} exited early; log {client.log}:\n{client.log_tail()}")
        if len(pending) == 1:
            still = [(c, s) for c, s in pending if count_stored(prom, s, 600) == 0]
        else:  # one query for all: which hosts have data
            hosts = count_stored(prom, '{__name__="pyjoules_remote_write_power_watts"}', 600, by="host")
            still = [(c, s) for c, s in pending if hosts.get(c.env["HOST_LABEL"], 0) == 0]
        pending = still
        if not pending:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{len(pending)} client(s) sent no data within {timeout:g}s, e.g. log {pending[0][0].log}"
            )
        time.sleep(0.2)
