"""energy-report export: rows per second and peak memory for a long window, against one big query.

A real Prometheus is filled with a long window of contract series (``<prefix>_energy_joules_total`` and
``<prefix>_power_watts``, 8 zones, 10 Hz; 100 Hz in the full run) written through remote write in time
order with the base client's encoder, so the window exists without waiting for it in real time. Then, each
in its own process so that its peak RSS is its own:

* ``energy-report export``: chunked instant queries of range selectors, streamed to CSV (bounded memory);
* ``single query into memory`` (baseline, the seed author's way): one query for the whole window's raw
  samples, the JSON answer parsed at once, then written to the same CSV columns;
* ``energy-report window``: the exact energy report of the same window, for scale.

Rows are checked against Prometheus's own ``count_over_time``. Peak RSS is the child's ``VmHWM`` read by
the child itself at exit (``ru_maxrss`` would include the forking parent's memory).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from bench.context import Context
from bench.measure import count_stored, fmt
from bench.report import Section, Table

PREFIX = "bench_export"
METRICS = (f"{PREFIX}_energy_joules_total", f"{PREFIX}_power_watts")
ZONES = 8
# (window seconds, sampling rate Hz) per mode
SIZES = {"full": (3600, 100.0), "quick": (3600, 10.0), "smoke": (120, 10.0)}

# Runs a module or a script and writes its own peak RSS (VmHWM, kB) to a file when it exits.
PEAK_WRAPPER = r"""
import atexit, runpy, sys
out, kind, target = sys.argv[1:4]
def peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            open(out, "w").write(line.split()[1])
atexit.register(peak)
sys.argv = [target, *sys.argv[4:]]
if kind == "module":
    runpy.run_module(target, run_name="__main__", alter_sys=True)
else:
    exec(compile(target, "<baseline>", "exec"), {"__name__": "__main__"})
