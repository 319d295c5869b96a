"""monitoring_client.http_wire: the request bytes, and every shape of response a receiver may send."""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Iterator

import pytest

from monitoring_client.http_wire import WireError, exchange, host_header, request_head

HEAD = request_head("POST", "/api/v1/write", "127.0.0.1:9090", {"Content-Encoding": "snappy", "User-Agent": "t/1"})


class Server:
    """The other end of a socket pair: reads one request, then sends ``answer`` in pieces (and may close)."""

    def __init__(self, sock: socket.socket, answer: list[bytes], close: bool) -> None:
        self.sock = sock
        self.answer = answer
        self.close = close
        self.request = b""
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while b"\r\n\r\n" not in self.request:
            self.request += self.sock.recv(4096)
        head, _, body = self.request.partition(b"\r\n\r\n")
        length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        while len(body) < length:
            body += self.sock.recv(4096)
        self.request = head + b"\r\n\r\n" + body
        for piece in self.answer:
            self.sock.sendall(piece)
        if self.close:
            self.sock.close()


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    a.settimeout(5)
    yield a, b
    a.close()
    b.close()


def answer(pair: tuple[socket.socket, socket.socket], *pieces: bytes, close: bool = False, body: bytes = b"x") -> tuple:
    server = Server(pair[1], list(pieces), close)
    got = exchange(pair[0], HEAD, body)
    server.thread.join(5)
    return got, server.request


def test_request_is_the_head_the_length_and_the_body(pair: tuple[socket.socket, socket.socket]) -> None:
    got, request = answer(pair, b"HTTP/1.1 204 No Content\r\nDate: now\r\n\r\n", body=b"\x00\x01abc")
    assert request == (
        b"POST /api/v1/write HTTP/1.1\r\nHost: 127.0.0.1:9090\r\nContent-Encoding: snappy\r\nUser-Agent: t/1\r\n"
        b"Content-Length: 5\r\n\r\n\x00\x01abc"
    )
    assert got == (204, None, b"", False)


@pytest.mark.parametrize(
    ("pieces", "expected"),
    [
        (  # Content-Length, the answer split across reads mid-header and mid-body; header names in any case
            [
                b"HTTP/1.1 503 Service Unavailable\r\nretry-AFTER: 7\r\nContent-Le",
                b"ngth: 11\r\n\r\nnot ",
                b"ready\r\n",
            ],
            (503, "7", b"not ready\r\n", False),
        ),
        (  # chunked, with a chunk extension and a trailer
            [
                b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nout \r\n",
                b"C\r\nof order sam\r\n3\r\nple\r\n0\r\nX-Trailer: y\r\n\r\n",
            ],
            (400, None, b"out of order sample", False),
        ),
        (  # an interim response first
            [b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"],
            (200, None, b"ok", False),
        ),
    ],
)
def test_well_formed_answers(pair: tuple[socket.socket, socket.socket], pieces: list[bytes], expected: tuple) -> None:
    got, _ = answer(pair, *pieces)
    assert got == expected


def test_connection_close_and_http10_mean_the_connection_is_done(pair: tuple[socket.socket, socket.socket]) -> None:
    got, _ = answer(pair, b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n", close=True)
    assert got.will_close


def test_http10_body_until_the_connection_ends() -> None:
    for keep_alive in (False, True):
        a, b = socket.socketpair()
        try:
            head = b"HTTP/1.0 200 OK\r\n" + (b"Connection: keep-alive\r\nContent-Length: 5\r\n" if keep_alive else b"")
            got, _ = answer((a, b), head + b"\r\nhello", close=not keep_alive)
            assert got == (200, None, b"hello", not keep_alive)
        finally:
            a.close()
            b.close()


def test_a_long_body_is_cut_and_the_connection_given_up(pair: tuple[socket.socket, socket.socket]) -> None:
    server = Server(pair[1], [b"HTTP/1.1 400 Bad Request\r\nContent-Length: 10\r\n\r\n0123456789"], False)
    got = exchange(pair[0], HEAD, b"x", max_body=4)
    server.thread.join(5)
    assert got == (400, None, b"0123", True)


@pytest.mark.parametrize(
    "response",
    [
        b"SMTP ready\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
)
def test_malformed_responses_raise_wire_error(pair: tuple[socket.socket, socket.socket], response: bytes) -> None:
    with pytest.raises(WireError):
        answer(pair, response, close=True)


def test_connection_ending_early_raises_like_http_client(pair: tuple[socket.socket, socket.socket]) -> None:
    with pytest.raises(http.client.RemoteDisconnected):
        answer(pair, close=True)


def test_connection_ending_inside_the_body_raises_incomplete_read(pair: tuple[socket.socket, socket.socket]) -> None:
    with pytest.raises(http.client.IncompleteRead):
        answer(pair, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", close=True)


def test_no_answer_within_the_timeout_is_a_timeout_error(pair: tuple[socket.socket, socket.socket]) -> None:
    pair[0].settimeout(0.2)
    with pytest.raises(TimeoutError):
        answer(pair)


def test_host_header_and_no_line_breaks_in_headers() -> None:
    assert host_header("prometheus", 80, 80) == "prometheus"
    assert host_header("prometheus", 9090, 80) == "prometheus:9090"
    assert host_header("::1", 9090, 80) == "[::1]:9090"
    with pytest.raises(ValueError, match="line break"):
        request_head("POST", "/", "h", {"X-Bad": "a\r\nInjected: 1"})
