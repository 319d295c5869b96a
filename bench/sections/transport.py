"""What TLS and authentication cost per push: plain HTTP against TLS, TLS + basic auth and mutual TLS.

For each way of securing it, a real Prometheus is started with the matching web config (TLS from a CA made
with openssl for the run, bcrypt basic auth, client certificates required). The client's own transport,
built from the settings exactly as the client builds it (``transport_setup.build_transport``), then POSTs
a series of realistic requests back to back: one second of cpu-pyjoules at 10 Hz on 8 zones (240 samples,
fresh timestamps each, encoded beforehand so only the exchange is timed). Measured in this process: CPU
per request (``time.process_time``, one thread) and wall time per request; from the transport: connections
opened (keep-alive reuse); from /proc: Prometheus' CPU per request. Each mode runs twice: over
the kept-alive connection, as the client does, and with a new connection for every request, which shows
what reuse saves (the TCP and TLS handshakes). The baseline is plain HTTP over a kept-alive connection, in
the same run.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.context import Context
from bench.measure import fmt
from bench.procfs import cpu_seconds
from bench.report import Section, Table
from testkit.prometheus import PrometheusServer
from testkit.webconfig import Pki, make_pki, write_web_config

USER = "bench-pusher"
PASSWORD = "bench-only-password-3f9"  # a throwaway server's, for this run only
ZONES = 8
SAMPLES_PER_SERIES = 10


@dataclass(frozen=True)
class Mode:
    name: str
    tls: bool = False
    basic: bool = False
    mtls: bool = False


MODES = (
    Mode("plain HTTP"),
    Mode("TLS", tls=True),
    Mode("TLS + basic auth", tls=True, basic=True),
    Mode("mutual TLS", tls=True, mtls=True),
)


@contextmanager
def _server(ctx: Context, mode: Mode, pki: Pki) -> Iterator[PrometheusServer]:
    web = None
    if mode.tls or mode.basic:
        web = write_web_config(
            ctx.path("web.yml"),
            users={USER: PASSWORD} if mode.basic else None,
            tls=pki.server if mode.tls else None,
            client_ca=pki.ca.cert if mode.mtls else None,
        )
    server = PrometheusServer(
        ctx.path("prometheus-transport"),
        web_config=web,
        auth=(USER, PASSWORD) if mode.basic else None,
        ca_file=pki.ca.cert if mode.tls else None,
        client_cert=(pki.client.cert, pki.client.key) if mode.mtls else None,
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _settings(mode: Mode, server: PrometheusServer, pki: Pki, secrets: Path) -> dict[str, str]:
    env = {"REMOTE_WRITE_URL": server.write_url, "HOST_LABEL": "bench-transport"}
    if mode.tls:
        env["REMOTE_WRITE_CA_FILE"] = str(pki.ca.cert)
    if mode.basic:
        secrets.write_text(PASSWORD + "\n")
        env.update(REMOTE_WRITE_USERNAME=USER, REMOTE_WRITE_PASSWORD_FILE=str(secrets))
    if mode.mtls:
        env.update(REMOTE_WRITE_CERT_FILE=str(pki.client.cert), REMOTE_WRITE_KEY_FILE=str(pki.client.key))
    return env


def _bodies(count: int, series_offset: int) -> list[bytes]:
    """``count`` requests of one second of 8-zone samples each, consecutive in time."""
    from monitoring_client.encoder import Encoder, SeriesSamples

    encoder = Encoder()
    start_ms = int(time.time() * 1000) - (count + 5) * 1000
    keys = [
        (("__name__", f"bench_transport_{metric}"), ("host", "bench-transport"), ("zone", f"z{series_offset + z}"))
        for z in range(ZONES)
        for metric in ("energy_uj", "power_watts", "energy_joules_total")
    ]
    bodies = []
    for i in range(count):
        stamps = [start_ms + i * 1000 + k * 100 for k in range(SAMPLES_PER_SERIES)]
        groups = {key: SeriesSamples(list(stamps), [float(i * 10 + k) for k in range(10)]) for key in keys}
        bodies.extend(p.body for p in encoder.encode(groups))
    return bodies


def _measure(ctx: Context, mode: Mode, pki: Pki, requests: int, reuse: bool, offset: int) -> dict[str, float]:
    from monitoring_client.config import load_config
    from monitoring_client.transport_setup import build_transport

    with _server(ctx, mode, pki) as server:
        transport = build_transport(load_config(_settings(mode, server, pki, ctx.path("password"))))
        bodies = _bodies(requests + 3, offset)
        for body in bodies[:3]:  # warm-up: first connection, imports, server caches
            transport.post(body, timeout=10)
        transport.close()
        opened = transport.connections
        walls = []
        prom_pid = server.process.require_pid()
        prom_cpu0 = cpu_seconds(prom_pid)
        cpu0 = time.process_time()
        for body in bodies[3:]:
            t0 = time.perf_counter()
            status = transport.post(body, timeout=10).status
            walls.append(time.perf_counter() - t0)
            if status // 100 != 2:
                raise RuntimeError(f"{mode.name}: HTTP {status}")
            if not reuse:
                transport.close()
        cpu = time.process_time() - cpu0
        prom_cpu = cpu_seconds(prom_pid) - prom_cpu0
        stored = server.count_samples("bench_transport_power_watts", window="2h")
    return {
        "cpu_us": cpu / requests * 1e6,
        "wall_ms": statistics.median(walls) * 1000,
        "connections": transport.connections - opened,
        "prom_cpu_us": prom_cpu / requests * 1e6,
        "stored_ok": float(stored >= requests * ZONES * SAMPLES_PER_SERIES),
    }


def run(ctx: Context) -> Section:
    requests = ctx.plan.transport_requests
    pki = make_pki(ctx.path("pki"))
    results: list[tuple[Mode, bool, dict[str, float]]] = []
    for n, mode in enumerate(MODES):
        for reuse in (True, False):
            ctx.log(f"transport: {mode.name}, {'kept-alive connection' if reuse else 'new connection per request'}")
            results.append((mode, reuse, _measure(ctx, mode, pki, requests, reuse, offset=n * 100 + reuse * 50)))
    base = results[0][2]["cpu_us"]
    table = Table(
        f"Cost per push by transport security ({requests} requests of {ZONES * 3 * SAMPLES_PER_SERIES} samples each)",
        [
            "security",
            "connection",
            "client CPU per request (µs)",
            "ratio to plain kept-alive",
            "wall per request p50 (ms)",
            "connections opened",
            "Prometheus CPU per request (µs)",
            "all stored",
        ],
    )
    for mode, reuse, r in results:
        table.rows.append(
            [
                mode.name,
                "kept alive" if reuse else "new each time",
                fmt(r["cpu_us"], 0),
                f"{r['cpu_us'] / base:.2f}x",
                fmt(r["wall_ms"], 2),
                f"{int(r['connections'])} for {requests}",
                fmt(r["prom_cpu_us"], 0),
                "yes" if r["stored_ok"] else "NO",
            ]
        )
    table.notes.append(
        "Requests go back to back (the client sends one per PUSH_INTERVAL_S, 1 s by default), so the CPU"
        " figures are per push; wall time includes Prometheus storing the samples on the same 2 cores."
    )
    worst = max(r["cpu_us"] for _, reuse, r in results if reuse) / base
    target = "TLS with auth over a kept-alive connection costs the client at most 2x plain HTTP per push"
    measured = f"{worst:.2f}x (worst secured mode, kept alive)"
    title = "Transport security: TLS and authentication per push"
    return Section("transport", title, __doc__.split("\n", 1)[1], [table], [(target, measured, worst <= 2.0)])
