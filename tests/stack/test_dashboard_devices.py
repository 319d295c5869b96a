"""The dashboard's device panels against a real Prometheus holding data from all three power clients.

One host runs the real ``monitoring-client`` three times, as the stack does: cpu-pyjoules on a fake RAPL
tree with psys (so psys is the CPU's total and the packages, core, uncore and DRAM its parts), gpu-nvml on
the stand-in NVIDIA library (a GPU with an energy counter and one without), jetson-ina3221 on a fake Orin NX
(VDD_IN the board's total). Every query of the dashboard, with Grafana's variables substituted, must show
each zone at its set watts, each device kind counted once (a sum that added a part to its whole would be
off by the part's watts), the energy of the range at those watts, and healthy clients.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path

import pytest

from testkit.client import MonitoringClient
from testkit.fake_rapl import FakeRaplTree
from testkit.prometheus import PrometheusServer
from testkit.wait import wait_until

from .stack_dashboard import regex_for
from .stack_expect import Expected, implausible, without_rule

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
HOST = "device-panels-host"
RAPL_WATTS = {"package-0": 20.0, "core": 12.0, "uncore": 2.0, "dram": 4.0}
PSYS_W = 35.0
RAPL_ZONES = {"intel-rapl:0": "package-0", "intel-rapl:0:0": "core", "intel-rapl:0:1": "uncore"}
RAPL_ZONES |= {"intel-rapl:0:2": "dram", "intel-rapl:1": "psys"}
GPUS = (("NVIDIA A100-SXM4-80GB", 250.0, True), ("Tesla T4", 70.0, False))  # name, watts, energy counter
RAILS = {"VDD_IN": (5.0, 3.0), "VDD_CPU_GPU_CV": (5.0, 1.2), "VDD_SOC": (5.0, 0.6)}  # volts, amps
SCRAPE_INTERVAL_S = 0.1
PUSH_INTERVAL_S = 1.0
RANGE_S = 20
# Variables of the clients' environment that this test sets per client (or must not inherit).
OWN = ("METRIC_PREFIX", "SERVICE_LABEL", "POWERCAP_ROOT", "JETSON_SYSFS_ROOT", "NVML_DEVICES", "HEALTH_PORT")


def test_every_panel_shows_each_device_kind_once_at_its_set_watts(
    prometheus: PrometheusServer, tmp_path: Path, tmpfs_path: Path
) -> None:
    fake_nvml = pytest.importorskip("gpu_nvml.fake_nvml", reason="gpu-nvml not installed (./run-tests.sh does it)")
    fake_sysfs = pytest.importorskip("jetson_ina3221.fake_sysfs", reason="jetson-ina3221 not installed")
    pytest.importorskip("cpu_pyjoules", reason="cpu-pyjoules not installed (./run-tests.sh installs it)")
    assert not without_rule(), f"dashboard queries without a plausibility rule: {without_rule()}"
    try:
        library = fake_nvml.compile_library(tmp_path / "nvml-lib")
    except fake_nvml.FakeNvmlError as exc:
        pytest.skip(f"cannot build the stand-in NVML library: {exc}")
    nvml = fake_nvml.FakeNvml(
        tmp_path / "nvml", [fake_nvml.FakeGpu(n, w, energy=e) for n, w, e in GPUS], library=library
    ).build()
    jetson = fake_sysfs.FakeJetson(tmp_path / "sys", "orin-nx", RAILS).build()

    common = {k: v for k, v in os.environ.items() if k not in OWN}
    common.update(
        REMOTE_WRITE_URL=prometheus.write_url,
        HOST_LABEL=HOST,
        SCRAPE_INTERVAL_S=str(SCRAPE_INTERVAL_S),
        PUSH_INTERVAL_S=str(PUSH_INTERVAL_S),
        SELF_METRICS_INTERVAL_S="2",
    )
    clients = {
        "cpu-pyjoules": {"POWERCAP_ROOT": str(tmpfs_path / "powercap")},
        "gpu-nvml": nvml.env,
        "jetson-ina3221": {"JETSON_SYSFS_ROOT": str(jetson.root)},
    }
    rails = {rail.zone: volts * amps for rail, (volts, amps) in ((jetson.rails[n], RAILS[n]) for n in RAILS)}
    expected = Expected(
        zones={
            **{zone: RAPL_WATTS.get(name, PSYS_W) for zone, name in RAPL_ZONES.items()},
            **{gpu.uuid: gpu.watts for gpu in nvml.gpus},
            **rails,
        },
        # psys alone for the CPU (everything else is inside it), every GPU, the board's input rail alone
        kinds={"cpu-pyjoules": PSYS_W, "gpu-nvml": sum(w for _, w, _ in GPUS), "jetson-ina3221": 15.0},
        series={"cpu-pyjoules": len(RAPL_ZONES) * 3, "gpu-nvml": len(GPUS) * 2, "jetson-ina3221": len(RAILS) * 4},
        scrape_interval_s=SCRAPE_INTERVAL_S,
        push_interval_s=PUSH_INTERVAL_S,
        range_s=RANGE_S,
    )
    values = {
        "host": regex_for([HOST]),
        "source": regex_for(sorted(clients)),
        "__range": f"{RANGE_S}s",
        "__rate_interval": "20s",
        "__interval": "5s",
    }
    with ExitStack() as stack:
        stack.enter_context(
            FakeRaplTree(
                tmpfs_path / "powercap", RAPL_WATTS, tmp_path / "fake_powercap.log", psys_watts=PSYS_W, update_ms=5
            )
        )
        running = [
            stack.enter_context(
                MonitoringClient(
                    {**common, **env, "MONITOR_IMPL": str(ROOT / name / "monitor_impl.py")},
                    tmp_path / f"{name}.log",
                    name=name,
                    cwd=tmp_path,
                )
            )
            for name, env in clients.items()
        ]
        problems: list[str] = []

        def every_panel_right() -> bool:
            for client in running:
                client.check_alive()
            problems[:] = implausible(prometheus.query, values, expected)
            return not problems

        try:
            wait_until(every_panel_right, 150, interval=2, message="every dashboard query plausible")
        except AssertionError:
            raise AssertionError("implausible or empty dashboard queries:\n" + "\n".join(problems)) from None
    # The sum the device-kind panels make really leaves the parts out: with them the CPU would show 73 W.
    everything = prometheus.query(f'sum(avg_over_time(pyjoules_remote_write_power_watts{{host="{HOST}"}}[1h]))')
    assert float(everything[0]["value"][1]) == pytest.approx(PSYS_W + sum(RAPL_WATTS.values()), rel=0.05)
