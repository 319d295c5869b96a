"""The health endpoint's HTTP server, with a bound on the connections it holds.

A plain ``ThreadingHTTPServer`` takes every connection and keeps a thread and a file descriptor for each
until the peer speaks: a flood of silent connections would exhaust the descriptors the pipeline needs
(spool files, the receiver's connection) and keep a healthcheck from being answered. Imported only by
``health.HealthServer``, so a client without HEALTH_PORT never loads ``http.server``.
"""

from __future__ import annotations

import socket
import threading
from http.server import ThreadingHTTPServer
from typing import Any


class BoundedHTTPServer(ThreadingHTTPServer):
    """A threaded HTTP server that holds at most ``max_connections`` connections: a new one beyond that
    shuts down the oldest that has not sent its request yet (or the oldest of all), whose thread then ends
    and closes it. A healthcheck, which sends its request at once, is answered even during a flood."""

    daemon_threads = True
    request_queue_size = 64  # a burst waits in the kernel's queue, not in file descriptors of ours

    def __init__(self, address: tuple[str, int], handler: Any, max_connections: int) -> None:
        self.max_connections = max_connections
        self._open: dict[socket.socket, bool] = {}  # connection -> its request arrived; oldest first
        self._open_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            while len(self._open) >= self.max_connections:
                victim = next((conn for conn, busy in self._open.items() if not busy), next(iter(self._open)))
                del self._open[victim]
                try:
                    victim.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self._open[request] = False
        super().process_request(request, client_address)

    def request_arrived(self, request: Any) -> None:
        """The connection sent a whole request line: it is answered, not evicted, while others are idle."""
        with self._open_lock:
            if request in self._open:
                self._open[request] = True

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.pop(request, None)
        super().shutdown_request(request)

    def open_connections(self, *, answering: bool = False) -> int:
        with self._open_lock:
            return sum(1 for busy in self._open.values() if busy) if answering else len(self._open)
