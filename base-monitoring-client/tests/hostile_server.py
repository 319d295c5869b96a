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
from dataclasses import dataclass, field

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


@dataclass
class HostileServer:
    behave: Behaviour
    read_body: bool = True
    sent: int = 0
    requests: list[tuple[bytes, bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    client_left: threading.Event = field(default_factory=threading.Event)
    behaviour_done: threading.Event = field(default_factory=threading.Event)
    stopping: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}/api/v1/write"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        reader = sock.makefile("rb")
        try:
            while not self.stopping.is_set():
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = reader.readline(65536)
                    if not line:
                        return
                    head += line
                length = 0
                for line in head.split(b"\r\n"):
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

    def stop(self) -> None:
        self.stopping.set()
        self.listener.close()

    def heads(self) -> list[bytes]:
        with self.lock:
            return [head for head, _ in self.requests]
