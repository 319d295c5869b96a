"""Health state of the pipeline, and the optional HTTP endpoint that serves it (/healthz, /metrics).

"Healthy" means the client is doing its job: pushes succeed, or fail in a way that is being retried
within the buffer's budget. It is unhealthy when data is being lost or cannot be delivered at all:
a pipeline thread has died, the implementation reported a problem (``impl_health``: part of what it
measures is gone), the buffer overflowed (oldest data dropped) within the last ``overflow_grace_s``, the
receiver refused the last ``max_rejections`` requests in a row (a wrong URL), refuses the client's
credentials (kept and retried until they are fixed), or the sender makes no progress: one request (or the
work on one) has lasted longer than ``stuck_after_s``, or the last ``max_rejections`` requests reached the
receiver and got no complete answer within REQUEST_TIMEOUT_S (a receiver that hangs or trickles its
answer). A container healthcheck can then flag or restart it.

The server binds HEALTH_HOST (default 127.0.0.1: reachable by a healthcheck run inside the container,
not from other machines); set HEALTH_HOST=0.0.0.0 to let Prometheus or another container scrape /metrics.
It holds at most ``MAX_CONNECTIONS`` connections (a new one closes the oldest idle one) and gives a
client ``IDLE_TIMEOUT_S`` between two reads, so a flood of connections that never send a request can
neither exhaust the file descriptors the pipeline needs (spool files, the receiver's connection) nor keep a
healthcheck from being answered.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from monitoring_client.impl_health import IMPLEMENTATION_HEALTH, ImplementationHealth

if TYPE_CHECKING:
    from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

# Connections the health endpoint holds at once; a new one beyond that closes the oldest.
MAX_CONNECTIONS = 16
# Seconds a connection may stay silent (before its request is complete, or while it is read).
IDLE_TIMEOUT_S = 2.0
# Longest wait in stop() for the serving thread to return.
STOP_WAIT_S = 2.0


class HealthState:
    """Updated by the sender and the pipeline; read by /healthz. All methods are thread-safe."""

    def __init__(
        self,
        *,
        overflow_grace_s: float = 60.0,
        max_rejections: int = 3,
        stuck_after_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        implementation: ImplementationHealth = IMPLEMENTATION_HEALTH,
    ) -> None:
        self._clock = clock
        self._implementation = implementation
        self._grace = overflow_grace_s
        self._max_rejections = max_rejections
        self._stuck_after = stuck_after_s
        self._busy_since: float | None = None
        self._unanswered = 0
        self._credentials_refused: str | None = None
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
            self._unanswered = 0
            self._credentials_refused = None

    def retrying(self, error: str, *, unanswered: bool = False) -> None:
        """A failed attempt that will be retried; ``unanswered``: the request reached the receiver and no
        complete answer came within the timeout."""
        with self._lock:
            if self._failing_since is None:
                self._failing_since = self._clock()
            self._last_error = error
            self._unanswered = self._unanswered + 1 if unanswered else 0

    def rejected(self, error: str) -> None:
        with self._lock:
            self._rejections += 1
            self._unanswered = 0
            self._last_error = error

    def credentials_refused(self, error: str) -> None:
        """The receiver refuses the client's credentials (401/403): unhealthy until a request is accepted."""
        with self._lock:
            self._credentials_refused = error
            self._unanswered = 0

    def sender_busy(self) -> None:
        """The sender starts working on one payload (a request, a split)."""
        with self._lock:
            self._busy_since = self._clock()

    def sender_idle(self) -> None:
        with self._lock:
            self._busy_since = None

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
            if self._busy_since is not None and now - self._busy_since > self._stuck_after:
                return False, (
                    f"sender stuck: one request has been in progress for {now - self._busy_since:.0f}s;"
                    f" last error: {self._last_error or 'none'}"
                )
            if self._credentials_refused is not None:
                return False, f"receiver refuses the client's credentials (requests kept): {self._credentials_refused}"
            if self._unanswered >= self._max_rejections:
                return False, (
                    f"no progress: the last {self._unanswered} requests got no complete answer in time:"
                    f" {self._last_error}"
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

    def __init__(
        self,
        host: str,
        port: int,
        state: HealthState,
        registry: Collector,
        *,
        max_connections: int = MAX_CONNECTIONS,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
    ) -> None:
        # Imported here: only a client with HEALTH_PORT set needs an HTTP server (and they take a while).
        from http.server import BaseHTTPRequestHandler

        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        from monitoring_client.health_connections import BoundedHTTPServer

        outer = self

        class Handler(BaseHTTPRequestHandler):
            timeout = idle_timeout_s  # applied to the socket: a silent client is let go

            def parse_request(self) -> bool:
                outer._server.request_arrived(self.request)
                return super().parse_request()

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
        self._server = BoundedHTTPServer((host, port), Handler, max_connections)
        self._stopping = False
        self._thread = threading.Thread(target=self._serve, name="health", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def open_connections(self, *, answering: bool = False) -> int:
        """Connections held right now (at most ``max_connections``); ``answering``: only those whose request
        arrived."""
        return self._server.open_connections(answering=answering)

    def start(self) -> None:
        self._thread.start()

    def _serve(self) -> None:
        # Blocks in select until a connection arrives: no wake-ups while nobody asks (serve_forever polls
        # its stop flag every poll_interval, ten times a second at 0.1 s, in every container that sets
        # HEALTH_PORT). stop() wakes it by shutting the listening socket down.
        server = self._server
        while not self._stopping:
            server.handle_request()

    def stop(self) -> None:
        self._stopping = True
        try:
            self._server.socket.shutdown(socket.SHUT_RDWR)  # select returns, accept fails: the loop ends
        except OSError:
            pass
        if self._thread.is_alive():
            self._thread.join(STOP_WAIT_S)
        self._server.server_close()
