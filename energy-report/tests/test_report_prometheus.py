"""energy-report against a real Prometheus holding data from the real cpu-pyjoules client on fake RAPL.

The fake tree draws known, constant watts per zone, so the truth of any window is watts x seconds. The
tests run the command as a user does and read its JSON: a 10-second ``measure`` within 0.5 % per zone and
with the command's exit status, a client restart inside a window, samples lost on the way, many windows
with statistics, and an export whose rows are exactly the samples stored (counted by an independent query).
"""

from __future__ import annotations

import csv
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from testkit import fault_proxy
from testkit.fault_proxy import FaultProxy
from testkit.ports import free_port

pytestmark = pytest.mark.integration

PREFIX = "pyjoules_remote_write"
ZONE_WATTS = {"intel-rapl:0": 25.0, "intel-rapl:0:0": 15.0, "intel-rapl:0:1": 4.0, "intel-rapl:1": 40.0}
REL = 0.005  # the bar: joules within 0.5 % of the truth (a 10-second window)
# Shorter windows: the fake tree's counters are rewritten by a separate process every millisecond, and a busy
# 2-core machine can deschedule it for tens of milliseconds, which a reading at a window's edge then sees;
# 0.5 % of a 3-second window is 15 ms. The arithmetic itself is exact (see test_report_energy.py).
REL_SHORT = 0.01


@pytest.fixture(scope="module")
def lab1(store, power_clients, wait_samples):
    """One client pushing steadily for the whole module (host lab-1)."""
    client = power_clients(store.write_url, "lab-1")
    wait_samples(store.url, "lab-1", time.time())
    client.pushing_since = time.time()
    return client


def past_span(lab1, wait_samples, store, seconds: float) -> tuple[float, float]:
    """A span of ``seconds`` that lab-1's data covers completely (waits for it when the module is young)."""
    end = max(time.time() - 1, lab1.pushing_since + seconds + 0.5)
    wait_samples(store.url, "lab-1", end)
    return end - seconds, end


def by_zone(doc: dict) -> dict[str, dict]:
    return {s["zone"]: s for s in doc["series"]}


def report_window(run_report, store, host: str, start: float, end: float):
    """``window --json -`` for one host; returns (the command's result, its JSON, the window's seconds)."""
    ran = run_report(
        "window", "--prometheus", store.url, "--match", f'{{host="{host}"}}',
        "--start", f"{start:.3f}", "--end", f"{end:.3f}", "--json", "-",
    )  # fmt: skip
    assert ran.status == 0, ran.stderr
    doc = json.loads(ran.stdout)
    return ran, doc, doc["end"] - doc["start"]


def test_measure_ten_seconds_within_half_a_percent_and_passes_the_exit_status(store, lab1, run_report, tmp_path):
    out = tmp_path / "measure.json"
    script = "import sys, time; time.sleep(10); sys.exit(7)"
    ran = run_report(
        "measure", "--prometheus", store.url, "--match", '{host="lab-1"}', "--name", "ten-seconds",
        "--json", str(out), "--", sys.executable, "-c", script,
    )  # fmt: skip
    assert ran.status == 7, ran.stderr
    doc = json.loads(out.read_text())
    seconds = doc["end"] - doc["start"]
    assert 10 <= seconds < 20 and doc["name"] == "ten-seconds" and doc["exit_status"] == 7
    zones = by_zone(doc)
    assert set(zones) == set(ZONE_WATTS)
    for zone, watts in ZONE_WATTS.items():
        s = zones[zone]
        assert s["joules"] == pytest.approx(watts * seconds, rel=REL), zone
        assert s["avg_watts"] == pytest.approx(watts, rel=REL), zone
        # the peak is the highest power sample stored in the window (asked of Prometheus independently)
        span_ms = round(doc["end"] * 1000) - round(doc["start"] * 1000)
        peak = store.query(
            f'max_over_time({PREFIX}_power_watts{{host="lab-1",zone="{zone}"}}[{span_ms}ms])', at=round(doc["end"], 3)
        )
        assert s["peak_watts"] == float(peak[0]["value"][1]) and s["peak_watts"] >= watts * 0.98, zone
        assert s["joules_estimated_gaps"] == 0 and s["resets"] == 0
        assert all(g["measured"] for g in s["gaps"])  # a tick delayed on a loaded machine is still measured
        assert s["coverage"] == pytest.approx(1.0)
        assert seconds * 10 * 0.8 <= s["samples"] <= seconds * 10 + 2
        expected = {"host": "lab-1", "source": "cpu-pyjoules", "component": s["component"], "zone": zone}
        assert s["labels"] == {**expected, "method": "counter", "scope": s["scope"]}
        assert s["scope"] == ("total" if s["component"] == "psys" else "part")  # psys is the whole platform
        assert (s["start"], s["end"]) == (doc["start"], doc["end"])
        assert s["metric"] == f"{PREFIX}_energy_joules_total" and s["device_kind"] == "CPU"
    # psys is the whole platform: the host's CPU total is psys alone, packages and sub-zones are parts of it
    (total,) = doc["totals"]
    assert total["host"] == "lab-1" and total["zones"] == ["intel-rapl:1"]
    assert total["joules"] == pytest.approx(40.0 * seconds, rel=REL)
    # the table is on standard output, one row per zone
    assert "ten-seconds" in ran.stdout and ran.stdout.count("lab-1") >= len(ZONE_WATTS)


