"""What the client does with each answer of the receiver, and with samples the receiver must never see.

Scenarios in the frame of ``scenarios.py`` (the real client with the sequence implementation, a real
Prometheus, the fault proxy where the receiver has to misbehave on purpose), each returning a ``Result``:

- samples stamped two days ago or ten years ahead are never sent (a Prometheus that stored the second
  would refuse every later request), and every good sample beside them arrives;
- a request Prometheus itself refuses for one sample (MAX_SAMPLE_AGE_S off) is split until only that
  sample is dropped;
- 413 and Thanos Receive's 409 are split like 400, nothing is lost;
- refused credentials (401) keep every request until they are accepted again, /healthz says why meanwhile,
  one ERROR line a minute;
- every request refused for good (422) for a while: ERROR lines rate-limited, with counts;
- requests that never get a complete answer in time turn /healthz unhealthy, and nothing is lost.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from testkit import fault_proxy
from testkit.client import MonitoringClient
from testkit.fault_proxy import FaultProxy
from testkit.ports import free_port
from testkit.prometheus import PrometheusServer
from testkit.wait import wait_until

from .harness import METRIC, SeqRun
from .scenarios import FAST_RETRY_ENV, Result, _after_faults, _proxied, _settle


def _dropped(run: SeqRun) -> dict[str, float]:
    return {k: v for k, v in run.self_metric("monitoring_client_samples_dropped_total", by="reason").items() if v}


def _direct(
    workdir: Path,
    prometheus: PrometheusServer,
    env: dict[str, str],
    name: str,
    title: str,
    details: Callable[[SeqRun, MonitoringClient], dict[str, Any]],
    ticks: int = 40,
) -> Result:
    """The client straight to Prometheus for ``ticks`` ticks, then every sample produced must be stored."""
    run = SeqRun(workdir, prometheus, env={**FAST_RETRY_ENV, **env})
    try:
        client = run.start_client()
        run.wait_ticks(ticks, client)
        return _settle(run, client, time.monotonic(), name, title, lambda: details(run, client))
    finally:
        run.cleanup()


def samples_out_of_window(workdir: Path, prometheus: PrometheusServer) -> Result:
    """A sample two days old and one ten years ahead among good ones, straight to Prometheus."""
    return _direct(
        workdir,
        prometheus,
        {"SEQ_ANCIENT_AT_TICK": "15", "SEQ_FUTURE_AT_TICK": "25"},
        "out_of_window",
        "samples 2 days old and 10 years ahead among good ones",
        lambda run, _client: {
            "client_dropped_by_reason": _dropped(run),
            "stored_bad_time_samples": prometheus.count_samples(f"{METRIC}_bad_time"),
            "requests_by_status": run.self_metric("monitoring_client_requests_total", by="status"),
        },
    )


def refused_sample_split(workdir: Path, prometheus: PrometheusServer) -> Result:
    """With MAX_SAMPLE_AGE_S off, a two-day-old sample reaches Prometheus, which refuses its whole request
    (HTTP 400, out of bounds): the request is split until only that sample is dropped."""
    return _direct(
        workdir,
        prometheus,
        {"SEQ_ANCIENT_AT_TICK": "15", "MAX_SAMPLE_AGE_S": "0"},
        "refused_sample_split",
        "Prometheus refuses a request for one sample (400): split until only it is dropped",
        lambda run, client: {
            "client_dropped_by_reason": _dropped(run),
            "requests_by_status": run.self_metric("monitoring_client_requests_total", by="status"),
            "error_lines": [ln.split(": ", 1)[-1][:200] for ln in client.log_text().splitlines() if "ERROR" in ln],
        },
    )


def _statuses(proxy: FaultProxy, run: SeqRun) -> dict[str, Any]:
    return {"client_dropped_by_reason": _dropped(run)}


def too_large_413(workdir: Path, prometheus: PrometheusServer, *, count: int = 3) -> Result:
    """413 three times in a row: the request and then its first halves are refused as too large."""

    def inject(proxy: FaultProxy, run: SeqRun, client: MonitoringClient) -> float:
        proxy.enqueue(*[fault_proxy.status(413, body="request entity too large")] * count)
        return _after_faults(proxy, client)

    return _proxied(
        "status_413", f"413 ({count} in a row): split, every half sent", workdir, prometheus, inject, details=_statuses
    )


def conflict_409(workdir: Path, prometheus: PrometheusServer) -> Result:
    """Thanos Receive's 409 (its answer to out-of-order or out-of-bounds samples) is split like a 400."""

    def inject(proxy: FaultProxy, run: SeqRun, client: MonitoringClient) -> float:
        proxy.enqueue(fault_proxy.status(409, body="conflict: out of bounds (injected)"))
        return _after_faults(proxy, client)

    return _proxied("status_409", "409 (Thanos Receive) on one request", workdir, prometheus, inject, details=_statuses)


