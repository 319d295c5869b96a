"""What users read and feed in: JSON shape, tables, statistics, the windows file, command-line errors."""

from __future__ import annotations

import io
import json
import statistics
import sys
from pathlib import Path

import pytest

from energy_report import cli, render, stats
from energy_report.energy import EnergyAccumulator
from energy_report.errors import UsageError
from energy_report.progress import Progress
from energy_report.report import SeriesReport, WindowReport
from energy_report.windows_file import read_windows

LABELS = {"__name__": "nvml_energy_joules_total", "host": "gpu-box", "zone": "GPU-1", "source": "gpu-nvml"}


def window(name: str, joules_per_s: float, start: float = 0.0) -> WindowReport:
    acc = EnergyAccumulator(start, start + 10)
    for i in range(-1, 12):
        acc.add(start + i, joules_per_s * (i + 1))
    report = WindowReport(name, start, start + 10)
    report.series = [SeriesReport(dict(LABELS, scope="total"), acc.finish(), peak_watts=joules_per_s * 1.1)]
    return report


def test_json_of_one_window_carries_every_figure_labels_and_edges() -> None:
    doc = render.document([window("w", 100.0)], server_url="http://x", matchers=['{host="gpu-box"}'])
    assert (doc["start"], doc["end"], doc["name"]) == (0.0, 10.0, "w")
    (s,) = doc["series"]
    for key in ("joules", "joules_estimated_gaps", "avg_watts", "peak_watts", "samples", "coverage", "start", "end"):
        assert key in s
    assert s["labels"] == {"host": "gpu-box", "zone": "GPU-1", "source": "gpu-nvml", "scope": "total"}
    assert s["zone"] == "GPU-1" and s["device_kind"] == "GPU" and s["joules"] == pytest.approx(1000.0)
    assert doc["totals"][0]["joules"] == pytest.approx(1000.0)
    json.dumps(doc, allow_nan=False)


def test_statistics_across_runs_per_zone_and_total() -> None:
    runs = [window(f"r{i}", w, start=100.0 * i) for i, w in enumerate((10.0, 12.0, 11.0))]
    zone = stats.zone_statistics(runs)
    (entry,) = zone
    values = [100.0, 120.0, 110.0]
    assert entry["runs"] == 3 and entry["zone"] == "GPU-1"
    assert entry["joules_mean"] == pytest.approx(statistics.fmean(values))
    assert entry["joules_std"] == pytest.approx(statistics.stdev(values))
    assert (entry["joules_min"], entry["joules_max"]) == pytest.approx((100.0, 120.0))
    (total,) = stats.total_statistics(runs)
    assert total["host"] == "gpu-box" and total["joules_mean"] == pytest.approx(110.0)
    assert stats.zone_statistics(runs[:1])[0]["joules_std"] is None
    doc = render.document(runs, server_url="u", matchers=[], zone_stats=zone, total_stats=[total])
    assert [w["name"] for w in doc["windows"]] == ["r0", "r1", "r2"] and doc["statistics"]["series"] == zone
    table = render.statistics_table(zone, [total])
    assert "110.000" in table and "(total)" in table


def test_table_lists_rows_totals_and_gaps() -> None:
    acc = EnergyAccumulator(0.0, 10.0)
    for t, v in [(-1, 0.0), (4, 50.0), (6, 1.0), (11, 51.0)]:
        acc.add(t, v)
    report = WindowReport("restart", 0.0, 10.0)
    report.series = [SeriesReport(dict(LABELS), acc.finish())]
    text = render.window_table(report)
    assert "restart" in text and "GPU-1" in text and "counter reset" in text and "estimated" in text


def test_report_csv_has_one_row_per_window_and_series(tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    render.write_report_csv(str(out), [window("a", 1.0), window("b", 2.0, 50.0)])
    lines = out.read_text().splitlines()
    assert lines[0].startswith("window,start,end,metric,device_kind,scope,host,source,zone")
    assert len(lines) == 3 and not (tmp_path / ".r.csv.partial").exists()


def test_windows_file(tmp_path: Path) -> None:
    path = tmp_path / "w.csv"
    path.write_text("\ufeffname,start,end,notes\nbase,1714564800,2024-05-01T12:00:10Z,x\n,now-20s,now\n\n")
    assert read_windows(path, now=1714564900.0) == [
        ("base", 1714564800.0, 1714564810.0),
        ("run-2", 1714564880.0, 1714564900.0),
    ]
    path.write_text("name,begin,end\na,1,2\n")
    with pytest.raises(UsageError, match="missing: start"):
        read_windows(path, now=0)
    path.write_text("name,start,end\na,5,2\n")
    with pytest.raises(UsageError, match="line 2: end must be after start"):
        read_windows(path, now=0)
    path.write_text("name,start,end\na,soon,2\n")
    with pytest.raises(UsageError, match="line 2: start 'soon' is not a time"):
        read_windows(path, now=0)
    with pytest.raises(UsageError, match="cannot read"):
        read_windows(tmp_path / "absent.csv", now=0)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["measure"], "measure needs a command"),
        (["measure", "--"], "measure needs a command"),
        (["window"], "window needs --start"),
        (["window", "--start=-1m", "--windows", "x.csv"], "exclude each other"),
        (["window", "--start=-1m", "--prometheus", "ftp://x"], "is not an http(s) URL"),
        (["window", "--start=-1m", "--password-file", "/etc/hostname"], "--password-file needs --username"),
        (["window", "--start=-1m", "--username", "u", "--bearer-token-file", "/etc/hostname"], "exclude each other"),
        (["window", "--start=-1m", "--cert-file", "/etc/hostname"], "go together"),
        (["window", "--start=-1m", "--ca-file", "/nonexistent/ca.pem"], "not found or not readable"),
        (["window", "--start=-1m", "--chunk-samples", "0"], "--chunk-samples"),
        (["export", "--start", "never", "--csv", "-"], "is not a time"),
    ],
)
def test_command_line_mistakes_exit_2_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and err.startswith("energy-report: ")


def test_help_reads_well(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--help"], ["measure", "--help"], ["window", "--help"], ["export", "--help"]):
        with pytest.raises(SystemExit) as done:
            cli.main(argv)
        assert done.value.code == 0
        out = capsys.readouterr().out
        assert "exit status" in out and "RFC 3339" in out
    with pytest.raises(SystemExit):
        cli.main(["measure", "--help"])
    assert "-- CMD [ARGS...]" in capsys.readouterr().out


def test_progress_is_quiet_at_first_then_rate_limited() -> None:
    clock = iter([0.0, 0.5, 1.2, 1.5, 2.3, 2.4]).__next__
    stream = io.StringIO()
    progress = Progress(stream=stream, clock=clock)
    for i in range(5):
        progress.update(f"step {i}")
    assert stream.getvalue().splitlines() == ["step 1", "step 3"]
    Progress(enabled=False, stream=stream).update("hidden", force=True)
    assert "hidden" not in stream.getvalue()


def test_recording_without_the_base_client_is_one_line_exit_3(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "monitoring_client.encoder", None)  # as if it were not installed
    marker = tmp_path / "ran"
    argv = ["measure", "--write-url", "http://127.0.0.1:9/api/v1/write", "--", "touch", str(marker)]
    monkeypatch.setattr(cli.PromServer, "query", lambda self, promql, at: {})  # the server check passes
    assert cli.main(argv) == 3
    err = capsys.readouterr().err
    assert "pip install ./base-monitoring-client" in err and len(err.strip().splitlines()) == 1
    assert not marker.exists()
