"""End to end: the real ``monitoring-client`` with jetson-ina3221 on fake trees of several boards, a real Prometheus.

Per board and layout, the test sets each rail's volts and amps, runs the client at 10 Hz, changes one rail
mid-run, and checks in Prometheus: power exactly V x I, the volts and amperes gauges, the rate of
``jetson_energy_joules_total`` within 1% of the power (before and after the change), never negative or
decreasing, and the labels of the naming contract with ``scope`` where the board has a whole-board rail.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from testkit.client import MonitoringClient
from testkit.prometheus import PrometheusServer

pytestmark = pytest.mark.integration

IMPL = Path(__file__).resolve().parents[1] / "monitor_impl.py"
PREFIX = "jetson"
OWN_VARIABLES = ("JETSON_SYSFS_ROOT", "METRIC_PREFIX", "JETSON_TOTAL_RAILS", "SERVICE_LABEL")

# board -> (values set at start, the rail changed mid-run and its new (volts, amps), expected scopes)
CASES = {
    "orin-nx": (
        {"VDD_IN": (5.08, 2.13), "VDD_CPU_GPU_CV": (5.08, 0.87), "VDD_SOC": (5.08, 0.44)},
        ("VDD_CPU_GPU_CV", (5.04, 1.75)),
        {"VDD_IN": "total", "VDD_CPU_GPU_CV": "part", "VDD_SOC": "part"},
    ),
    "xavier-nx": (
        {"VDD_IN": (5.05, 1.31), "VDD_CPU_GPU_CV": (5.05, 0.52), "VDD_SOC": (5.05, 0.29)},
        ("VDD_IN", (5.02, 1.96)),
        {"VDD_IN": "total", "VDD_CPU_GPU_CV": "part", "VDD_SOC": "part"},
    ),
    "agx-orin": (
        {
            "VDD_GPU_SOC": (5.04, 2.45),
            "VDD_CPU_CV": (5.04, 0.66),
            "VIN_SYS_5V0": (4.99, 0.93),
            "VDDQ_VDD2_1V8AO": (5.0, 0.21),
        },
        ("VDD_GPU_SOC", (5.03, 4.1)),
        {"VDD_GPU_SOC": None, "VDD_CPU_CV": None, "VIN_SYS_5V0": None, "VDDQ_VDD2_1V8AO": None},
    ),
}


def by_rail(
    prometheus: PrometheusServer, metric: str, scopes: dict[str, str | None]
) -> dict[str, list[tuple[int, float]]]:
    out = {}
    for key, samples in prometheus.raw_samples(f"{PREFIX}_{metric}").items():
        labels = dict(key)
        expected = {"__name__", "component", "zone", "method", "source", "host"}
        if scopes[labels["component"]] is not None:
            expected.add("scope")
        assert set(labels) == expected, labels
        assert labels.get("scope") == scopes[labels["component"]]
        assert labels["method"] == "integrated" and labels["source"] == "jetson-ina3221"
        out[labels["component"]] = samples
    return out


def rate(samples: list[tuple[int, float]]) -> float:
    (t0, j0), (t1, j1) = samples[0], samples[-1]
    return (j1 - j0) / ((t1 - t0) / 1000)


@pytest.mark.parametrize("board", sorted(CASES))
def test_rails_in_prometheus_match_the_set_volts_and_amps(board, make_jetson, prometheus, tmp_path):
    values, (changed, new_values), scopes = CASES[board]
    fake = make_jetson(board, values)
    zones = {name: rail.zone for name, rail in fake.rails.items()}
    env: dict[str, str] = {k: v for k, v in os.environ.items() if k not in OWN_VARIABLES}
    env.update(
        MONITOR_IMPL=str(IMPL),
        JETSON_SYSFS_ROOT=str(fake.root),
        REMOTE_WRITE_URL=prometheus.write_url,
        SCRAPE_INTERVAL_S="0.1",
        PUSH_INTERVAL_S="1",
        HOST_LABEL="test-host",
    )
    client = MonitoringClient(env, tmp_path / "client" / "client.log", name=f"jetson-{board}").start()
    selector = f'{PREFIX}_energy_joules_total{{zone="{zones[changed]}"}}'
    try:
        client.wait_for_samples(prometheus, selector, 60, "6 s of samples before the change")
        changed_at_ms = time.time() * 1000
        fake.set(changed, volts=new_values[0], amps=new_values[1])
        client.wait_for_samples(prometheus, selector, 120, "6 s of samples after the change")
        assert client.stop(30, must_exit=True) == 0, client.log_tail()
    finally:
        client.stop()
    assert "Traceback" not in client.log_text(), client.log_tail()

    power = by_rail(prometheus, "power_watts", scopes)
    energy = by_rail(prometheus, "energy_joules_total", scopes)
    volts = by_rail(prometheus, "voltage_volts", scopes)
    amps = by_rail(prometheus, "current_amperes", scopes)
    assert set(power) == set(energy) == set(volts) == set(amps) == set(values)
    for rail, (v, a) in values.items():
        totals = energy[rail]
        assert totals[0][1] >= 0 and [j for _, j in totals] == sorted(j for _, j in totals), rail
        if rail != changed:
            watts = [w for _, w in power[rail]]
            assert min(watts) == pytest.approx(v * a, rel=1e-9) and max(watts) == pytest.approx(v * a, rel=1e-9)
            assert {x for _, x in volts[rail]} == {v} and {x for _, x in amps[rail]} == {a}
            assert rate(totals) == pytest.approx(v * a, rel=0.01), rail
            print(f"{board} {rail:<16} {v * a:7.4f} W: energy rate {rate(totals):.4f} W")
            continue
        # the changed rail: each phase at its own power, the energy rate following it
        new_w = new_values[0] * new_values[1]
        before = [(t, j) for (t, j), (_, w) in zip(totals, power[rail], strict=True) if w == pytest.approx(v * a)]
        after = [(t, j) for (t, j), (_, w) in zip(totals, power[rail], strict=True) if w == pytest.approx(new_w)]
        # volts and amps are two files: one reading may fall between their rewrites (so may one on a real chip)
        assert len(totals) - len(before) - len(after) <= 1 and len(before) >= 50 and len(after) >= 50
        assert before[-1][0] < after[0][0] and after[0][0] >= changed_at_ms - 200
        assert rate(before) == pytest.approx(v * a, rel=0.01), rail
        assert rate(after[1:]) == pytest.approx(new_w, rel=0.01), rail
        assert amps[rail][-1][1] == new_values[1] and volts[rail][-1][1] == new_values[0]
        print(f"{board} {rail:<16} {v * a:7.4f} W -> {new_w:7.4f} W: rates {rate(before):.4f} -> {rate(after[1:]):.4f}")
