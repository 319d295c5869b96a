"""A real Prometheus server on 127.0.0.1 for integration tests and benchmarks.

The project's promise is "every sample arrives in Prometheus", which only a real Prometheus can confirm:
its remote-write receiver rejects out-of-order samples, invalid names and malformed payloads in ways a mock
would not. This module starts the real binary on a free loopback port with its own data directory, and
stops it by the PID it started, so tests never touch anything else running on the machine.

Optionally the server is protected like a production one (``web_config``: basic auth and/or TLS, see
testkit.webconfig) and loads alerting rules (``rule_files``); the query helpers then carry the same
credentials and CA as a client would.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from testkit.ports import free_port
from testkit.process import ManagedProcess, find_binary
from testkit.promql import QueryServer, SeriesKey, loopback_session

__all__ = ["PrometheusServer", "SeriesKey", "find_prometheus"]


def find_prometheus(binary: str | None = None) -> str | None:
    """Locate the Prometheus binary: explicit argument, then $PROMETHEUS_BIN, then PATH."""
    return find_binary(binary, "PROMETHEUS_BIN", "prometheus")


class PrometheusServer(QueryServer):
    """One Prometheus process; ``stop()`` then ``start()`` restarts it on the same port and data.

    ``web_config`` is passed as ``--web.config.file``; with TLS in it give ``ca_file`` (the URLs become
    https), with basic auth give ``auth`` (user, password), with client certificates ``client_cert``
    (cert, key): the readiness check and the query helpers use them, and so can a test (``session``).
    """

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        out_of_order_window: str | None = None,
        binary: str | None = None,
        *,
        web_config: Path | None = None,
        auth: tuple[str, str] | None = None,
        ca_file: Path | None = None,
        client_cert: tuple[Path, Path] | None = None,
        rule_files: Sequence[Path] = (),
        evaluation_interval: str = "15s",
    ) -> None:
        found = find_prometheus(binary)
        if found is None:
            raise FileNotFoundError(
                "no Prometheus binary: install it (apt-get install prometheus) or set PROMETHEUS_BIN"
            )
        self.binary = found
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.out_of_order_window = out_of_order_window
        self.web_config = web_config
        self.rule_files = [Path(f) for f in rule_files]
        self.evaluation_interval = evaluation_interval
        scheme = "https" if ca_file is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.write_url = f"{self.url}/api/v1/write"
        self.session = loopback_session(auth, ca_file, client_cert)
        self.config_path = self.workdir / "prometheus.yml"
        self.process = ManagedProcess(self._argv(), self.workdir / "prometheus.log", name="prometheus")

    def _argv(self) -> list[str]:
        args = [
            self.binary,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--web.enable-remote-write-receiver",
            "--storage.tsdb.retention.time=1d",
        ]
        if self.web_config is not None:
            args.append(f"--web.config.file={self.web_config}")
        return args

    def _write_config(self) -> None:
        lines = ["global:", "  scrape_interval: 15s", f"  evaluation_interval: {self.evaluation_interval}"]
        if self.out_of_order_window:
            lines += ["storage:", "  tsdb:", f"    out_of_order_time_window: {self.out_of_order_window}"]
        if self.rule_files:
            lines += ["rule_files:", *(f"  - {path.resolve()}" for path in self.rule_files)]
        self.config_path.write_text("\n".join(lines) + "\n")

    def start(self, timeout: float = 30) -> None:
        """Start the binary and wait until /-/ready answers; fail with the server's log if it dies."""
        if self.process.alive():
            return
        self._write_config()
        self.process.start()

        def ready() -> bool:
            if self.session.get(f"{self.url}/-/ready", timeout=1).status_code != 200:
                return False
            # Another server may already hold the port: only our own config path proves it is ours.
            flags = self.session.get(f"{self.url}/api/v1/status/flags", timeout=1).json()["data"]
            return bool(flags.get("config.file") == str(self.config_path))

        try:
            self.process.wait_ready(ready, timeout, f"ready on {self.url}", interval=0.1)
        except BaseException:
            self.stop()
            raise

    def alerts(self) -> list[dict[str, Any]]:
        """The alerts Prometheus holds now (pending and firing), from /api/v1/alerts."""
        body = self.session.get(f"{self.url}/api/v1/alerts", timeout=10).json()
        return list(body["data"]["alerts"])
