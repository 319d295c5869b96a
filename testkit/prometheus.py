"""A real Prometheus server on 127.0.0.1 for integration tests and benchmarks.

The project's promise is "every sample arrives in Prometheus", which only a real Prometheus can confirm:
its remote-write receiver rejects out-of-order samples, invalid names and malformed payloads in ways a mock
would not. This module starts the real binary on a free loopback port with its own data directory, and
stops it by the PID it started, so tests never touch anything else running on the machine.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import requests

from testkit.ports import free_port
from testkit.wait import GiveUp, wait_until

SeriesKey = tuple[tuple[str, str], ...]


def find_prometheus(binary: str | None = None) -> str | None:
    """Locate the Prometheus binary: explicit argument, then $PROMETHEUS_BIN, then PATH."""
    candidate = binary or os.environ.get("PROMETHEUS_BIN") or "prometheus"
    if os.path.sep in candidate:
        return candidate if os.access(candidate, os.X_OK) else None
    return shutil.which(candidate)


class PrometheusServer:
    """One Prometheus process; ``stop()`` then ``start()`` restarts it on the same port and data."""

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        out_of_order_window: str | None = None,
        binary: str | None = None,
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
        self.url = f"http://127.0.0.1:{self.port}"
        self.write_url = f"{self.url}/api/v1/write"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = self.workdir / "prometheus.log"
        self._session = requests.Session()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc and self._proc.poll() is None else None

    def _write_config(self) -> Path:
        lines = ["global:", "  scrape_interval: 15s"]
        if self.out_of_order_window:
            lines += ["storage:", "  tsdb:", f"    out_of_order_time_window: {self.out_of_order_window}"]
        path = self.workdir / "prometheus.yml"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start(self, timeout: float = 30) -> None:
        """Start the binary and wait until /-/ready answers; fail with the server's log if it dies."""
        if self.pid is not None:
            return
        config = self._write_config()
        args = [
            self.binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--web.enable-remote-write-receiver",
            "--storage.tsdb.retention.time=1d",
        ]
        log = open(self._log, "ab")  # noqa: SIM115 - handed to the child, closed with it
        try:
            self._proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            log.close()

        def ready() -> bool:
            if self._proc is not None and self._proc.poll() is not None:
                raise GiveUp(f"prometheus exited with {self._proc.returncode}:\n{self.log_tail()}")
            if self._session.get(f"{self.url}/-/ready", timeout=1).status_code != 200:
                return False
            # Another server may already hold the port: only our own config path proves it is ours.
            flags = self._session.get(f"{self.url}/api/v1/status/flags", timeout=1).json()["data"]
            return bool(flags.get("config.file") == str(config))

        try:
            wait_until(ready, timeout, interval=0.1, message=f"prometheus ready on {self.url}")
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM the process this object started (by PID), SIGKILL it if it will not go."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        """Instant query; returns ``data.result`` (raises on an API error so tests see the reason)."""
        params: dict[str, Any] = {"query": promql}
        if at is not None:
            params["time"] = at
        resp = self._session.get(f"{self.url}/api/v1/query", params=params, timeout=10)
        body = resp.json()
        if body.get("status") != "success":
            raise RuntimeError(f"query {promql!r} failed: {body.get('error', resp.text)}")
        return list(body["data"]["result"])

    def raw_samples(self, selector: str, window: str = "1h") -> dict[SeriesKey, list[tuple[int, float]]]:
        """Every stored sample of every series matching ``selector`` within ``window`` before now."""
        out: dict[SeriesKey, list[tuple[int, float]]] = {}
        for series in self.query(f"{selector}[{window}]", at=time.time() + 60):
            key = tuple(sorted(series["metric"].items()))
            out[key] = [(round(float(ts) * 1000), float(value)) for ts, value in series.get("values", [])]
        return out

    def count_samples(self, selector: str, window: str = "1h") -> int:
        return sum(len(v) for v in self.raw_samples(selector, window).values())

    def __enter__(self) -> PrometheusServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._session.close()
