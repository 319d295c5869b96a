"""End to end: the real ``monitoring-client`` with cpu-pyjoules, a live fake tree, a real Prometheus.

The fake tree has two sockets and psys, with known watts per zone and counters that wrap every 1.5-15 s.
After ~15 s of sampling at 10 Hz, Prometheus must show each zone's power within 2 % of its watts,
``energy_joules_total`` rising at that rate, no negative value in any of the three metrics, exactly the
documented labels (the seed's metric with the seed's labels, the contract's two with ``method`` and
``scope``: psys the total, every other zone a part), and a sum of the totals that counts each watt once.
"""

from __future__ import annotations

import os
from pathlib import Path
from statistics import median

import pytest

from cpu_pyjoules.fake_powercap import FakePowercap
from testkit.client import MonitoringClient
from testkit.fake_rapl import FakeRaplTree
from testkit.wait import wait_until

pytestmark = pytest.mark.integration

IMPL = Path(__file__).resolve().parents[1] / "monitor_impl.py"
PREFIX = "pyjoules_remote_write"
WATTS = "package-0=25,package-1=32,core=15,uncore=2,dram=4"
PSYS_W = 40
WRAP_J = 60  # package-0 (25 W) wraps every 2.4 s, psys (40 W) every 1.5 s, dram (4 W) every 15 s
RUN_S = 15


def test_power_and_energy_in_prometheus_match_the_tree(prometheus, tmp_path, tmpfs_path):
    root = tmpfs_path / "powercap"
    layout = FakePowercap(root, WATTS, sockets=2, psys_watts=PSYS_W, wrap_joules=WRAP_J).build()
    layout.close()  # only for the zone list and watts; the tool below rebuilds the same tree
    expected_labels = {(zone.name, zone_id): zone.watts for zone_id, zone in layout.zones.items()}
    assert len(expected_labels) == 2 * 4 + 1

    env = dict(
        os.environ,
        MONITOR_IMPL=str(IMPL),
        POWERCAP_ROOT=str(root),
        REMOTE_WRITE_URL=prometheus.write_url,
        SCRAPE_INTERVAL_S="0.1",
        PUSH_INTERVAL_S="1",
        HOST_LABEL="test-host",
    )
    for name in ("SERVICE_LABEL", "METRIC_PREFIX", "MAX_ZONE_POWER_W"):
        env.pop(name, None)
    fake = FakeRaplTree(root, WATTS, tmp_path / "fake.log", sockets=2, psys_watts=PSYS_W, wrap_joules=WRAP_J)
    client = MonitoringClient(env, tmp_path / "client.log", cwd=tmp_path)
    with fake, client:
        wait_until(
            lambda: prometheus.count_samples(f'{PREFIX}_energy_joules_total{{zone="intel-rapl:0"}}') >= RUN_S * 10,
            timeout=RUN_S + 60,
            interval=0.5,
            message=f"{RUN_S} s of samples in Prometheus",
        )
        assert client.stop(30, must_exit=True) == 0
    assert fake.returncode == 0 and not fake.killed
    client_log = client.log_text()
    print(fake.log_tail(1))
    assert "Traceback" not in client_log, client_log

    series = {}
    for metric in ("energy_uj", "power_watts", "energy_joules_total"):
        raw = prometheus.raw_samples(f"{PREFIX}_{metric}")
        for key, samples in raw.items():
            labels = dict(key)
            contract = {"method": "counter", "scope": "total" if labels["component"] == "psys" else "part"}
            seed = {"__name__", "component", "zone", "source", "host"}
            assert set(labels) == (seed if metric == "energy_uj" else seed | set(contract)), labels
            assert labels["source"] == "cpu-pyjoules" and labels["host"] == "test-host"
            assert metric == "energy_uj" or {k: labels[k] for k in contract} == contract, labels
            assert all(value >= 0 for _, value in samples), f"negative {metric} in {labels}"
            series[(metric, labels["component"], labels["zone"])] = samples
        assert {(c, z) for m, c, z in series if m == metric} == set(expected_labels), metric

    for (component, zone_id), watts in expected_labels.items():
        power = series[("power_watts", component, zone_id)]
        energy = series[("energy_uj", component, zone_id)]
        total = series[("energy_joules_total", component, zone_id)]
        assert len(power) >= RUN_S * 10
        # power: over the whole run (what avg_over_time shows) and sample by sample
        mean_power = sum(v for _, v in power) / len(power)
        worst = max(abs(v - watts) / watts for _, v in power)
        print(f"{zone_id:<16} {component:<10} {watts:5g} W: mean {mean_power:.4f} W, worst sample {worst:.2%}")
        assert mean_power == pytest.approx(watts, rel=0.02), (zone_id, mean_power)
        assert median(v for _, v in power) == pytest.approx(watts, rel=0.02), zone_id
        # joules_total is monotonic and rises at the zone's watts (the tree wrapped many times meanwhile)
        values = [v for _, v in total]
        assert values == sorted(values), zone_id
        (t0, j0), (t1, j1) = total[0], total[-1]
        assert (j1 - j0) / ((t1 - t0) / 1000) == pytest.approx(watts, rel=0.02), zone_id
        # and it is the sum of the interval energies
        assert j1 == pytest.approx(sum(v for _, v in energy) / 1e6, rel=1e-9), zone_id
    # the counters did wrap, several times: joules_total of psys covers many counter ranges
    psys_total = series[("energy_joules_total", "psys", "intel-rapl:2")]
    assert psys_total[-1][1] > 5 * WRAP_J
    # Prometheus's own view agrees: averaged power per zone, from a PromQL query
    for result in prometheus.query(f"avg_over_time({PREFIX}_power_watts[1h])"):
        labels = result["metric"]
        watts = expected_labels[(labels["component"], labels["zone"])]
        assert float(result["value"][1]) == pytest.approx(watts, rel=0.02)
    # what the dashboard sums per host never counts a watt twice: psys alone, the platform's whole draw
    (host_power,) = prometheus.query(f'sum by (host) (avg_over_time({PREFIX}_power_watts{{scope!="part"}}[1h]))')
    assert float(host_power["value"][1]) == pytest.approx(PSYS_W, rel=0.02)
