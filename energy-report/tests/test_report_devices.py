"""energy-report over another client of the naming contract: jetson-ina3221 on a fake Orin NX board.

The board's input rail VDD_IN carries ``scope="total"`` and its parts ``scope="part"``, so the host's board
total must be VDD_IN alone, while every rail's own joules match the volts x amps the fake tree draws.
The same server holds a CPU client on another host, to show that kinds and hosts stay apart.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from testkit.client import MonitoringClient

pytestmark = pytest.mark.integration

jetson_fake = pytest.importorskip("jetson_ina3221.fake_sysfs", reason="jetson-ina3221 missing: ./run-tests.sh")
IMPL = Path(__file__).resolve().parents[2] / "jetson-ina3221" / "monitor_impl.py"
RAILS = {"VDD_IN": (5.08, 2.10), "VDD_CPU_GPU_CV": (5.08, 0.90), "VDD_SOC": (5.08, 0.45)}
REL = 0.005
REL_SHORT = 0.01  # a 5-second window of the fake RAPL tree: see test_report_prometheus.py


def test_board_rails_and_a_total_that_counts_the_input_rail_only(
    store, power_clients, wait_samples, run_report, tmp_path
):
    power_clients(store.write_url, "cpu-box")
    board = jetson_fake.FakeJetson(tmp_path / "sys", "orin-nx", RAILS).build()
    settings = {"MONITOR_IMPL": IMPL, "JETSON_SYSFS_ROOT": board.root, "REMOTE_WRITE_URL": store.write_url}
    settings.update(SCRAPE_INTERVAL_S="0.1", PUSH_INTERVAL_S="0.5", HOST_LABEL="orin")
    env = {k: v for k, v in os.environ.items() if k not in ("METRIC_PREFIX", "SERVICE_LABEL")}
    env.update((name, str(value)) for name, value in settings.items())
    with MonitoringClient(env, tmp_path / "jetson.log", name="jetson client") as client:

        def stored_after(after: float) -> bool:
            result = store.query('timestamp(jetson_energy_joules_total{host="orin"})')
            return len(result) == len(RAILS) and all(float(r["value"][1]) > after for r in result)

        launched = time.time()
        client.wait_ready(lambda: stored_after(launched), 90, "jetson samples", interval=0.25)
        start = time.time()
        client.wait_ready(lambda: stored_after(start + 5.5), 90, "5 s of jetson samples", interval=0.25)
        wait_samples(store.url, "cpu-box", start + 5.5)
    ran = run_report(
        "window", "--prometheus", store.url, "--start", f"{start:.3f}", "--end", f"{start + 5:.3f}", "--json", "-",
        "--match", '{host=~"orin|cpu-box"}',
    )  # fmt: skip
    assert ran.status == 0, ran.stderr
    doc = json.loads(ran.stdout)
    seconds = doc["end"] - doc["start"]
    rails = {s["component"]: s for s in doc["series"] if s["host"] == "orin"}
    assert set(rails) == set(RAILS)
    for rail, (volts, amps) in RAILS.items():
        s = rails[rail]
        assert s["device_kind"] == "board" and s["method"] == "integrated"
        assert s["scope"] == ("total" if rail == "VDD_IN" else "part")
        assert s["joules"] == pytest.approx(volts * amps * seconds, rel=REL), rail
        assert s["peak_watts"] == pytest.approx(volts * amps, rel=1e-6)
    totals = {(t["host"], t["device_kind"]): t for t in doc["totals"]}
    assert set(totals) == {("orin", "board"), ("cpu-box", "CPU")}
    assert totals[("orin", "board")]["joules"] == pytest.approx(rails["VDD_IN"]["joules"])
    assert totals[("orin", "board")]["zones"] == [rails["VDD_IN"]["zone"]]
    assert totals[("cpu-box", "CPU")]["joules"] == pytest.approx(40.0 * seconds, rel=REL_SHORT)  # psys
    assert "VDD_IN" in ran.stderr and "board" in ran.stderr  # the table (on stderr with --json -)
