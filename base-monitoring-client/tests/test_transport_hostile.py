"""The transport against receivers that misbehave on purpose: one deadline for the whole exchange, a bounded
answer, an answer given before the request was read."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hostile_server import Behaviour, Conn, HostileServer

from monitoring_client.http_transport import MAX_ANSWER_BYTES, HttpTransport, PostError
from testkit.wait import wait_until

HEADERS = {"Content-Type": "application/x-protobuf"}
BIG = 200 * 1024 * 1024


@pytest.fixture
def servers() -> Iterator[list[HostileServer]]:
    started: list[HostileServer] = []
    yield started
    for server in started:
        server.stop()


def serve(servers: list[HostileServer], behave: object, **kw: object) -> HostileServer:
    server = HostileServer(behave, **kw)  # type: ignore[arg-type]
    servers.append(server)
    return server


def trickle(head: bytes) -> Behaviour:
    """``head`` at once, then one more byte every 0.2 s for up to a minute."""

    def behave(conn: Conn, request: bytes, body: bytes) -> bool:
        conn.send(head)
        for _ in range(300):
            if conn.server.stopping.wait(0.2) or not conn.send(b"x"):
                return False
        return False

    return behave


# The body trickled after complete headers; the headers themselves trickled, never ending.
trickle_body = trickle(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
trickle_headers = trickle(b"HTTP/1.1 200 OK\r\nX-Slow: ")


def huge_body(conn: Conn, head: bytes, body: bytes) -> bool:
    """An error answer announcing 200 MB, streamed until the client goes."""
    conn.send(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: %d\r\n\r\nerror: " % BIG)
    chunk = b"A" * 65536
    for _ in range(BIG // len(chunk)):
        if conn.server.stopping.is_set() or not conn.send(chunk):
            return False
    return False


def endless_chunked(conn: Conn, head: bytes, body: bytes) -> bool:
    """A chunked answer that never ends."""
    conn.send(b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n%s\r\n" % (65536, b"B" * 65536)
    while not conn.server.stopping.is_set():
        if not conn.send(chunk):
            return False
    return False


def test_a_body_trickled_after_the_headers_ends_at_the_timeout(servers: list[HostileServer]) -> None:
    server = serve(servers, trickle_body)
    transport = HttpTransport(server.url, HEADERS)
    with pytest.raises(PostError) as caught:
        transport.post(b"x", timeout=1.0)
    assert caught.value.kind == "timeout" and not caught.value.never_sent
    assert not server.behaviour_done.is_set(), "the client gave up while the receiver was still trickling"
    wait_until(server.client_left.is_set, 10, message="the connection was dropped")


def test_headers_trickled_forever_end_at_the_timeout(servers: list[HostileServer]) -> None:
    server = serve(servers, trickle_headers)
    with pytest.raises(PostError) as caught:
        HttpTransport(server.url, HEADERS).post(b"x", timeout=1.0)
    assert caught.value.kind == "timeout"
    assert not server.behaviour_done.is_set()


def test_a_receiver_that_never_reads_the_request_cannot_hold_the_sender(servers: list[HostileServer]) -> None:
    def never_answer(conn: Conn, head: bytes, body: bytes) -> bool:
        conn.server.stopping.wait(60)
        return False

    server = serve(servers, never_answer, read_body=False)
    with pytest.raises(PostError) as caught:
        HttpTransport(server.url, HEADERS).post(b"z" * (32 * 1024 * 1024), timeout=1.0)  # more than socket buffers
    assert caught.value.kind == "timeout"


@pytest.mark.parametrize("behave", [huge_body, endless_chunked], ids=["200MB-body", "endless-chunked"])
def test_only_a_bounded_prefix_of_an_answer_is_read(servers: list[HostileServer], behave: object) -> None:
    server = serve(servers, behave)
    transport = HttpTransport(server.url, HEADERS)
    response = transport.post(b"x", timeout=10)
    assert response.status in (400, 500)
    assert 0 < len(response.body) <= MAX_ANSWER_BYTES
    assert response.message().startswith(f"HTTP {response.status}: ")
    assert len(response.message()) < 400
    # The connection is dropped rather than read further: the receiver sees the client leave long before
    # the end of what it wanted to send.
    wait_until(server.client_left.is_set, 20, message="the client dropped the connection")
    assert server.sent < BIG // 4
    assert transport._conn is None


def test_an_answer_given_before_the_request_was_read_is_returned(servers: list[HostileServer]) -> None:
    """A proxy that refuses a large request at once (413) and closes: the answer counts, not the broken pipe."""

    def refuse_early(conn: Conn, head: bytes, body: bytes) -> bool:
        conn.send(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 9\r\nConnection: close\r\n\r\ntoo large")
        conn.server.stopping.wait(2)  # let the client read it before the socket goes
        return False

    server = serve(servers, refuse_early, read_body=False)
    response = HttpTransport(server.url, HEADERS).post(b"y" * (16 * 1024 * 1024), timeout=10)
    assert response.status == 413
    assert response.message() == "HTTP 413: too large"


def test_keep_alive_still_works_after_small_answers(servers: list[HostileServer]) -> None:
    def small(conn: Conn, head: bytes, body: bytes) -> bool:
        conn.send(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 5\r\n\r\nnope\n")
        return True

    server = serve(servers, small)
    transport = HttpTransport(server.url, HEADERS)
    assert [transport.post(b"a", timeout=5).status for _ in range(3)] == [400, 400, 400]
    assert transport.connections == 1


def test_a_control_character_in_an_answer_cannot_forge_a_log_line(servers: list[HostileServer]) -> None:
    def forge(conn: Conn, head: bytes, body: bytes) -> bool:
        text = b"bad\r2024-01-01 ERROR forged line\x1b[31m"
        conn.send(b"HTTP/1.1 400 Bad Request\r\nContent-Length: %d\r\n\r\n%s" % (len(text), text))
        return True

    server = serve(servers, forge)
    message = HttpTransport(server.url, HEADERS).post(b"a", timeout=5).message()
    assert "\r" not in message and "\x1b" not in message
