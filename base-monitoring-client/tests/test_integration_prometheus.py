"""The real command against a real Prometheus 2.x on 127.0.0.1: exact sample counts.

Every test runs ``python -m monitoring_client`` with ``impls/counting_impl.py`` (written only from the seed's
contract), which records how many samples it handed over; the test then counts what Prometheus stored.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from testkit.client import MonitoringClient
from testkit.ports import free_port
from testkit.prometheus import PrometheusServer
from testkit.wait import wait_until

pytestmark = pytest.mark.integration

IMPL = Path(__file__).resolve().parent / "impls" / "counting_impl.py"
SUMMARY_RE = re.compile(r"stopped: received=(\d+) sent=(\d+) dropped=(\d+) \(([^)]*)\)")


class Client:
    """One ``monitoring-client`` process we started; signalled and waited on by its PID only."""

    def __init__(self, workdir: Path, write_url: str, **env: str) -> None:
        self.ledger = workdir / "ledger.txt"
        self.stderr_path = workdir / "client.stderr"
        self.health_port = free_port()
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("COUNT_", "MONITOR_", "REMOTE_"))}
        environ.update(
            MONITOR_IMPL=str(IMPL),
            REMOTE_WRITE_URL=write_url,
            COUNT_LEDGER=str(self.ledger),
            HEALTH_PORT=str(self.health_port),
            HOST_LABEL="itest",
            LOG_LEVEL="INFO",
            SCRAPE_INTERVAL_S="0.02",
            PUSH_INTERVAL_S="0.2",
            SELF_METRICS_INTERVAL_S="0.5",
            RETRY_BASE_S="0.1",
            RETRY_MAX_S="0.5",
        )
        environ.update(env)
        self.process = MonitoringClient(environ, self.stderr_path, cwd=workdir).start()

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def healthz(self) -> str:
        self.process.check_alive()
        return requests.get(f"http://127.0.0.1:{self.health_port}/healthz", timeout=2).text

    def self_metric(self, name: str) -> float:
        text = requests.get(f"http://127.0.0.1:{self.health_port}/metrics", timeout=2).text
        match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
        return float(match.group(1)) if match else 0.0

    def terminate(self, timeout: float = 20) -> int | None:
        return self.process.stop(timeout, must_exit=True)

    def emitted(self) -> int:
        return int(self.ledger.read_text())

    def summary(self) -> dict[str, int]:
        match = SUMMARY_RE.search(self.stderr)
        assert match, self.stderr
        out = {"received": int(match.group(1)), "sent": int(match.group(2))}
        if match.group(4) != "none":
            for part in match.group(4).split(", "):
                reason, count = part.split("=")
                out[reason] = int(count)
        return out

    def kill(self) -> None:
        self.process.kill()


@pytest.fixture
def start_client(tmp_path: Path) -> Iterator:
    started: list[Client] = []

    def start(write_url: str, **env: str) -> Client:
        client = Client(tmp_path, write_url, **env)
        started.append(client)
        return client

    yield start
    for client in started:
        client.kill()


def stored(prometheus: PrometheusServer, selector: str = 'count_impl_value{host="itest"}') -> int:
    return prometheus.count_samples(selector)


def test_normal_run_every_sample_arrives_once(prometheus: PrometheusServer, start_client) -> None:
    client = start_client(prometheus.write_url, COUNT_TICKS="40", COUNT_SERIES="3")
    wait_until(lambda: stored(prometheus) == 120, 30, message="120 samples in Prometheus")
    assert client.terminate() == 0, client.stderr
    assert client.emitted() == 120
    series = prometheus.raw_samples('count_impl_value{host="itest"}')
    assert len(series) == 3
    for key, samples in series.items():
        labels = dict(key)
        assert labels["source"] == "counting-impl"  # the implementation's SERVICE_NAME
        assert [v for _, v in samples] == [float(t) for t in range(1, 41)]
    # the client's own metrics arrived through the same remote write
    sent = prometheus.query('monitoring_client_samples_sent_total{host="itest"}')
    assert sent and 0 < float(sent[0]["value"][1]) <= 120
    assert client.summary()["sent"] == 120


def test_sigterm_mid_run_flushes_everything(prometheus: PrometheusServer, start_client) -> None:
    # A push interval far longer than the run: only the shutdown flush can deliver the samples.
    client = start_client(prometheus.write_url, COUNT_TICKS="0", PUSH_INTERVAL_S="30", SELF_METRICS_INTERVAL_S="0")
    wait_until(lambda: client.self_metric("monitoring_client_samples_received_total") >= 150, 30, message="150 in")
    assert stored(prometheus) == 0
    assert client.terminate() == 0, client.stderr
    emitted = client.emitted()
    assert emitted >= 150
    assert stored(prometheus) == emitted
    assert client.summary() == {"received": emitted, "sent": emitted}


def test_prometheus_restarted_mid_run_loses_nothing(prometheus: PrometheusServer, start_client) -> None:
    client = start_client(prometheus.write_url, COUNT_TICKS="0")
    wait_until(lambda: stored(prometheus) >= 30, 30, message="data flowing")
    prometheus.stop()
    # The outage lasts until the client has been retrying for 8 s (read from its own health endpoint).
    wait_until(
        lambda: (m := re.search(r"retrying for (\d+)s", client.healthz())) and int(m.group(1)) >= 8,
        60,
        interval=0.2,
        message="client retrying for 8 s",
    )
    buffered = client.self_metric("monitoring_client_buffered_payloads")
    assert buffered >= 20  # the outage's data is waiting, encoded
    prometheus.start()
    wait_until(
        lambda: (
            "last push accepted" in client.healthz() and client.self_metric("monitoring_client_buffered_payloads") == 0
        ),
        60,
        interval=0.2,
        message="backlog sent after the restart",
    )
    assert client.terminate() == 0, client.stderr
    emitted = client.emitted()
    assert stored(prometheus) == emitted
    summary = client.summary()
    assert summary == {"received": emitted, "sent": emitted}
    for samples in prometheus.raw_samples('count_impl_value{host="itest"}').values():
        values = [v for _, v in samples]
        assert values == [float(t) for t in range(1, len(values) + 1)]  # no gap, no duplicate, in order


def test_outage_beyond_the_buffer_drops_oldest_and_accounts_exactly(prometheus: PrometheusServer, start_client) -> None:
    client = start_client(prometheus.write_url, COUNT_TICKS="0", PUSH_INTERVAL_S="0.1", MAX_RETRY_BATCHES="10")
    wait_until(lambda: stored(prometheus) >= 30, 30, message="data flowing")
    prometheus.stop()
    wait_until(
        lambda: "buffer full" in client.healthz(), 60, interval=0.2, message="buffer overflowing during the outage"
    )
    prometheus.start()
    wait_until(
        lambda: client.self_metric("monitoring_client_buffered_payloads") == 0,
        60,
        interval=0.2,
        message="backlog sent after the restart",
    )
    assert client.terminate() == 0, client.stderr
    summary = client.summary()
    emitted = client.emitted()
    assert summary["buffer_full"] > 0
    assert stored(prometheus) == emitted - summary["buffer_full"]
    assert summary["received"] == emitted and summary["sent"] + summary["buffer_full"] == emitted
    assert "buffer full" in client.stderr  # said clearly, not silently


def run_to_the_last_tick(client: Client, prometheus: PrometheusServer, ticks: int) -> dict[str, int]:
    """Wait until the last tick of series 0 is stored, SIGTERM the client; its exit summary."""
    wait_until(
        lambda: (
            [float(r["value"][1]) for r in prometheus.query('count_impl_value{host="itest",series="0"}')]
            == [float(ticks)]
        ),
        30,
        message="the last tick stored",
    )
    assert client.terminate() == 0, client.stderr
    return client.summary()


def test_request_refused_with_400_loses_only_the_refused_sample(prometheus: PrometheusServer, start_client) -> None:
    # At tick 30 the implementation adds a sample three hours old; with MAX_SAMPLE_AGE_S off it reaches
    # Prometheus, which refuses the whole request that carries it (HTTP 400, out of bounds). The client
    # splits the request until only that sample is refused: every other sample arrives.
    client = start_client(prometheus.write_url, COUNT_TICKS="80", COUNT_ANCIENT_AT_TICK="30", MAX_SAMPLE_AGE_S="0")
    summary = run_to_the_last_tick(client, prometheus, 80)
    emitted = client.emitted()
    assert emitted == 80 * 3 + 1
    assert summary["rejected"] == 1, summary
    assert stored(prometheus) == emitted - 1, "every sample but the refused one arrived"
    assert stored(prometheus, "count_impl_ancient") == 0
    assert re.search(r"ERROR .*refused the sample count_impl_ancient\{.*HTTP 400: .*out of bounds", client.stderr), (
        client.stderr
    )
    assert "sending it in halves" in client.stderr
    for samples in prometheus.raw_samples('count_impl_value{host="itest"}').values():
        assert [v for _, v in samples] == [float(t) for t in range(1, 81)]


def test_samples_too_old_or_too_far_ahead_are_never_sent(prometheus: PrometheusServer, start_client) -> None:
    # A sample ten years ahead, once stored, would make Prometheus refuse every later request of every
    # client as out of bounds; one three hours old would make it refuse its whole request. Neither is sent.
    client = start_client(prometheus.write_url, COUNT_TICKS="80", COUNT_ANCIENT_AT_TICK="30", COUNT_FUTURE_AT_TICK="40")
    summary = run_to_the_last_tick(client, prometheus, 80)
    assert client.emitted() == 80 * 3 + 2
    assert (summary.get("too_old"), summary.get("too_far_ahead"), summary.get("rejected")) == (1, 1, None), summary
    assert stored(prometheus) == 80 * 3
    assert stored(prometheus, "count_impl_future") == stored(prometheus, "count_impl_ancient") == 0
    assert "MAX_SAMPLE_AHEAD_S=60" in client.stderr and "MAX_SAMPLE_AGE_S=3600" in client.stderr


def test_answer_lost_after_prometheus_stored_the_request(prometheus: PrometheusServer, start_client) -> None:
    # The proxy forwards the first request to Prometheus (which stores it) but answers only after the
    # client gave up; the retry is then refused as out of order. Nothing is lost, duplicated or miscounted.
    from testkit.fault_proxy import FaultProxy, slow

    with FaultProxy(prometheus.url) as proxy:
        proxy.enqueue(slow(2.0, forward=True))
        client = start_client(proxy.write_url, COUNT_TICKS="60", REQUEST_TIMEOUT_S="0.5")
        wait_until(lambda: stored(prometheus) == 180, 30, message="all 180 samples")
        assert client.terminate() == 0, client.stderr
        assert proxy.count("slow") == 1
    assert client.emitted() == 180 and stored(prometheus) == 180
    assert client.summary() == {"received": 180, "sent": 180}
    for samples in prometheus.raw_samples('count_impl_value{host="itest"}').values():
        assert [v for _, v in samples] == [float(t) for t in range(1, 61)]
