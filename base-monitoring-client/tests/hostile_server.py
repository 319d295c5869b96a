"""A raw HTTP/1.1 server on 127.0.0.1 whose answers a test scripts byte by byte, for the transport's tests.

``http.server`` cannot trickle an answer, stream one forever or answer before reading the request: this
one reads each request's head (and its body, unless told not to) and hands the socket to the test's
``behave(sock, head, body) -> bool`` (True: keep the connection for the next request). Everything a
behaviour writes goes through ``send``, which counts the bytes and notices when the client has left.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

Behaviour = Callable[["Conn", bytes, bytes], bool]


@dataclass
class Conn:
    sock: socket.socket
    server: HostileServer

    def send(self, data: bytes) -> bool:
        """Write ``data``; False once the client has gone (the behaviour should stop)."""
        try:
            self.sock.sendall(data)
        except OSError:
            self.server.client_left.set()
            return False
        with self.server.lock:
            self.server.sent += len(data)
        return True


class LoopbackServer:
    """Accepts connections on a free 127.0.0.1 port and serves each in its own thread (``serve``)."""

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(sock,), daemon=True).start()

    def serve(self, sock: socket.socket) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        self.stopping.set()
        self.listener.close()


def read_head(reader: BinaryIO) -> list[bytes]:
    """The lines of one request head (the blank line last), or [] when the client closed."""
    lines: list[bytes] = []
    while not lines or lines[-1] != b"\r\n":
        line = reader.readline(65536)
        if not line:
            return []
        lines.append(line)
    return lines


class HostileServer(LoopbackServer):
    """Hands each request to ``behave``; ``read_body=False`` leaves the request body unread."""

    def __init__(self, behave: Behaviour, read_body: bool = True) -> None:
        self.behave = behave
        self.read_body = read_body
        self.sent = 0
        self.requests: list[tuple[bytes, bytes]] = []
        self.lock = threading.Lock()
        self.client_left = threading.Event()
        self.behaviour_done = threading.Event()
        super().__init__()
        self.url = f"http://127.0.0.1:{self.port}/api/v1/write"

    def serve(self, sock: socket.socket) -> None:
        reader = sock.makefile("rb")
        try:
            while not self.stopping.is_set():
                lines = read_head(reader)
                if not lines:
                    return
                head = b"".join(lines)
                length = 0
                for line in lines:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = reader.read(length) if self.read_body and length else b""
                with self.lock:
                    self.requests.append((head, body))
                keep = self.behave(Conn(sock, self), head, body)
                self.behaviour_done.set()
                if not keep:
                    return
        except OSError:
            return
        finally:
            reader.close()
            sock.close()

    def heads(self) -> list[bytes]:
        with self.lock:
            return [head for head, _ in self.requests]
