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
import ssl
import threading
import time
from base64 import b64encode
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
        if conn.username:
            password = read_secret(conn.password_file, "--password-file") if conn.password_file else ""
            headers["Authorization"] = "Basic " + b64encode(f"{conn.username}:{password}".encode()).decode()
        elif conn.bearer_token_file:
            headers["Authorization"] = "Bearer " + read_secret(conn.bearer_token_file, "--bearer-token-file")
        context = None
        if write_url.lower().startswith("https://"):
            context = ssl.create_default_context(cafile=str(conn.ca_file) if conn.ca_file else None)
            if conn.cert_file and conn.key_file:
                context.load_cert_chain(str(conn.cert_file), str(conn.key_file))
        self.transport = transport_cls(write_url, headers, ssl_context=context)
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
