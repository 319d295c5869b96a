"""End to end: the real ``monitoring-client`` with gpu-nvml on the stand-in NVML library, a real Prometheus.

Three stand-in GPUs: one with an energy counter and the instant power field, one without an energy counter
(integrated), one with a counter but only nvmlDeviceGetPowerUsage. Prometheus must hold each GPU's power
at the watts it draws and ``energy_joules_total`` rising at that rate within 1%, through counter restarts,
never negative; a GPU that falls off the bus stops its series while the others go on and /healthz says so.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import requests

from gpu_nvml.fake_nvml import FakeGpu, FakeNvml
from testkit.client import MonitoringClient
from testkit.ports import free_port
from testkit.prometheus import PrometheusServer
from testkit.wait import wait_until

pytestmark = pytest.mark.integration

IMPL = Path(__file__).resolve().parents[1] / "monitor_impl.py"
POWER = "nvml_power_watts"
ENERGY = "nvml_energy_joules_total"
LABELS = {"__name__", "component", "zone", "method", "index", "model", "source", "host"}
OWN_VARIABLES = ("NVML_DEVICES", "METRIC_PREFIX", "MAX_GPU_POWER_W", "SERVICE_LABEL", "HEALTH_PORT")


def three_gpus() -> list[FakeGpu]:
    return [
        FakeGpu("NVIDIA A100-SXM4-80GB", 250.0),
        FakeGpu("Tesla P4", 60.0, energy=False),
        FakeGpu("Tesla T4", 70.5, instant=False),
    ]


def start_client(fake: FakeNvml, prometheus: PrometheusServer, workdir: Path, **extra: str) -> MonitoringClient:
    env = {k: v for k, v in os.environ.items() if k not in OWN_VARIABLES}
    env.update(fake.env)
    env.update(
        MONITOR_IMPL=str(IMPL),
        REMOTE_WRITE_URL=prometheus.write_url,
        SCRAPE_INTERVAL_S="0.1",
        PUSH_INTERVAL_S="1",
        HOST_LABEL="test-host",
    )
    env.update(extra)
    return MonitoringClient(env, workdir / "gpu-nvml.log", name="gpu-nvml").start()


def by_zone(prometheus: PrometheusServer, metric: str) -> dict[str, list[tuple[int, float]]]:
    out = {}
    for key, samples in prometheus.raw_samples(metric).items():
        labels = dict(key)
        assert set(labels) == LABELS, labels
        assert labels["source"] == "gpu-nvml" and labels["host"] == "test-host" and labels["component"] == "gpu"
        out[labels["zone"]] = samples
    return out


def latest_ms(prometheus: PrometheusServer, metric: str, zone: str) -> float:
    return max((t for s in prometheus.raw_samples(f'{metric}{{zone="{zone}"}}').values() for t, _ in s), default=0)


def test_power_and_energy_match_the_drawn_watts_through_counter_restarts(prometheus, make_fake_nvml, tmp_path):
    fake = make_fake_nvml(three_gpus())
    uuids = [gpu.uuid for gpu in fake.gpus]
    client = start_client(fake, prometheus, tmp_path)
    try:
        client.wait_for_samples(prometheus, f'{ENERGY}{{zone="{uuids[0]}"}}', 40, "4 s of samples before the restarts")
        fake.reset_counter(0)  # both counter GPUs restart (a driver reload) mid-run
        fake.reset_counter(2)
        client.wait_for_samples(prometheus, f'{ENERGY}{{zone="{uuids[0]}"}}', 120, "12 s of samples")
        assert client.stop(30, must_exit=True) == 0, client.log_tail()
    finally:
        client.stop()
    assert "Traceback" not in client.log_text(), client.log_tail()
    assert "energy counter restarted or jumped" in client.log_text()  # the restarts were seen, and bridged

    power, energy = by_zone(prometheus, POWER), by_zone(prometheus, ENERGY)
    assert set(power) == set(energy) == set(uuids)
    methods = {dict(k)["zone"]: dict(k)["method"] for k in prometheus.raw_samples(ENERGY)}
    assert methods == {uuids[0]: "counter", uuids[1]: "integrated", uuids[2]: "counter"}
    for gpu in fake.gpus:
        watts = [v for _, v in power[gpu.uuid]]
        assert len(watts) >= 100
        assert min(watts) == pytest.approx(gpu.watts, rel=1e-9) and max(watts) == pytest.approx(gpu.watts, rel=1e-9)
        totals = energy[gpu.uuid]
        values = [v for _, v in totals]
        assert values[0] >= 0 and values == sorted(values), f"{gpu.name}: joules total went down"
        (t0, j0), (t1, j1) = totals[0], totals[-1]
        rate = (j1 - j0) / ((t1 - t0) / 1000)
        print(f"{gpu.name:<22} {gpu.watts:6g} W: energy rate {rate:.3f} W over {len(totals)} samples")
        assert rate == pytest.approx(gpu.watts, rel=0.01), gpu.name
    # Prometheus's own view agrees, from PromQL
    for result in prometheus.query(f"avg_over_time({POWER}[1h])"):
        expected = fake.gpus[int(result["metric"]["index"])].watts
        assert float(result["value"][1]) == pytest.approx(expected, rel=1e-6)


def test_a_lost_gpu_stops_its_series_while_the_others_go_on_and_healthz_says_so(prometheus, make_fake_nvml, tmp_path):
    fake = make_fake_nvml(three_gpus())
    uuids = [gpu.uuid for gpu in fake.gpus]
    port = free_port()
    healthz = f"http://127.0.0.1:{port}/healthz"
    client = start_client(fake, prometheus, tmp_path, HEALTH_PORT=str(port))
    try:
        client.wait_for_samples(prometheus, f'{POWER}{{zone="{uuids[1]}"}}', 30, "3 s of samples before the loss")
        assert requests.get(healthz, timeout=5).status_code == 200
        lost_at_ms = time.time() * 1000
        fake.lose(1)

        def unhealthy() -> str | None:
            client.check_alive()
            reply = requests.get(healthz, timeout=5)
            return reply.text if reply.status_code == 503 else None

        text = wait_until(unhealthy, timeout=30, message="/healthz unhealthy after the loss")
        assert "GPU 1" in text and uuids[1] in text and "fell off the bus" in text
        for uuid in (uuids[0], uuids[2]):
            wait_until(
                lambda uuid=uuid: client.check_alive() or latest_ms(prometheus, ENERGY, uuid) > lost_at_ms + 3000,
                timeout=60,
                interval=0.5,
                message=f"{uuid} goes on after the loss",
            )
        assert client.alive()
        assert client.stop(30, must_exit=True) == 0, client.log_tail()
    finally:
        client.stop()
    log = client.log_text()
    assert "Traceback" not in log
    lost_lines = [line for line in log.splitlines() if "is lost" in line]
    assert len(lost_lines) == 1 and " ERROR " in lost_lines[0], lost_lines
    for metric in (POWER, ENERGY):
        series = by_zone(prometheus, metric)
        assert max(t for t, _ in series[uuids[1]]) < lost_at_ms + 500, f"{metric} of the lost GPU went on"
        for uuid in (uuids[0], uuids[2]):
            assert max(t for t, _ in series[uuid]) > lost_at_ms + 3000
