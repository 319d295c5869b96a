"""Recording a window in the time-series store, so the dashboard can show it as an annotation.

While a window is open the series ``energy_report_window{name, host, source="energy-report"}`` holds 1
(written at the start and then every ``heartbeat_s``, so the store's lookback never loses it); at the end it
gets a last 1 and, a millisecond later, 0. Grafana's Prometheus annotations turn the span of non-zero values
into a region. It goes through remote write, the one write path Prometheus, VictoriaMetrics, Mimir and
Thanos share; the protobuf + snappy encoding and the HTTP transport are the base client's
(``monitoring_client``), imported only when recording is asked for, so a laptop install that only reads needs
neither protobuf nor snappy.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from energy_report.errors import EnvironmentProblem, ServerError
from energy_report.server import Connection, read_secret

WINDOW_METRIC = "energy_report_window"
HEARTBEAT_S = 30.0


def _load_base_client() -> tuple[Any, Any, Any]:
    try:
        from monitoring_client.encoder import Encoder, SeriesSamples
        from monitoring_client.http_transport import HttpTransport
    except ImportError:
        raise EnvironmentProblem(
            "--write-url needs the base client's encoder: pip install ./base-monitoring-client (from the repository)"
        ) from None
    return Encoder, SeriesSamples, HttpTransport


def _transport(transport_cls: Any, write_url: str, headers: dict[str, str], conn: Connection) -> Any:
    """The base client's transport with the report's credentials and TLS files (read, and re-read when they
    change, by the base client's own code)."""
    from pathlib import Path

    from monitoring_client.credentials import Credentials, SecretValue
    from monitoring_client.tls import TlsFiles

    def secret(option: str, path: Any) -> Any:
        read_secret(path, option)  # the report's own one-line error for an unreadable file
        return SecretValue(option, path=Path(path))

    if conn.username:
        password = (
            secret("--password-file", conn.password_file)
            if conn.password_file
            else SecretValue("--password-file", value="")
        )
        credentials = Credentials(username=conn.username, password=password)
    elif conn.bearer_token_file:
        credentials = Credentials(token=secret("--bearer-token-file", conn.bearer_token_file))
    else:
        credentials = None
    tls = None
    if write_url.lower().startswith("https://"):
        tls = TlsFiles(
            Path(conn.ca_file) if conn.ca_file else None,
            Path(conn.cert_file) if conn.cert_file else None,
            Path(conn.key_file) if conn.key_file else None,
        )
    return transport_cls(write_url, headers, credentials=credentials, tls=tls)


class WindowRecorder:
    """Writes one window's series; failures become warnings (the report matters more than the mark)."""

    def __init__(
        self,
        write_url: str,
        conn: Connection,
        name: str,
        *,
        host: str | None = None,
        heartbeat_s: float = HEARTBEAT_S,
        clock: Callable[[], float] = time.time,
        timeout_s: float = 10.0,
    ) -> None:
        encoder, samples_cls, transport_cls = _load_base_client()
        self.encoder = encoder()
        self.samples_cls = samples_cls
        headers = {
            "Content-Encoding": "snappy",
            "Content-Type": "application/x-protobuf",
            "X-Prometheus-Remote-Write-Version": "0.1.0",
            "User-Agent": "energy-report",
        }
        self.transport = _transport(transport_cls, write_url, headers, conn)
        self.write_url = write_url
        self.key = (
            ("__name__", WINDOW_METRIC),
            ("host", host or socket.gethostname()),
            ("name", name or "window"),
            ("source", "energy-report"),
        )
        self.heartbeat_s = heartbeat_s
        self.clock = clock
        self.timeout_s = timeout_s
        self.warnings: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_ms = 0

    def _write(self, points: list[tuple[float, float]]) -> None:
        samples = self.samples_cls()
        with self._lock:
            for t, value in points:
                t_ms = max(int(t * 1000), self._last_ms + 1)
                samples.timestamps.append(t_ms)
                samples.values.append(value)
                self._last_ms = t_ms
            try:
                for payload in self.encoder.encode({self.key: samples}):
                    response = self.transport.post(payload.body, self.timeout_s)
                    if not 200 <= response.status < 300:
                        detail = response.body.decode(errors="replace").strip()[:200]
                        raise ServerError(f"HTTP {response.status}: {detail}")
            except Exception as exc:  # noqa: BLE001 - recording is best effort, reported as a warning
                if not self.warnings:  # one warning per window: the first failure says why
                    detail = getattr(exc, "detail", None) or str(exc)
                    self.warnings.append(f"could not record the window at {self.write_url}: {detail}")

    def begin(self, at: float) -> None:
        self._write([(at, 1.0)])
        self._thread = threading.Thread(target=self._beat, name="energy-report-window", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            self._write([(self.clock(), 1.0)])

    def end(self, at: float) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._write([(at, 1.0), (at + 0.001, 0.0)])
        self.transport.close()