def _healthz(port: int) -> str:
    try:
        return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=3).text.strip()
    except requests.RequestException as exc:
        return f"no answer: {exc.__class__.__name__}"


def _watch_health(port: int, seconds: float, client: MonitoringClient) -> list[str]:
    """Distinct /healthz answers seen over ``seconds`` (polled every 0.5 s), in order."""
    seen: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        client.check_alive()
        text = re.sub(r"\d+(\.\d+)?s", "Ns", _healthz(port))
        if not seen or seen[-1] != text:
            seen.append(text)
        time.sleep(0.5)
    return seen


def credentials_refused(workdir: Path, prometheus: PrometheusServer, *, window_s: float = 8.0) -> Result:
    """The receiver answers 401 for ``window_s`` seconds (a wrong password until it is fixed on disk)."""
    port = free_port()
    health: list[str] = []

    def inject(proxy: FaultProxy, run: SeqRun, client: MonitoringClient) -> float:
        proxy.fail_for(window_s, fault_proxy.status(401, body="Unauthorized"))
        health.extend(_watch_health(port, window_s, client))
        wait_until(lambda: proxy.snapshot()[-1].fault == "pass", 30, message="a request passed after the 401 window")
        return max(e.at for e in proxy.snapshot() if e.fault != "pass")

    def details(proxy: FaultProxy, run: SeqRun) -> dict[str, Any]:
        log = run.clients[-1].log_text()
        return {
            "healthz_during": health[:4],
            "credential_error_lines": sum(
                1 for line in log.splitlines() if " ERROR " in line and "credentials" in line
            ),
            "client_dropped_by_reason": _dropped(run),
        }

    title = f"credentials refused (401) for {window_s:g} s, then accepted"
    return _proxied("status_401", title, workdir, prometheus, inject, env={"HEALTH_PORT": str(port)}, details=details)


def refused_for_good(workdir: Path, prometheus: PrometheusServer, *, window_s: float = 10.0) -> Result:
    """Every request refused with 422 for ``window_s`` seconds: those samples are lost (counted), the log
    says so in a few ERROR lines with counts instead of one per request."""
    refused: dict[str, set[int]] = {}

    def inject(proxy: FaultProxy, run: SeqRun, client: MonitoringClient) -> float:
        proxy.fail_for(window_s, fault_proxy.status(422, body="unprocessable (injected)"))
        run.hold(window_s, client)
        wait_until(lambda: proxy.snapshot()[-1].fault == "pass", 30, message="a request passed after the window")
        return max(e.at for e in proxy.snapshot() if e.fault != "pass")

    def excused(proxy: FaultProxy) -> dict[str, set[int]]:
        from .scenarios import decode_sequence_numbers

        for ex in proxy.snapshot():
            if ex.fault == "status_422":
                for k, values in decode_sequence_numbers(ex.body).items():
                    refused.setdefault(k, set()).update(values)
        return refused

    def details(proxy: FaultProxy, run: SeqRun) -> dict[str, Any]:
        lines = [ln for ln in run.clients[-1].log_text().splitlines() if " ERROR " in ln and "refused" in ln]
        return {
            "refused_requests": proxy.count("status_422"),
            "error_lines": len(lines),
            "last_error_line": lines[-1].split(": ", 1)[-1][:160] if lines else "",
            "client_dropped_by_reason": _dropped(run),
        }

    title = f"every request refused for good (422) for {window_s:g} s"
    return _proxied("status_422", title, workdir, prometheus, inject, excused_from=excused, details=details)


