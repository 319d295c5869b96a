"""An HTTP proxy on 127.0.0.1 that misbehaves on purpose, in front of a real receiver.

The reliability suite has to show what the client does when the receiver answers 429 with Retry-After,
503, answers too late, resets the connection or refuses a request with 400. A real Prometheus does not do
those things on demand, and a mock receiver would not store anything, so the test could not count what
arrived. This proxy sits between the client and a real Prometheus: by default it passes every request
through, and the test decides per request (``enqueue``) or for a time window (``fail_for``/``set_mode``)
that requests get a chosen fault instead. It records every exchange, so a test can assert on what was
done (``counts``) and decode what was withheld (``exchanges[i].body``).

Thread based (``http.server``), loopback only, started and stopped by the test.
"""

from __future__ import annotations

import http.client
import io
import socket
import struct
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

# Hop-by-hop headers must not be relayed (RFC 9110 section 7.6.1); Content-Length is recomputed.
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "host",
}


@dataclass(frozen=True)
class Fault:
    """What the proxy does with one request.

    ``kind`` is one of ``pass`` (relay to the upstream), ``status`` (answer ``status`` itself),
    ``slow`` (answer only after ``delay_s``), ``reset`` (drop the connection with a TCP RST), or one of
    the hostile answers: ``trickle`` (the head at once, then one byte of the body every ``delay_s``),
    ``huge_body`` (a body of ``size`` bytes, streamed) and ``endless_chunked`` (a chunked body that never
    ends); these go on until the client hangs up, and ``Exchange.answer_bytes`` says how much it took.
    ``forward`` says whether the request still reaches the upstream first (for all but ``pass`` and
    ``status``): a receiver that stored the data but whose answer never arrived is the case that tempts
    clients into duplicates.
    """

    kind: str
    status: int = 0
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    delay_s: float = 0.0
    forward: bool = False
    size: int = 0

    @property
    def name(self) -> str:
        """Short name used as the key of ``FaultProxy.counts``."""
        if self.kind == "status":
            return f"status_{self.status}"
        return self.kind


PASS = Fault("pass", forward=True)


def status(code: int, *, retry_after: str | None = None, body: bytes | str = b"") -> Fault:
    """Answer ``code`` without forwarding (e.g. 429 with Retry-After, 503, 400 with a reason)."""
    data = body.encode() if isinstance(body, str) else body
    headers = (("Retry-After", retry_after),) if retry_after is not None else ()
    return Fault("status", status=code, headers=headers, body=data, forward=False)


def redirect(code: int, location: str) -> Fault:
    """Answer a redirect (``code`` 301, 302, 307, 308...) to ``location`` without forwarding."""
    return Fault("status", status=code, headers=(("Location", location),), forward=False)


def trickle(interval_s: float = 2.0, *, status: int = 200, forward: bool = True) -> Fault:
    """The answer's head at once, then one byte of its body every ``interval_s`` until the client leaves."""
    return Fault("trickle", status=status, delay_s=interval_s, forward=forward)


def huge_body(size: int = 200 * 1024 * 1024, *, status: int = 500, forward: bool = False) -> Fault:
    """An answer with a body of ``size`` bytes (streamed, never held in memory)."""
    return Fault("huge_body", status=status, size=size, forward=forward)


def endless_chunked(*, status: int = 400, forward: bool = False) -> Fault:
    """A chunked answer whose chunks never end."""
    return Fault("endless_chunked", status=status, forward=forward)


def slow(delay_s: float, *, forward: bool = True) -> Fault:
    """Answer only after ``delay_s`` seconds (longer than the client's timeout to make it give up)."""
    return Fault("slow", delay_s=delay_s, forward=forward)


def reset(*, forward: bool = False) -> Fault:
    """Close the connection with a TCP RST instead of answering."""
    return Fault("reset", forward=forward)


