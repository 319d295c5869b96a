"""Client memory under label churn: 500 new series on every tick at 10 Hz, against the same load without churn.

Two clients run at the same time over the same seconds, each with its own implementation
(`bench/churn_impl.py`): one whose label values never repeat (500 new series per tick, 5,000 a second, what
an implementation does with a request id in a label) and the baseline, the same 500 samples per tick in
series that repeat. Both push to a receiver in this process that accepts every request and keeps nothing
(a Prometheus would itself grow by millions of series, which is not what is measured here). RSS (VmRSS
from /proc) is read every few seconds. The client remembers at most 2 x MAX_SERIES series (default 10,000
each generation): the churning client's memory must grow to that bound in its first seconds and then stay
flat however long it runs.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bench import REPO
from bench.context import Context
from bench.procfs import rss_bytes
from bench.report import Section, Table
from bench.sections.common import client_env, stop_all
from testkit.client import MonitoringClient

IMPL = REPO / "bench" / "churn_impl.py"
SERIES_PER_TICK = 500
RATE_HZ = 10.0
# Growth allowed from the end of the first minute (or first fifth of a short run) to the end of the run.
FLAT_GROWTH = 0.10


class _Sink(BaseHTTPRequestHandler):
    """Accepts every remote-write request and keeps nothing."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


@contextmanager
def sink() -> Iterator[str]:
    """A write URL on 127.0.0.1 that accepts and forgets."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/v1/write"
    finally:
        server.shutdown()
        server.server_close()


def run(ctx: Context) -> Section:
    seconds = ctx.plan.churn_s
    warm = min(60.0, seconds / 5)
    readings: dict[str, list[tuple[float, float]]] = {"churn": [], "steady": []}
    with sink() as url:
        clients = {}
        for kind in readings:
            env = client_env(
                write_url=url,
                impl=IMPL,
                powercap_root=ctx.workdir,
                interval_s=1.0 / RATE_HZ,
                host=f"churn-{kind}",
                plan_env=ctx.plan.client_env,
                extra={"CHURN_SERIES": str(SERIES_PER_TICK), "CHURN_STEADY": "1" if kind == "steady" else "0"},
            )
            clients[kind] = MonitoringClient(env, ctx.path(f"churn-{kind}.log"), name=f"churn-{kind}").start()
        try:
            started = time.monotonic()
            ctx.log(f"churn: two clients for {seconds:g}s ({SERIES_PER_TICK} series per tick at {RATE_HZ:g} Hz)")
            while (elapsed := time.monotonic() - started) < seconds:
                for kind, client in clients.items():
                    readings[kind].append((elapsed, rss_bytes(client.require_pid()) / 1e6))
                time.sleep(min(5.0, max(seconds / 40, 0.2)))
        finally:
            rcs = stop_all(list(clients.values()))
    span = f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"
    table = Table(
        f"Label churn: client RSS (MB) over {span} at {RATE_HZ:g} Hz, {SERIES_PER_TICK} samples per tick",
        [
            "client",
            "series created (at 10 Hz)",
            f"after {warm:g} s",
            "at the end",
            "highest",
            "growth after warm-up",
            "exit",
        ],
    )
    growth: dict[str, float] = {}
    for (kind, series), rc in zip(readings.items(), rcs, strict=True):
        early = statistics.median(mb for t, mb in series if t >= warm * 0.8 and t <= warm * 1.2) if series else 0.0
        end = statistics.median(mb for _, mb in series[-3:])
        growth[kind] = (end - early) / early if early else float("nan")
        created = int(seconds * RATE_HZ * SERIES_PER_TICK) if kind == "churn" else SERIES_PER_TICK
        table.rows.append(
            [
                "new series every tick" if kind == "churn" else "baseline: the same series every tick",
                f"{created:,}",
                f"{early:.1f}",
                f"{end:.1f}",
                f"{max(mb for _, mb in series):.1f}",
                f"{growth[kind] * 100:+.1f}%",
                str(rc),
            ]
        )
    table.notes.append(f"RSS read {len(readings['churn'])} times per client; medians of nearby readings.")
    # A run shorter than a minute ends before the client's per-series memory reaches its bound: no verdict.
    targets = [
        (
            f"RSS flat under {span} of churn ({SERIES_PER_TICK} new series per tick):"
            f" growth after warm-up <= {FLAT_GROWTH:.0%}",
            f"{growth['churn'] * 100:+.1f}% (baseline {growth['steady'] * 100:+.1f}%)",
            growth["churn"] <= FLAT_GROWTH if seconds >= 60 else None,
        )
    ]
    return Section("churn", "Client memory under label churn", __doc__.split("\n", 1)[1], [table], targets)
