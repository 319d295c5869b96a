"""Health state of the pipeline, and the optional HTTP endpoint that serves it (/healthz, /metrics).

"Healthy" means the client is doing its job: pushes succeed, or fail in a way that is being retried
within the buffer's budget. It is unhealthy when data is being lost or cannot be delivered at all:
a pipeline thread has died, the implementation reported a problem (``impl_health``: part of what it
measures is gone), the buffer overflowed (oldest data dropped) within the last ``overflow_grace_s``, or
the receiver refused the last ``max_rejections`` requests in a row (a wrong URL, an authentication
problem). A container healthcheck can then flag or restart it.

The server binds HEALTH_HOST (default 127.0.0.1: reachable by a healthcheck run inside the container,
not from other machines); set HEALTH_HOST=0.0.0.0 to let Prometheus or another container scrape /metrics.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from monitoring_client.impl_health import IMPLEMENTATION_HEALTH, ImplementationHealth

if TYPE_CHECKING:
    from monitoring_client.self_metrics import SelfRegistry

log = logging.getLogger(__name__)


class HealthState:
    """Updated by the sender and the pipeline; read by /healthz. All methods are thread-safe."""

    def __init__(
        self,
        *,
        overflow_grace_s: float = 60.0,
        max_rejections: int = 3,
        clock: Callable[[], float] = time.monotonic,
        implementation: ImplementationHealth = IMPLEMENTATION_HEALTH,
    ) -> None:
        self._clock = clock
        self._implementation = implementation
        self._grace = overflow_grace_s
        self._max_rejections = max_rejections
        self._lock = threading.Lock()
        self._started = clock()
        self._last_success: float | None = None
        self._failing_since: float | None = None
        self._last_error = ""
        self._rejections = 0
        self._last_overflow: float | None = None
        self._dead: str | None = None

    def success(self) -> None:
        with self._lock:
            self._last_success = self._clock()
            self._failing_since = None
            self._rejections = 0

    def retrying(self, error: str) -> None:
        with self._lock:
            if self._failing_since is None:
                self._failing_since = self._clock()
            self._last_error = error

    def rejected(self, error: str) -> None:
        with self._lock:
            self._rejections += 1
            self._last_error = error

    def overflow(self) -> None:
        with self._lock:
            self._last_overflow = self._clock()

    def dead(self, reason: str) -> None:
        with self._lock:
            self._dead = self._dead or reason

    def check(self) -> tuple[bool, str]:
        """(healthy, one-line explanation)."""
        now = self._clock()
        with self._lock:
            if self._dead:
                return False, f"pipeline stopped: {self._dead}"
            problems = self._implementation.problems()
            if problems:
                return False, "implementation reports: " + "; ".join(problems)
            if self._last_overflow is not None and now - self._last_overflow < self._grace:
                return False, (
                    f"buffer full {now - self._last_overflow:.0f}s ago: oldest data dropped;"
                    f" last error: {self._last_error or 'none'}"
                )
            if self._rejections >= self._max_rejections:
                return False, f"receiver refused the last {self._rejections} requests: {self._last_error}"
            if self._failing_since is not None:
                return True, f"retrying for {now - self._failing_since:.0f}s: {self._last_error}"
            if self._last_success is None:
                return True, f"no push yet ({now - self._started:.0f}s since start)"
            return True, f"last push accepted {now - self._last_success:.1f}s ago"


class HealthServer:
    """A tiny threaded HTTP server in a daemon thread; ``stop()`` closes the socket."""

    def __init__(self, host: str, port: int, state: HealthState, registry: SelfRegistry) -> None:
        # Imported here: only a client with HEALTH_PORT set needs an HTTP server (and they take a while).
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/healthz":
                    ok, text = outer.state.check()
                    self._reply(200 if ok else 503, (("ok: " if ok else "unhealthy: ") + text + "\n").encode())
                elif path == "/metrics":
                    self._reply(200, generate_latest(outer.registry), CONTENT_TYPE_LATEST)
                else:
                    self._reply(404, b"not found: try /healthz or /metrics\n")

            def _reply(self, status: int, body: bytes, ctype: str = "text/plain; charset=utf-8") -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                log.debug("health: " + format, *args)

        self.state = state
        self.registry = registry
        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="health", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