@dataclass
class Exchange:
    """One request the proxy handled: when, what it did, what the upstream said, and the body."""

    at: float
    path: str
    fault: str
    forwarded: bool
    upstream_status: int | None
    body: bytes = field(repr=False)
    headers: tuple[tuple[str, str], ...] = ()  # the request's headers, as received
    answer_bytes: int = 0  # bytes of a hostile answer's body written before the client left


class FaultProxy:
    """Relay to ``upstream`` on a free 127.0.0.1 port, injecting the faults the test asks for."""

    def __init__(
        self,
        upstream: str,
        port: int = 0,
        *,
        clock: Callable[[], float] = time.monotonic,
        upstream_timeout: float = 30.0,
    ) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream must be an http:// URL, got {upstream!r}")
        self.upstream_host = parts.hostname
        self.upstream_port = parts.port or 80
        self._requested_port = port
        self._clock = clock
        self._upstream_timeout = upstream_timeout
        self._lock = threading.Lock()
        self._queue: deque[Fault] = deque()
        self._mode: Fault = PASS
        self._mode_until: float | None = None
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.counts: Counter[str] = Counter()
        self.exchanges: list[Exchange] = []
        self.port = 0

    # -- addresses ---------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def write_url(self) -> str:
        return f"{self.url}/api/v1/write"

    # -- fault control -----------------------------------------------------------------------------
    def enqueue(self, *faults: Fault) -> None:
        """The next requests get these faults, one each, in order; they take precedence over the mode."""
        with self._lock:
            self._queue.extend(faults)

    def set_mode(self, fault: Fault) -> None:
        """Every request from now on gets ``fault`` (``PASS`` restores normal relaying)."""
        with self._lock:
            self._mode, self._mode_until = fault, None

    def fail_for(self, seconds: float, fault: Fault) -> None:
        """Every request in the next ``seconds`` gets ``fault``; afterwards requests pass again."""
        with self._lock:
            self._mode, self._mode_until = fault, self._clock() + seconds

    def pending(self) -> int:
        """How many queued per-request faults have not been used yet."""
        with self._lock:
            return len(self._queue)

    def _next_fault(self) -> Fault:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            if self._mode_until is not None and self._clock() >= self._mode_until:
                self._mode, self._mode_until = PASS, None
            return self._mode

    def _record(self, exchange: Exchange) -> None:
        with self._lock:
            self.exchanges.append(exchange)
            self.counts[exchange.fault] += 1

    def count(self, name: str) -> int:
        """Thread-safe read of one outcome count (``pass``, ``status_429``, ``slow``, ``reset``...)."""
        with self._lock:
            return self.counts[name]

    def snapshot(self) -> list[Exchange]:
        with self._lock:
            return list(self.exchanges)

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> FaultProxy:
        proxy = self

        class Handler(_ProxyHandler):
            owner = proxy

        server = ThreadingHTTPServer(("127.0.0.1", self._requested_port), Handler)
        server.daemon_threads = True
        self._server = server
        self.port = int(server.server_address[1])
        self._stopping.clear()
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fault-proxy", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, wake any request held by a ``slow`` fault, and close the listening socket."""
        self._stopping.set()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- upstream ----------------------------------------------------------------------------------
    def _forward(
        self, method: str, path: str, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=self._upstream_timeout)
        try:
            conn.request(method, path, body=body, headers=dict(headers))
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, [(k, v) for k, v in resp.getheaders() if k.lower() not in _HOP_BY_HOP], data
        finally:
            conn.close()


