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
    assert got == (204, None, b"", False, None)


@pytest.mark.parametrize(
    ("pieces", "expected"),
    [
        (  # Content-Length, the answer split across reads mid-header and mid-body; header names in any case
            [
                b"HTTP/1.1 503 Service Unavailable\r\nretry-AFTER: 7\r\nContent-Le",
                b"ngth: 11\r\n\r\nnot ",
                b"ready\r\n",
            ],
            (503, "7", b"not ready\r\n", False, None),
        ),
        (  # chunked, with a chunk extension and a trailer
            [
                b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nout \r\n",
                b"C\r\nof order sam\r\n3\r\nple\r\n0\r\nX-Trailer: y\r\n\r\n",
            ],
            (400, None, b"out of order sample", False, None),
        ),
        (  # an interim response first
            [b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"],
            (200, None, b"ok", False, None),
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
            assert got == (200, None, b"hello", not keep_alive, None)
        finally:
            a.close()
            b.close()


def test_a_long_body_is_cut_and_the_connection_given_up(pair: tuple[socket.socket, socket.socket]) -> None:
    server = Server(pair[1], [b"HTTP/1.1 400 Bad Request\r\nContent-Length: 10\r\n\r\n0123456789"], False)
    got = exchange(pair[0], HEAD, b"x", max_body=4)
    server.thread.join(5)
    assert got == (400, None, b"0123", True, None)


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
    with pytest.raises(ValueError, match="line break") as caught:
        request_head("POST", "/", "h", {"X-Bad": "secret\r\nInjected: 1"})
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize(
    ("target", "headers"),
    [("/a b", {}), ("/\x7f", {}), ("/\u00e9", {}), ("/", {"Bad:Name": "v"}), ("/", {"X": "\u20ac"})],
    ids=["blank-in-target", "control-in-target", "non-ascii-target", "bad-header-name", "non-latin1-value"],
)
def test_what_http_client_refuses_to_write_is_refused(target: str, headers: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        request_head("POST", target, "h", headers)


def test_location_is_returned(pair: tuple[socket.socket, socket.socket]) -> None:
    got, _ = answer(pair, b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /other\r\nContent-Length: 0\r\n\r\n")
    assert (got.status, got.location, got.will_close) == (307, "/other", False)


def test_a_long_chunked_body_is_not_read_past_the_bound(pair: tuple[socket.socket, socket.socket]) -> None:
    """The reader stops after ``max_body`` bytes instead of reading to the end (which may never come)."""
    head = b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n"
    server = Server(pair[1], [head + b"6\r\nabcdef\r\n6\r\nghijkl\r\n"], False)  # no last chunk: never ends
    got = exchange(pair[0], HEAD, b"x", max_body=8)
    server.thread.join(5)
    assert (got.status, got.body, got.will_close) == (400, b"abcdefgh", True)


def test_an_answer_trickled_past_the_deadline_is_a_timeout(pair: tuple[socket.socket, socket.socket]) -> None:
    """Each byte comes in time for the socket's own timeout, but the deadline bounds the whole answer."""
    stop = threading.Event()

    def trickle() -> None:
        server = Server(pair[1], [b"HTTP/1.1 200 OK\r\nX-Slow: "], False)
        server.thread.join(5)
        while not stop.wait(0.05):
            try:
                pair[1].sendall(b"x")
            except OSError:
                return

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    clock = [0.0]

    def fake_clock() -> float:  # advances 0.1 s per socket call: the deadline passes after a few reads
        clock[0] += 0.1
        return clock[0]

    try:
        with pytest.raises(TimeoutError):
            exchange(pair[0], HEAD, b"x", deadline=1.0, clock=fake_clock)
    finally:
        stop.set()
        thread.join(5)