def test_measure_status_of_failing_missing_and_killed_commands(store, lab1, run_report):
    common = ("measure", "--prometheus", store.url, "--match", '{host="lab-1"}', "--wait-s", "30", "--")
    assert run_report(*common, sys.executable, "-c", "import time; time.sleep(1)").status == 0
    missing = run_report(*common, "/nonexistent/command-xyz")
    assert missing.status == 127 and "command not found" in missing.stderr
    killed = run_report(*common, sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGTERM)")
    assert killed.status == 128 + 15, killed.stderr
    # with --json -, standard output is the JSON alone: the command's own output goes to standard error
    talk = run_report(*common[:-1], "--json", "-", "--", sys.executable, "-c", "print('hello'); raise SystemExit(5)")
    assert talk.status == 5 and json.loads(talk.stdout)["exit_status"] == 5 and "hello" in talk.stderr
    # a store that refuses the window's record: the report is still made, with a warning
    unrecorded = run_report(
        *common[:-1], "--write-url", f"http://127.0.0.1:{free_port()}/api/v1/write", "--json", "-", "--",
        sys.executable, "-c", "pass",
    )  # fmt: skip
    assert unrecorded.status == 0, unrecorded.stderr
    warnings = json.loads(unrecorded.stdout)["warnings"]
    assert len(warnings) == 1, warnings
    (warning,) = warnings
    assert warning.startswith("could not record the window at http://127.0.0.1:") and "refused" in warning


def test_window_with_a_client_restart_sums_segments_and_estimates_the_gap(
    store, power_clients, wait_samples, run_report
):
    host = "lab-restart"
    client = power_clients(store.write_url, host)
    wait_samples(store.url, host, time.time())  # the window starts while the client is pushing
    start = time.time()
    wait_samples(store.url, host, start + 3)
    assert client.stop_client() == 0  # a clean stop: what it held was sent
    time.sleep(3)  # the client is down for (at least) this long: the gap the report must show
    client.start_client()
    wait_samples(store.url, host, time.time() + 3)
    end = time.time()
    wait_samples(store.url, host, end)
    ran, doc, seconds = report_window(run_report, store, host, start, end)
    for zone, watts in ZONE_WATTS.items():
        s = by_zone(doc)[zone]
        assert s["resets"] == 1, s
        assert len(s["gaps"]) == 1, s["gaps"]
        (gap,) = s["gaps"]
        assert gap["reason"] == "counter reset" and gap["measured"] is False
        assert 3 <= gap["seconds"] < 30
        covered = seconds - gap["seconds"]
        assert s["coverage"] == pytest.approx(covered / seconds, rel=1e-3)
        assert s["joules"] == pytest.approx(watts * covered, rel=REL_SHORT), zone
        assert s["joules_estimated_gaps"] == pytest.approx(watts * gap["seconds"], rel=0.02), zone
        assert s["joules"] + s["joules_estimated_gaps"] == pytest.approx(watts * seconds, rel=REL_SHORT), zone
    assert "counter reset" in ran.stderr  # the table (on stderr since --json -) lists the gap


def test_lost_samples_are_listed_and_bridged_by_the_counter(store, power_clients, wait_samples, run_report):
    host = "lab-lossy"
    with FaultProxy(store.url) as proxy:
        power_clients(proxy.write_url, host)
        wait_samples(store.url, host, time.time())
        start = time.time()
        wait_samples(store.url, host, start + 2)
        proxy.fail_for(3, fault_proxy.status(422, body="refused on purpose"))  # dropped whole (a 400 is split)
        lost_from = time.time()
        wait_samples(store.url, host, lost_from + 5)
        end = time.time()
        wait_samples(store.url, host, end)
        assert proxy.count("status_422") >= 1
    _, doc, seconds = report_window(run_report, store, host, start, end)
    for zone, watts in ZONE_WATTS.items():
        s = by_zone(doc)[zone]
        missing = [g for g in s["gaps"] if g["reason"] == "samples missing"]
        assert missing and all(g["measured"] for g in missing), s["gaps"]
        assert max(g["seconds"] for g in missing) >= 2
        assert s["resets"] == 0 and s["joules_estimated_gaps"] == 0 and s["coverage"] == pytest.approx(1.0)
        assert s["joules"] == pytest.approx(watts * seconds, rel=REL_SHORT), zone