class _ProxyHandler(BaseHTTPRequestHandler):
    owner: FaultProxy
    protocol_version = "HTTP/1.1"  # keep-alive, as remote-write clients use it

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        """Silence the per-request stderr line; the exchanges list is the record."""

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._handle()

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        self._handle()

    def _handle(self) -> None:
        owner = self.owner
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        fault = owner._next_fault()
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP]

        upstream: tuple[int, list[tuple[str, str]], bytes] | None = None
        if fault.forward:
            try:
                upstream = owner._forward(self.command, self.path, headers, body)
            except OSError as exc:
                # Upstream down: answer like a gateway would, so the client sees a retryable 502.
                upstream = (502, [("Content-Type", "text/plain")], f"upstream unreachable: {exc}\n".encode())
        exchange = Exchange(
            at=owner._clock(),
            path=self.path,
            fault=fault.name,
            forwarded=fault.forward,
            upstream_status=upstream[0] if upstream else None,
            body=body,
            headers=tuple(self.headers.items()),
        )
        owner._record(exchange)

        if fault.kind in _HOSTILE:
            self.close_connection = True
            exchange.answer_bytes = _HOSTILE[fault.kind](self, fault)
            return
        if fault.kind == "reset":
            self._reset()
            return
        if fault.kind == "slow":
            # Held on an event, not a sleep: stop() releases it at once.
            owner._stopping.wait(fault.delay_s)
        if upstream is not None and fault.kind in ("pass", "slow"):
            code, out_headers, data = upstream
        elif fault.kind == "status":
            code, out_headers, data = fault.status, list(fault.headers), fault.body
        else:  # slow without forwarding: the client has long given up; answer something retryable
            code, out_headers, data = 503, [], b"slow fault without forwarding\n"
        try:
            self.send_response(code)
            for key, value in out_headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            self.close_connection = True  # the client hung up (expected after a timeout)

    def _reset(self) -> None:
        """Abort the connection: SO_LINGER 0 makes close() send RST instead of FIN."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            # makefile() objects hold references; the fd only closes once they are gone too.
            self.rfile.close()
            self.wfile.close()
            self.connection.close()
        except OSError:
            pass
        # The server still flushes and closes these after the handler returns: give it harmless ones.
        self.rfile, self.wfile = io.BytesIO(), io.BytesIO()


# -- hostile answers: each writes its head and as much body as the client takes, returns the body bytes --
_CHUNK = 64 * 1024


def _head(handler: _ProxyHandler, fault: Fault, *headers: tuple[str, str]) -> bool:
    try:
        handler.send_response(fault.status)
        for key, value in headers:
            handler.send_header(key, value)
        handler.end_headers()
        return True
    except OSError:
        return False


def _write(handler: _ProxyHandler, data: bytes) -> bool:
    try:
        handler.wfile.write(data)
        handler.wfile.flush()
        return True
    except OSError:
        return False


def _trickle(handler: _ProxyHandler, fault: Fault) -> int:
    sent = 0
    if not _head(handler, fault, ("Content-Length", "1000000")):
        return sent
    # Bounded so that a forgotten fault cannot outlive the test by long; stop() ends it at once.
    for _ in range(int(600 / max(fault.delay_s, 0.01))):
        if handler.owner._stopping.wait(fault.delay_s) or not _write(handler, b"x"):
            break
        sent += 1
    return sent


def _huge_body(handler: _ProxyHandler, fault: Fault) -> int:
    sent = 0
    if not _head(handler, fault, ("Content-Type", "text/plain"), ("Content-Length", str(fault.size))):
        return sent
    chunk = b"E" * _CHUNK
    while sent < fault.size and not handler.owner._stopping.is_set():
        part = chunk[: fault.size - sent]
        if not _write(handler, part):
            break
        sent += len(part)
    return sent


def _endless_chunked(handler: _ProxyHandler, fault: Fault) -> int:
    sent = 0
    if not _head(handler, fault, ("Content-Type", "text/plain"), ("Transfer-Encoding", "chunked")):
        return sent
    chunk = b"%x\r\n%s\r\n" % (_CHUNK, b"C" * _CHUNK)
    while not handler.owner._stopping.is_set() and _write(handler, chunk):
        sent += _CHUNK
    return sent


_HOSTILE: dict[str, Callable[[_ProxyHandler, Fault], int]] = {
    "trickle": _trickle,
    "huge_body": _huge_body,
    "endless_chunked": _endless_chunked,
}