def never_answered(workdir: Path, prometheus: PrometheusServer, *, count: int = 4) -> Result:
    """The receiver takes ``count`` requests in a row and answers none within REQUEST_TIMEOUT_S (a hung or
    trickling receiver): /healthz turns unhealthy, then healthy again; nothing is lost."""
    port = free_port()
    health: list[str] = []

    def inject(proxy: FaultProxy, run: SeqRun, client: MonitoringClient) -> float:
        proxy.enqueue(*[fault_proxy.slow(4.0, forward=False)] * count)

        def unhealthy() -> bool:
            client.check_alive()
            text = _healthz(port)
            if "unhealthy" in text:
                health.append(text)
            return bool(health)

        wait_until(unhealthy, 60, interval=0.2, message="/healthz unhealthy while no answer comes")
        end = _after_faults(proxy, client)
        wait_until(lambda: _healthz(port).startswith("ok"), 60, message="/healthz healthy again")
        health.append(_healthz(port))
        return end

    def details(proxy: FaultProxy, run: SeqRun) -> dict[str, Any]:
        return {"healthz": [re.sub(r"\d+(\.\d+)?s", "Ns", h) for h in health[:1] + health[-1:]]}

    title = f"no complete answer within REQUEST_TIMEOUT_S ({count} in a row)"
    env = {"HEALTH_PORT": str(port), "REQUEST_TIMEOUT_S": "1"}
    return _proxied("unanswered", title, workdir, prometheus, inject, env=env, details=details)


def credentials_fixed_on_the_server(
    workdir: Path, _unprotected: PrometheusServer | None = None, *, window_s: float = 8.0
) -> Result:
    """A real Prometheus with basic auth that does not know the client's user at first (401 for every push);
    ``window_s`` later its web config lists the user (Prometheus reads it on every request). The client
    spools meanwhile; every sample must arrive, none twice. (It starts its own protected Prometheus; the
    one the report's frame gives every scenario is not used.)"""
    from testkit.webconfig import write_web_config

    web = Path(workdir) / "web.yml"
    admin = ("reader", "reader-secret-for-tests")
    write_web_config(web, users=dict([admin]))
    with PrometheusServer(Path(workdir) / "prometheus", web_config=web, auth=admin) as prometheus:
        url = prometheus.write_url.replace("http://", "http://pusher:pusher-secret-for-tests@")
        run = SeqRun(workdir, prometheus, env={**FAST_RETRY_ENV, "SPOOL_DIR": str(Path(workdir) / "spool")})
        try:
            client = run.start_client(url)
            run.wait_ticks(20, client)
            run.hold(window_s, client)
            refused_log = client.log_text()
            write_web_config(web, users=dict([admin, ("pusher", "pusher-secret-for-tests")]))
            fixed = time.monotonic()

            def details() -> dict[str, Any]:
                return {
                    "credential_error_lines_while_refused": sum(
                        1 for ln in refused_log.splitlines() if "ERROR" in ln and "credentials" in ln
                    ),
                    "client_dropped_by_reason": _dropped(run),
                    "requests_by_status": run.self_metric("monitoring_client_requests_total", by="status"),
                    "secret_in_log": "pusher-secret-for-tests" in client.log_text(),
                }

            title = f"real Prometheus refuses the credentials (401) for {window_s:g} s, with the spool"
            return _settle(run, client, fixed, "status_401_real", title, details)
        finally:
            run.cleanup()