def test_many_windows_with_statistics_and_report_csv(store, lab1, wait_samples, run_report, tmp_path):
    t0, _ = past_span(lab1, wait_samples, store, 16)
    runs = [(f"run-{i}", t0 + 4 * i, t0 + 4 * i + 3) for i in range(4)]
    windows = tmp_path / "runs.csv"
    windows.write_text("name,start,end\n" + "".join(f"{n},{s:.3f},{e:.3f}\n" for n, s, e in runs))
    ran = run_report(
        "window", "--prometheus", store.url, "--match", '{host="lab-1"}', "--windows", str(windows),
        "--json", str(tmp_path / "runs.json"), "--csv", str(tmp_path / "runs-report.csv"),
    )  # fmt: skip
    assert ran.status == 0, ran.stderr
    doc = json.loads((tmp_path / "runs.json").read_text())
    assert [w["name"] for w in doc["windows"]] == [n for n, _, _ in runs]
    per_zone = {s["zone"]: s for s in doc["statistics"]["series"]}
    assert set(per_zone) == set(ZONE_WATTS)
    for zone, watts in ZONE_WATTS.items():
        joules = [by_zone(w)[zone]["joules"] for w in doc["windows"]]
        assert all(j == pytest.approx(watts * 3, rel=REL_SHORT) for j in joules), (zone, joules)
        st = per_zone[zone]
        assert st["runs"] == 4
        assert st["joules_mean"] == pytest.approx(statistics.fmean(joules))
        assert st["joules_std"] == pytest.approx(statistics.stdev(joules))
        assert (st["joules_min"], st["joules_max"]) == (min(joules), max(joules))
    (total,) = doc["statistics"]["totals"]
    assert total["runs"] == 4 and total["joules_mean"] == pytest.approx(40.0 * 3, rel=REL_SHORT)
    assert "statistics across runs" in ran.stdout
    rows = list(csv.DictReader((tmp_path / "runs-report.csv").open()))
    assert len(rows) == 4 * len(ZONE_WATTS)
    assert {r["window"] for r in rows} == {n for n, _, _ in runs}
    assert all(float(r["joules"]) > 0 and r["host"] == "lab-1" for r in rows)


def count_stored(store, metric: str, host: str, start: float, end: float) -> int:
    """Samples with start <= t <= end, counted by Prometheus itself (one metric name per count query)."""
    start_ms, end_ms = round(start * 1000), round(end * 1000)
    promql = f'sum(count_over_time({metric}{{host="{host}"}}[{end_ms - start_ms}ms]))'
    result = store.query(promql, at=end_ms / 1000)
    return int(float(result[0]["value"][1])) if result else 0


def test_export_writes_every_stored_sample_in_small_chunks(store, lab1, wait_samples, run_report, tmp_path):
    start, end = past_span(lab1, wait_samples, store, 12.3456)
    span = ("--prometheus", store.url, "--match", '{host="lab-1"}', "--start", f"{start:.4f}", "--end", f"{end:.4f}")
    out = tmp_path / "samples.csv"
    ran = run_report("export", *span, "--csv", str(out), "--chunk-samples", "100")
    assert ran.status == 0, ran.stderr
    contract_metrics = ("energy_joules_total", "power_watts")
    expected = {f"{PREFIX}_{m}": count_stored(store, f"{PREFIX}_{m}", "lab-1", start, end) for m in contract_metrics}
    rows = list(csv.DictReader(out.open()))
    assert Counter(r["metric"] for r in rows) == expected
    assert len(rows) == sum(expected.values()) > 12 * 10 * 2 * len(ZONE_WATTS) * 0.8
    assert "queries" in ran.stderr and int(ran.stderr.split(" in ")[-1].split()[0]) > 10  # many small chunks
    # --all-metrics: everything the client publishes under its prefix; __name__ matchers narrow a set
    everything = tmp_path / "all.csv"
    assert run_report("export", *span, "--csv", str(everything), "--all-metrics").status == 0
    uj = f"{PREFIX}_energy_uj"
    assert Counter(r["metric"] for r in csv.DictReader(everything.open())) == {
        **expected,
        uj: count_stored(store, uj, "lab-1", start, end),
    }
    only = tmp_path / "power.csv"
    ran = run_report("export", *span, "--csv", str(only), "--match", '{__name__=~".+_power_watts"}')
    assert ran.status == 0, ran.stderr
    narrowed = Counter(r["metric"] for r in csv.DictReader(only.open()))
    assert narrowed == {f"{PREFIX}_power_watts": expected[f"{PREFIX}_power_watts"]}
    # exactly the stored values: compare with the samples Prometheus returns for the same span
    stored = store.raw_samples(f'{PREFIX}_power_watts{{host="lab-1",zone="intel-rapl:0"}}', "2m")
    ((_, samples),) = stored.items()
    want = [(t, v) for t, v in samples if round(start * 1000) <= t <= round(end * 1000)]
    got = [
        (round(float(r["timestamp"]) * 1000), float(r["value"]))
        for r in rows
        if r["metric"] == f"{PREFIX}_power_watts" and r["zone"] == "intel-rapl:0"
    ]
    assert got == want
    pandas = pytest.importorskip("pandas", reason="pandas missing: ./run-tests.sh installs it")
    frame = pandas.read_csv(out)
    assert list(frame.columns[:3]) == ["timestamp", "metric", "value"] and len(frame) == len(rows)
    assert str(frame["value"].dtype) == "float64" and str(frame["timestamp"].dtype) == "float64"