"""

BASELINE = r"""
import csv, sys, requests
url, selector, start, end, out = sys.argv[1:6]
span_ms = round((float(end) - float(start)) * 1000)
params = {"query": f"{selector}[{span_ms}ms]", "time": end}
body = requests.get(f"{url}/api/v1/query", params=params, timeout=600).json()
result = body["data"]["result"]
names = sorted({k for s in result for k in s["metric"] if k != "__name__"})
with open(out, "w", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(["timestamp", "metric", "value", *names])
    for s in result:
        tail = [s["metric"].get(n, "") for n in names]
        for ts, value in s["values"]:
            w.writerow([f"{float(ts):.3f}", s["metric"]["__name__"], value, *tail])
"""


def fill(prom_write_url: str, start_s: float, seconds: float, rate_hz: float) -> int:
    """Write ``seconds`` of data ending now for every zone, oldest first; returns samples written."""
    from monitoring_client.encoder import Encoder, SeriesSamples
    from monitoring_client.http_transport import HttpTransport

    headers = {
        "Content-Encoding": "snappy",
        "Content-Type": "application/x-protobuf",
        "X-Prometheus-Remote-Write-Version": "0.1.0",
    }
    transport = HttpTransport(prom_write_url, headers)
    encoder = Encoder(max_samples=20_000)
    step_ms = round(1000 / rate_hz)
    t0_ms = round(start_s * 1000)
    n = int(seconds * 1000 // step_ms) + 1
    written = 0
    batch = max(1, int(20_000 // (ZONES * 2)))
    for first in range(0, n, batch):
        groups = {}
        for zone in range(ZONES):
            watts = 5.0 + 3 * zone
            labels = (("component", f"zone-{zone}"), ("host", "bench"), ("source", "bench"), ("zone", f"z:{zone}"))
            for metric in METRICS:
                s = SeriesSamples()
                for i in range(first, min(n, first + batch)):
                    s.timestamps.append(t0_ms + i * step_ms)
                    s.values.append(watts * i * step_ms / 1000 if "energy" in metric else watts)
                groups[(("__name__", metric), *labels)] = s
        for payload in encoder.encode(groups):
            response = transport.post(payload.body, 60)
            if response.status // 100 != 2:
                raise RuntimeError(f"filling Prometheus failed: HTTP {response.status} {response.body[:200]!r}")
            written += payload.samples
    transport.close()
    return written


def timed(kind: str, target: str, args: list[str], log: Path) -> tuple[float, float, int]:
    """Run a module or script in a child; (wall seconds, its peak RSS in MB, exit status)."""
    peak_file = log.with_suffix(".peak")
    started = time.monotonic()
    with open(log, "wb") as out:
        cmd = [sys.executable, "-c", PEAK_WRAPPER, str(peak_file), kind, target, *args]
        status = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False).returncode
    wall = time.monotonic() - started
    try:
        peak_mb = int(peak_file.read_text()) / 1024
    except (OSError, ValueError):
        peak_mb = float("nan")
    return wall, peak_mb, status


def rows_in(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for _ in f) - 1


def run(ctx: Context) -> Section:
    seconds, rate = SIZES[ctx.plan.mode]
    table = Table(
        f"Export of a {seconds / 60:g}-minute window ({ZONES} zones x 2 metrics at {rate:g} Hz)",
        ["method", "rows", "seconds", "rows/s", "peak RSS MB", "vs single query"],
    )
    with ctx.prometheus("export") as prom:
        end = time.time() - 1
        start = end - seconds
        ctx.log(f"export: writing {seconds:g} s of {ZONES * 2} series at {rate:g} Hz into Prometheus")
        written = fill(prom.write_url, start, seconds, rate)
        stored = count_stored(prom, [f"{m}{{host='bench'}}" for m in METRICS], seconds + 1, at=end + 0.5)
        ctx.log(f"export: {written} samples written, {stored} stored")
        selector = '{__name__=~"bench_export_.+",host="bench"}'
        common = ["--prometheus", prom.url, "--match", '{host="bench"}', "--quiet"]
        span = ["--start", f"{start:.3f}", "--end", f"{end + 0.5:.3f}"]
        runs = {}
        base_csv = ctx.path("baseline.csv")
        base_args = [prom.url, selector, f"{start - 0.001:.3f}", f"{end + 0.5:.3f}", str(base_csv)]
        runs["single query into memory (baseline)"] = (
            *timed("script", BASELINE, base_args, ctx.path("b.log")),
            base_csv,
        )
        ours_csv = ctx.path("export.csv")
        ours = ["export", *common, *span, "--csv", str(ours_csv)]
        runs["energy-report export"] = (*timed("module", "energy_report", ours, ctx.path("export.log")), ours_csv)
        window = ["window", *common, *span, "--json", str(ctx.path("window.json"))]
        runs["energy-report window (report only)"] = (
            *timed("module", "energy_report", window, ctx.path("window.log")),
            None,
        )
    base_wall, base_rss = runs["single query into memory (baseline)"][:2]
    for name, (wall, rss, status, csv_path) in runs.items():
        if status != 0:
            table.rows.append([name, "failed", fmt(wall, 2), "", fmt(rss, 1), f"exit {status}"])
            continue
        rows = rows_in(csv_path) if csv_path is not None else stored
        ratio = f"{base_wall / wall:.2f}x speed, {rss / base_rss:.2f}x memory"
        table.rows.append([name, f"{rows:,}", fmt(wall, 2), f"{rows / wall:,.0f}", fmt(rss, 1), ratio])
    table.notes.append(
        f"Stored samples in the window (count_over_time): {stored:,}; the window row counts the samples it "
        "read. Each method runs in its own process (Python start-up included); peak RSS is that process's "
        "maximum resident set. Figures from a shared, loaded machine are noisy: compare the ratios."
    )
    method = (__doc__ or "").split("\n\n", 1)[1]
    return Section("export", "energy-report export", method, [table])
