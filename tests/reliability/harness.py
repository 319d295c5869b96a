"""Run the real ``monitoring-client`` against a real Prometheus and count what arrived.

Shared by the pytest suite (``test_reliability.py``) and the report generator (``bench/reliability.py``), so the
figures in docs/RELIABILITY.md come from exactly the code the tests run.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testkit.client import MonitoringClient, client_command
from testkit.prometheus import PrometheusServer
from testkit.wait import wait_until

HERE = Path(__file__).resolve().parent
SEQ_IMPL = HERE / "seq_impl.py"
METRIC = "reliability_sequence"

__all__ = ["METRIC", "SEQ_IMPL", "SeqRun", "Tally", "client_command", "first_time"]


@dataclass
class Tally:
    """What a scenario produced versus what Prometheus holds, per sequence number."""

    produced: int
    stored: int
    lost: int
    duplicated: int
    missing: dict[str, list[int]] = field(default_factory=dict)
    out_of_order_series: list[str] = field(default_factory=list)


class SeqRun:
    """The sequence implementation run by the real client, plus the means to count its samples."""

    def __init__(
        self,
        workdir: Path,
        prometheus: PrometheusServer,
        *,
        series: int = 3,
        scrape_interval_s: float = 0.05,
        push_interval_s: float = 0.5,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.prometheus = prometheus
        self.series = series
        self.scrape_interval_s = scrape_interval_s
        self.push_interval_s = push_interval_s
        self.ledger = self.workdir / "ledger.json"
        self.extra_env = dict(env or {})
        self.clients: list[MonitoringClient] = []

    # -- processes ---------------------------------------------------------------------------------
    def client_env(self, url: str, **overrides: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SEQ_", "SPOOL_"))}
        env.update(
            {
                "REMOTE_WRITE_URL": url,
                "MONITOR_IMPL": str(SEQ_IMPL),
                "SCRAPE_INTERVAL_S": str(self.scrape_interval_s),
                "PUSH_INTERVAL_S": str(self.push_interval_s),
                "HOST_LABEL": "reliability-host",
                "LOG_LEVEL": "INFO",
                "SELF_METRICS_INTERVAL_S": "1",
                "PYTHONUNBUFFERED": "1",
                "SEQ_LEDGER": str(self.ledger),
                "SEQ_SERIES": str(self.series),
                "SEQ_METRIC": METRIC,
            }
        )
        env.update(self.extra_env)
        env.update(overrides)
        return env

    def start_client(self, url: str | None = None, **overrides: str) -> MonitoringClient:
        name = f"client{len(self.clients) + 1}"
        env = self.client_env(url or self.prometheus.write_url, **overrides)
        client = MonitoringClient(env, self.workdir / f"{name}.log", name=name, cwd=self.workdir)
        self.clients.append(client)
        client.start()
        return client

    def cleanup(self) -> None:
        """Make sure nothing this run started outlives it."""
        for client in self.clients:
            client.kill()

    # -- ledger ------------------------------------------------------------------------------------
    def ledger_state(self) -> dict[str, int]:
        try:
            data = json.loads(self.ledger.read_text())
            return {"ticks": int(data.get("ticks", 0)), "bad": int(data.get("bad", 0))}
        except (OSError, ValueError):
            return {"ticks": 0, "bad": 0}

    def ticks(self) -> int:
        return self.ledger_state()["ticks"]

    def wait_ticks(self, at_least: int, client: MonitoringClient, timeout: float = 60) -> int:
        def enough() -> int:
            client.check_alive()
            n = self.ticks()
            return n if n >= at_least else 0

        return wait_until(enough, timeout, interval=0.05, message=f"{at_least} ticks produced")

    def hold(self, seconds: float, client: MonitoringClient | None = None) -> None:
        """Keep a fault in place for ``seconds`` (the fault's duration, not a wait for a condition),
        checking that the client stays alive meanwhile."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if client is not None:
                client.check_alive()
            time.sleep(min(0.5, left))

    # -- Prometheus --------------------------------------------------------------------------------
    def stored(self) -> dict[str, list[tuple[int, float]]]:
        """Stored (timestamp_ms, value) samples per series label ``k``."""
        out: dict[str, list[tuple[int, float]]] = {}
        for key, samples in self.prometheus.raw_samples(METRIC, window="2h").items():
            out[dict(key).get("k", "?")] = samples
        return out

    def wait_stored_through(
        self,
        seq: int,
        timeout: float,
        client: MonitoringClient | None = None,
        excused: Mapping[str, set[int]] | None = None,
    ) -> float:
        """Wait until every series holds every sequence number up to ``seq`` (except ``excused`` ones);
        return the monotonic time at which that was first seen."""
        excused = excused or {}

        def complete() -> float:
            if client is not None:
                client.check_alive()
            stored = self.stored()
            if len(stored) < self.series:
                return 0.0
            for k, samples in stored.items():
                values = {int(v) for _, v in samples}
                need = set(range(1, seq + 1)) - set(excused.get(k, set()))
                if not need <= values:
                    return 0.0
            return time.monotonic()

        try:
            return wait_until(complete, timeout, interval=0.1, message=f"all samples up to #{seq} stored")
        except AssertionError as exc:
            missing = {k: v[:20] for k, v in self.tally().missing.items()}
            log = client.log_tail() if client is not None else ""
            raise AssertionError(f"{exc}; missing (first 20 per series): {missing}\nclient log:\n{log}") from None

    def tally(self, allowed_missing: Mapping[str, set[int]] | None = None) -> Tally:
        """Compare the ledger with Prometheus: counts, missing numbers per series, duplicates, ordering."""
        produced_ticks = self.ticks()
        stored = self.stored()
        total_stored = lost = dup = 0
        missing: dict[str, list[int]] = {}
        unordered: list[str] = []
        for i in range(self.series):
            samples = stored.get(str(i), [])
            values = [int(v) for _, v in samples]
            total_stored += len(values)
            dup += len(values) - len(set(values))
            gone = sorted(set(range(1, produced_ticks + 1)) - set(values))
            if gone:
                missing[str(i)] = gone
            lost += len(gone)
            timestamps = [ts for ts, _ in samples]
            if any(b <= a for a, b in itertools.pairwise(timestamps)):
                unordered.append(str(i))
        return Tally(
            produced=produced_ticks * self.series,
            stored=total_stored,
            lost=lost,
            duplicated=dup,
            missing=missing,
            out_of_order_series=unordered,
        )

    def self_metric(self, name: str, by: str | None = None) -> dict[str, float]:
        """Latest value of one of the client's self-metrics, summed by label ``by`` (or under "")."""
        out: dict[str, float] = {}
        for series in self.prometheus.query(f"last_over_time({name}[2h])"):
            key = series["metric"].get(by, "") if by else ""
            out[key] = out.get(key, 0.0) + float(series["value"][1])
        return out

    def peak(self, name: str) -> float | None:
        """Highest value a self-metric gauge reached during the run (None if never pushed)."""
        result = self.prometheus.query(f"max(max_over_time({name}[2h]))")
        return float(result[0]["value"][1]) if result else None


def first_time(predicate: Callable[[], Any], timeout: float, message: str) -> float:
    """Wait for ``predicate`` and return the monotonic time when it first held."""
    wait_until(predicate, timeout, interval=0.05, message=message)
    return time.monotonic()
