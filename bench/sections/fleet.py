"""A fleet of clients into one Prometheus: loss, CPU per client, Prometheus CPU.

N cpu-pyjoules clients (real ``monitoring-client`` processes behind the counting probe) sample one shared
fake tree (one socket, 4 zones, updated every 5 ms) at 10 Hz, each with its own ``HOST_LABEL``, all pushing
to one fresh Prometheus. Once every client's data has arrived and after a warm-up, CPU of every client and
of Prometheus is read from /proc over a fixed window; RSS of every client at its end. Then all clients get
SIGTERM at once, and Prometheus is asked how many samples it stored for each host, against the records
each client's implementation produced.
"""

from __future__ import annotations

import statistics
import time

from bench.context import CPU_TREE, Context
from bench.measure import count_stored, fmt, read_probe_records
from bench.procfs import CpuWindow, rss_bytes
from bench.report import Section, Table
from bench.sections.common import METHODS, make_client, stop_all, wait_for_data

RATE_HZ = 10.0


def run(ctx: Context) -> Section:
    plan = ctx.plan
    method = METHODS["ours"]
    table = Table(
        f"Fleet at {RATE_HZ:g} Hz, 4 zones per client, one Prometheus",
        [
            "clients",
            "produced",
            "stored",
            "stored / produced",
            "clients with loss",
            "CPU per client (% of a core)",
            "CPU per client tick (µs)",
            "Prometheus CPU (% of a core)",
            "client RSS mean / max (MB)",
            "exit 0",
        ],
    )
    targets: list[tuple[str, str, bool | None]] = []
    with ctx.fake_tree("fleet", CPU_TREE, update_ms=5.0) as fake:
        for n in plan.fleet_sizes:
            with ctx.prometheus(f"fleet{n}") as prom:
                runs = [
                    make_client(ctx, prom, fake, method, f"fleet{n}-{i:03d}", RATE_HZ, probe=True) for i in range(n)
                ]
                clients = [run.client for run in runs]
                started = time.time()
                ctx.log(f"fleet: starting {n} clients")
                for client in clients:
                    client.start()
                try:
                    wait_for_data(prom, clients, [method.selector(c.host) for c in clients], timeout=60 + 1.0 * n)
                    ctx.log(f"fleet: all {n} clients pushing after {time.time() - started:.1f}s")
                    time.sleep(plan.fleet_warmup_s)
                    pids = [c.require_pid() for c in clients]
                    window = CpuWindow([*pids, prom.process.require_pid()])
                    window.begin(time.time())
                    time.sleep(plan.fleet_window_s)
                    window.end(time.time())
                    rss = [rss_bytes(pid) / 1e6 for pid in pids]
                finally:
                    codes = stop_all(clients)
                cpu = window.per_pid()
                client_cpu = [cpu[pid] for pid in pids]
                prom_cpu = cpu[window.pids[-1]]
                produced = {run.client.host: read_probe_records(run.probe_file("records")) for run in runs}
                stored = count_stored(
                    prom,
                    method.data(f'host=~"fleet{n}-.*"'),
                    time.time() - started + 120,
                    by="host",
                    at=time.time() + 60,
                )
                lossy = sum(1 for h, p in produced.items() if stored.get(h, 0) != p)
                total_p, total_s = sum(produced.values()), sum(stored.get(h, 0) for h in produced)
                cpu_mean = statistics.mean(client_cpu)
                ctx.log(f"fleet {n}: stored {total_s}/{total_p}, {lossy} lossy, exits {sorted(set(codes), key=str)}")
                table.rows.append(
                    [
                        str(n),
                        f"{total_p:,}",
                        f"{total_s:,}",
                        f"{100 * total_s / total_p:.3f}%" if total_p else "n/a",
                        str(lossy),
                        fmt(100 * cpu_mean / window.seconds, 2),
                        fmt(1e6 * cpu_mean / (window.seconds * RATE_HZ)),
                        fmt(100 * prom_cpu / window.seconds, 1),
                        f"{statistics.mean(rss):.1f} / {max(rss):.1f}",
                        f"{codes.count(0)}/{n}",
                    ]
                )
                if n == max(plan.fleet_sizes):
                    targets.append(
                        (
                            f"{n}-client fleet with zero loss",
                            f"{total_s:,} / {total_p:,} stored, {lossy} clients with loss",
                            (lossy == 0 and total_p > 0) if n >= 100 else None,
                        )
                    )
    table.notes.append(
        "CPU per client tick = a client's CPU over the window / the ticks it was due in it (fixed costs"
        " included). All clients and Prometheus share this machine's cores."
    )
    return Section("fleet", "Fleet load", __doc__.split("\n", 1)[1], [table], targets)