def test_plot_of_one_window_and_of_many(store, lab1, run_report, wait_samples, tmp_path):
    _, end = past_span(lab1, wait_samples, store, 9)
    one = tmp_path / "one.png"
    ran = run_report(
        "window", "--prometheus", store.url, "--match", '{host="lab-1"}', "--start", f"{end - 5:.3f}",
        "--end", f"{end:.3f}", "--plot", str(one), "--quiet",
    )  # fmt: skip
    assert ran.status == 0, ran.stderr
    windows = tmp_path / "w.csv"
    windows.write_text(f"name,start,end\na,{end - 8:.3f},{end - 5:.3f}\nb,{end - 4:.3f},{end - 1:.3f}\n")
    many = tmp_path / "many.png"
    ran = run_report(
        "window", "--prometheus", store.url, "--match", '{host="lab-1"}', "--windows", str(windows),
        "--plot", str(many), "--quiet",
    )  # fmt: skip
    assert ran.status == 0, ran.stderr
    image = pytest.importorskip("matplotlib.image", reason="matplotlib missing: ./run-tests.sh installs it")
    for path in (one, many):
        pixels = image.imread(str(path))
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert pixels.shape[0] >= 600 and pixels.shape[1] >= 1200
        assert pixels.std() > 0.05  # lines and text, not a blank canvas


def test_errors_are_one_line_with_distinct_statuses(store, lab1, run_report, tmp_path):
    url = ("--prometheus", store.url)
    nobody = run_report("window", *url, "--match", '{host="nobody"}', "--start=-20s")
    assert nobody.status == 4 and "lab-1" in nobody.stderr and "cpu-pyjoules" in nobody.stderr
    empty = run_report("window", *url, "--start", "2001-01-01T00:00:00Z", "--end", "2001-01-01T00:01:00Z")
    assert empty.status == 4 and "holds no data" in empty.stderr
    bad_time = run_report("window", *url, "--start", "yesterday")
    assert bad_time.status == 2 and "RFC 3339" in bad_time.stderr
    bad_match = run_report("window", *url, "--match", "host=lab-1", "--start=-1m")
    assert bad_match.status == 2 and "--match" in bad_match.stderr
    down = run_report("window", "--prometheus", f"http://127.0.0.1:{free_port()}", "--start=-1m")
    assert down.status == 3 and "cannot reach" in down.stderr
    marker = tmp_path / "ran"
    never = run_report(
        "measure", "--prometheus", f"http://127.0.0.1:{free_port()}", "--", sys.executable, "-c",
        f"open({str(marker)!r}, 'w')",
    )  # fmt: skip
    assert never.status == 3 and not marker.exists()  # the experiment is not run when the report cannot be made
    for ran in (nobody, empty, bad_time, bad_match, down, never):
        lines = ran.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("energy-report: "), ran.stderr
        assert "Traceback" not in ran.stderr


def test_recorded_windows_show_as_dashboard_annotations(store, lab1, run_report):
    ran = run_report(
        "measure", "--prometheus", store.url, "--match", '{host="lab-1"}', "--name", "annotated",
        "--write-url", store.write_url, "--quiet", "--json", "-", "--", sys.executable, "-c",
        "import time; time.sleep(2)",
    )  # fmt: skip
    assert ran.status == 0, ran.stderr
    doc = json.loads(ran.stdout)
    assert doc["warnings"] == []
    dashboard = json.loads((Path(__file__).resolve().parents[2] / "grafana/dashboards/power.json").read_text())
    (annotation,) = [a for a in dashboard["annotations"]["list"] if "energy_report_window" in a.get("expr", "")]
    assert annotation["datasource"] == {"type": "prometheus", "uid": "prometheus"}
    middle = (doc["start"] + doc["end"]) / 2
    inside = store.query(annotation["expr"], at=middle)
    assert [(r["metric"]["name"], float(r["value"][1])) for r in inside] == [("annotated", 1.0)]
    after = store.query(annotation["expr"], at=doc["end"] + 1)
    assert all(float(r["value"][1]) == 0 for r in after)
