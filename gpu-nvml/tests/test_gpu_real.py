"""On a machine with a real NVIDIA driver: the GPU's energy counter agrees with its integrated power.

Marked ``gpu``: it runs only where NVML answers with at least one GPU (checked in a child process, so this
process never loads the real library beside the stand-in), and skips with the reason elsewhere. The
client runs as a user runs it, against a real Prometheus, for 20 s at 10 Hz; per GPU with an energy
counter, the rise of ``nvml_energy_joules_total`` must match the trapezoid integral of ``nvml_power_watts``
over the same samples within 5% (the power readings are samples, or one-second averages, of a power that
moves between them; the counter integrates continuously).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from testkit.client import MonitoringClient

pytestmark = [pytest.mark.gpu, pytest.mark.integration]

IMPL = Path(__file__).resolve().parents[1] / "monitor_impl.py"
STAND_IN_VARIABLES = ("LD_LIBRARY_PATH", "FAKE_NVML_CONTROL", "NVML_DEVICES", "METRIC_PREFIX", "MAX_GPU_POWER_W")
PROBE = "import pynvml; pynvml.nvmlInit(); print(pynvml.nvmlDeviceGetCount())"


def real_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in STAND_IN_VARIABLES}


def why_no_real_gpu() -> str | None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=real_environment())
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        return f"no NVIDIA driver answers on this machine ({last})"
    if done.stdout.strip() == "0":
        return "the NVIDIA driver answers but reports no GPU"
    return None


def trapezoid_joules(samples: list[tuple[int, float]]) -> float:
    return sum((v0 + v1) / 2 * (t1 - t0) / 1000 for (t0, v0), (t1, v1) in zip(samples, samples[1:], strict=False))


def test_real_energy_counter_agrees_with_integrated_power(prometheus, tmp_path):
    reason = why_no_real_gpu()
    if reason:
        pytest.skip(reason)
    env = real_environment()
    env.update(
        MONITOR_IMPL=str(IMPL),
        REMOTE_WRITE_URL=prometheus.write_url,
        SCRAPE_INTERVAL_S="0.1",
        HOST_LABEL="gpu-host",
    )
    client = MonitoringClient(env, tmp_path / "gpu-nvml-real.log", name="gpu-nvml-real").start()
    try:
        client.wait_for_samples(prometheus, 'nvml_power_watts{index="0"}', 200, "20 s of samples from the real GPU")
        assert client.stop(30, must_exit=True) == 0, client.log_tail()
    finally:
        client.stop()
    energy = {
        dict(k)["zone"]: (dict(k)["method"], s) for k, s in prometheus.raw_samples("nvml_energy_joules_total").items()
    }
    power = {dict(k)["zone"]: s for k, s in prometheus.raw_samples("nvml_power_watts").items()}
    counted = [zone for zone, (method, _) in energy.items() if method == "counter"]
    if not counted:
        pytest.skip("no GPU here has an energy counter (before Volta): nothing to compare")
    for zone in counted:
        totals = dict(energy[zone][1])
        samples = [(t, w) for t, w in power[zone] if t in totals]
        counter_j = totals[samples[-1][0]] - totals[samples[0][0]]
        integrated_j = trapezoid_joules(samples)
        print(f"{zone}: counter {counter_j:.2f} J, integrated power {integrated_j:.2f} J over {len(samples)} samples")
        assert counter_j == pytest.approx(integrated_j, rel=0.05), zone
