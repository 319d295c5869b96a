"""Fixtures for the base client's tests: a scriptable remote-write receiver on 127.0.0.1.

The receiver is a real HTTP server (http.server in a thread), so the sender's requests, headers, timeouts
and retries go through a real socket; each response is chosen by the test (status, headers, body, delay).
Test helpers are reached through fixtures only (never ``from conftest import``), so the suite works in any
pytest import mode and beside other suites' conftest modules.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
IMPLS = HERE / "impls"
PACKAGE_DIR = HERE.parent


@dataclass
class Reply:
    status: int = 204
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay_s: float = 0.0


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int
    path: str = ""


class Receiver:
    """Answers POSTs with the scripted replies in order, then with ``judge(body)`` when set (a status and a
    body, or None for the default), then with ``default``; records every request."""

    def __init__(self) -> None:
        self.script: list[Reply] = []
        self.default = Reply()
        self.judge: Callable[[bytes], tuple[int, bytes] | None] | None = None
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with outer._lock:
                    verdict = outer.judge(body) if outer.judge is not None and not outer.script else None
                    judged = Reply(verdict[0], {}, verdict[1]) if verdict is not None else None
                    reply = outer.script.pop(0) if outer.script else judged or outer.default
                    outer.requests.append(Received(dict(self.headers), body, reply.status, self.path))
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                try:
                    self.send_response(reply.status)
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except OSError:
                    pass

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/v1/write"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def enqueue(
        self, status: int, *, headers: dict[str, str] | None = None, body: bytes = b"", delay_s: float = 0.0
    ) -> None:
        """Answer the next unanswered request with this reply."""
        with self._lock:
            self.script.append(Reply(status, headers or {}, body, delay_s))

    def set_default(self, status: int, *, body: bytes = b"") -> None:
        """Answer every request beyond the script with this reply."""
        self.default = Reply(status, {}, body)

    def accepted(self) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if 200 <= r.status < 300]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()
