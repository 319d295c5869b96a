"""What the receiver suites share: certificates, a protected Prometheus, a run of the sequence client that
must store every sample, and whether this base client keeps requests refused for their credentials."""

from __future__ import annotations

from pathlib import Path

from testkit.client import MonitoringClient
from testkit.prometheus import PrometheusServer
from testkit.promql import QueryApi
from testkit.webconfig import Pki, write_web_config

from ..reliability.harness import SeqRun, Tally

USER = "pusher"
PASSWORD = "Pw-only-for-tests-7d41c"


def secured_prometheus(workdir: Path, pki: Pki, *, basic: bool, tls: bool, mtls: bool) -> PrometheusServer:
    """A Prometheus whose write and query endpoints want what is asked (the test's own queries carry it)."""
    web = write_web_config(
        workdir / "web.yml",
        users={USER: PASSWORD} if basic else None,
        tls=pki.server if tls else None,
        client_ca=pki.ca.cert if mtls else None,
    )
    return PrometheusServer(
        workdir / "prometheus",
        web_config=web,
        auth=(USER, PASSWORD) if basic else None,
        ca_file=pki.ca.cert if tls else None,
        client_cert=(pki.client.cert, pki.client.key) if mtls else None,
    )


def password_file(directory: Path, password: str = PASSWORD) -> Path:
    path = directory / "password"
    directory.mkdir(parents=True, exist_ok=True)
    path.write_text(password + "\n")
    path.chmod(0o600)
    return path


def run_to_completion(run: SeqRun, client: MonitoringClient, ticks: int = 30, timeout: float = 90) -> Tally:
    """Let ``ticks`` ticks be produced and stored, stop the client with SIGTERM (it sends what it holds) and
    count: the caller asserts nothing is lost or duplicated."""
    run.wait_ticks(ticks, client)
    run.wait_stored_through(run.ticks(), timeout=timeout, client=client)
    status = client.stop(20, must_exit=True)
    assert status == 0, client.log_tail()
    return run.tally()


def assert_all_stored(tally: Tally, client: MonitoringClient) -> None:
    summary = f"{tally}\n{client.log_tail()}"
    assert tally.produced > 0 and tally.lost == 0 and tally.duplicated == 0, summary
    assert tally.stored == tally.produced and not tally.out_of_order_series, summary


def seq_run(workdir: Path, server: QueryApi, **env: str) -> SeqRun:
    return SeqRun(workdir, server, env={"RETRY_BASE_S": "0.2", "RETRY_MAX_S": "2", **env})  # type: ignore[arg-type]


def complete_run(workdir: Path, server: QueryApi, url: str | None = None, **env: str) -> tuple[Tally, MonitoringClient]:
    """A whole run of the sequence client pushing to ``url`` (default: the server's own write URL)."""
    run = seq_run(workdir, server, **env)
    try:
        client = run.start_client(url)
        return run_to_completion(run, client), client
    finally:
        run.cleanup()
