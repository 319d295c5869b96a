"""A real VictoriaMetrics single-node server on 127.0.0.1, the stack's growth path past one Prometheus.

The client speaks remote write 1.0 to any receiver; only the real binary (Debian package
``victoria-metrics``) shows that VictoriaMetrics stores every sample, with and without its basic auth
(``-httpAuth.*``, which protects every endpoint). Same shape as ``PrometheusServer``: a free loopback port,
its own data directory, stopped by the PID it started, the same query helpers. Samples become searchable
at once here: ``-search.latencyOffset=0s`` and a flush before each query.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from testkit.ports import free_port
from testkit.process import ManagedProcess, find_binary
from testkit.promql import QueryServer, loopback_session


def start_until_healthy(server: QueryServer, timeout: float) -> None:
    """Start ``server``'s process (unless it runs) and wait until its /health answers 200 through its session;
    stop it again if it does not."""
    if server.process.alive():
        return
    server.process.start()
    try:
        server.process.wait_ready(
            lambda: server.session.get(f"{server.url}/health", timeout=1).status_code == 200,
            timeout,
            f"ready on {server.url}",
            interval=0.1,
        )
    except BaseException:
        server.stop()
        raise


def find_victoria_metrics(binary: str | None = None) -> str | None:
    """The binary: explicit argument, then $VICTORIA_METRICS_BIN, then ``victoria-metrics`` on PATH."""
    return find_binary(binary, "VICTORIA_METRICS_BIN", "victoria-metrics")


class VictoriaMetricsServer(QueryServer):
    """One VictoriaMetrics process; ``flags`` are added to (and override) the defaults; ``auth`` (user,
    password) turns on its basic auth for every endpoint (the query helpers use it)."""

    def __init__(
        self,
        workdir: Path,
        flags: Sequence[str] = (),
        *,
        auth: tuple[str, str] | None = None,
        port: int | None = None,
        binary: str | None = None,
    ) -> None:
        found = find_victoria_metrics(binary)
        if found is None:
            raise FileNotFoundError(
                "no victoria-metrics binary: install it (apt-get install victoria-metrics) or set VICTORIA_METRICS_BIN"
            )
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.write_url = f"{self.url}/api/v1/write"
        self.session = loopback_session(auth)
        argv = [
            found,
            f"-httpListenAddr=127.0.0.1:{self.port}",
            f"-storageDataPath={self.workdir / 'data'}",
            "-retentionPeriod=1d",
            "-search.latencyOffset=0s",
            "-search.disableCache",
            "-loggerLevel=WARN",
            *flags,  # given later, they win over the defaults above
        ]
        if auth is not None:
            argv += [f"-httpAuth.username={auth[0]}", f"-httpAuth.password={auth[1]}"]
        self.process = ManagedProcess(argv, self.workdir / "victoria-metrics.log", name="victoria-metrics")

    def start(self, timeout: float = 30) -> None:
        """Start the binary and wait until /health answers (with the credentials, if any)."""
        start_until_healthy(self, timeout)

    def flush(self) -> None:
        """Make just-written samples searchable at once (they are otherwise buffered for about a second)."""
        self.session.get(f"{self.url}/internal/force_flush", timeout=10).raise_for_status()

    def before_query(self) -> None:
        self.flush()

    def series(self, selector: str) -> list[dict[str, str]]:
        """The label sets of the series matching ``selector``, from /api/v1/series."""
        resp = self.session.get(f"{self.url}/api/v1/series", params={"match[]": selector}, timeout=10)
        resp.raise_for_status()
        return list(resp.json()["data"])


class VmAuth(QueryServer):
    """``vmauth`` (also in the ``victoria-metrics`` package), the authenticating proxy that fronts a
    VictoriaMetrics single node or cluster: ``users`` in its config format (e.g. ``username``, ``password``,
    ``url_prefix``), on a free loopback port. Its query helpers log in as ``auth`` (user, password)."""

    def __init__(
        self,
        workdir: Path,
        users: Sequence[Mapping[str, Any]],
        *,
        auth: tuple[str, str] | None = None,
        port: int | None = None,
    ) -> None:
        found = find_binary(None, "VMAUTH_BIN", "vmauth")
        if found is None:
            raise FileNotFoundError("no vmauth binary: install it (apt-get install victoria-metrics) or set VMAUTH_BIN")
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.session = loopback_session(auth)
        config = self.workdir / "vmauth.yml"
        config.write_text(json.dumps({"users": [dict(user) for user in users]}, indent=2) + "\n")  # JSON is YAML
        argv = [found, f"-auth.config={config}", f"-httpListenAddr=127.0.0.1:{self.port}", "-loggerLevel=WARN"]
        self.process = ManagedProcess(argv, self.workdir / "vmauth.log", name="vmauth")

    def start(self, timeout: float = 30) -> None:
        start_until_healthy(self, timeout)
