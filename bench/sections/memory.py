"""Client memory: RSS in steady state at 10 Hz, during a receiver outage and after it.

One cpu-pyjoules client (behind the counting probe) samples the 4-zone tree at 10 Hz into a real
Prometheus. RSS (VmRSS from /proc) is read every second: the steady figure is the median after start-up;
then Prometheus is stopped (by its PID) for the outage, while the client keeps sampling and buffers what
it cannot send; then Prometheus is started again on the same port and data directory, the client sends its
backlog, and RSS is read again. Finally the client gets SIGTERM and Prometheus is asked whether every sample
produced, including the ones taken during the outage, was stored.
"""

from __future__ import annotations

import math
import statistics
import time

from bench.context import CPU_TREE, Context
from bench.measure import count_stored, fmt, read_probe_records
from bench.procfs import rss_bytes
from bench.report import Section, Table
from bench.sections.common import METHODS, make_client
from testkit.wait import wait_until

RATE_HZ = 10.0


def _sample_rss(pid: int, seconds: float, out: list[float]) -> None:
    end = time.monotonic() + seconds
    while True:
        out.append(rss_bytes(pid) / 1e6)
        left = end - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(1.0, left))


def run(ctx: Context) -> Section:
    plan = ctx.plan
    method = METHODS["ours"]
    host = "memory-10hz"
    with ctx.fake_tree("memory", CPU_TREE, update_ms=5.0) as fake, ctx.prometheus("memory") as prom:
        started = time.time()
        steady: list[float] = []
        outage: list[float] = []
        after: list[float] = []
        with make_client(ctx, prom, fake, method, host, RATE_HZ, probe=True).running() as run:
            pid = run.client.require_pid()
            _sample_rss(pid, plan.mem_steady_s, steady)
            ctx.log(
                f"memory: steady RSS {statistics.median(steady):.1f} MB; stopping Prometheus for {plan.mem_outage_s:g}s"
            )
            prom.stop()
            outage_start = time.time()
            _sample_rss(pid, plan.mem_outage_s, outage)
            prom.start()
            recovered_at = time.time()
            ctx.log(f"memory: Prometheus back after {recovered_at - outage_start:.0f}s; waiting for the backlog")
            # The client sends in order, oldest first: once a sample taken after the restart is stored,
            # the whole backlog before it has been delivered.
            mark = recovered_at + 0.5

            def backlog_delivered() -> bool:
                run.client.check_alive()
                return time.time() > mark and count_stored(prom, method.selector(host), time.time() - mark) > 0

            wait_until(backlog_delivered, max(60.0, plan.mem_outage_s / 5), interval=0.5, message="backlog delivered")
            caught_up_s = time.time() - recovered_at
            _sample_rss(pid, plan.mem_after_s, after)
        rc = run.rc
        produced = read_probe_records(run.probe_file("records"))
        stored = count_stored(prom, method.data(f'host="{host}"'), time.time() - started + 120, at=time.time() + 60)
        peak_buf = prom.query(
            f'max_over_time(monitoring_client_buffered_bytes{{host="{host}"}}[{int(time.time() - started) + 60}s])'
        )
        max_buffered = float(peak_buf[0]["value"][1]) if peak_buf else float("nan")
    table = Table(
        f"Client RSS at {RATE_HZ:g} Hz (MB)",
        [
            "steady (median)",
            f"end of {plan.mem_outage_s:g} s outage",
            "peak during outage",
            "after catch-up (median)",
            "peak buffered (self-metric)",
            "stored / produced",
            "exit",
        ],
    )
    table.rows.append(
        [
            fmt(statistics.median(steady)),
            fmt(outage[-1]),
            fmt(max(outage)),
            fmt(statistics.median(after)),
            f"{max_buffered / 1e6:.2f} MB" if math.isfinite(max_buffered) else "n/a",
            f"{stored:,} / {produced:,}",
            str(rc),
        ]
    )
    table.notes.append(
        f"Backlog delivered {caught_up_s:.0f} s after Prometheus came back. Steady = {len(steady)} readings over"
        f" {plan.mem_steady_s:g} s after the first push."
    )
    steady_mb = statistics.median(steady)
    targets = [
        ("steady RSS < 60 MB", f"{steady_mb:.1f} MB", steady_mb < 60),
        (
            f"no loss across a {plan.mem_outage_s:g} s outage at 10 Hz",
            f"{stored:,} / {produced:,} stored",
            stored == produced,
        ),
    ]
    return Section("memory", "Client memory and a receiver outage", __doc__.split("\n", 1)[1], [table], targets)
