"""The http.client transport against real local sockets: keep-alive, reconnection, failures, Basic auth."""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from monitoring_client.http_transport import HttpTransport, PostError, describe
from testkit.ports import free_port
from testkit.wait import wait_until

HEADERS = {"Content-Type": "application/x-protobuf"}


class Server:
    """Answers POSTs with 204 (or ``status``), records each request's client port and headers."""

    def __init__(self, idle_timeout_s: float | None = None) -> None:
        self.status = 204
        self.delay_s = 0.0
        self.close_after_reply = False
        self.seen: list[tuple[int, dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = idle_timeout_s  # socket timeout while waiting for the next request on the connection

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.seen.append((self.client_address[1], dict(self.headers), body))
                time.sleep(outer.delay_s)
                try:
                    self.send_response(outer.status)
                    if outer.status == 429:
                        self.send_header("Retry-After", "7")
                    reply = b"" if outer.status < 300 else b"err: too many\nsecond line"
                    self.send_header("Content-Length", str(len(reply)))
                    if outer.close_after_reply:
                        self.send_header("Connection", "close")
                        self.close_connection = True
                    self.end_headers()
                    self.wfile.write(reply)
                except OSError:
                    pass

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/api/v1/write"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.stop()


def test_posts_reuse_one_connection(server: Server) -> None:
    transport = HttpTransport(server.url, HEADERS)
    for i in range(3):
        response = transport.post(b"body%d" % i, timeout=2)
        assert response.status == 204
    assert [body for _, _, body in server.seen] == [b"body0", b"body1", b"body2"]
    assert len({port for port, _, _ in server.seen}) == 1
    assert transport.connections == 1


def test_a_connection_the_server_closed_is_replaced_without_an_error(server: Server) -> None:
    transport = HttpTransport(server.url, HEADERS)
    server.close_after_reply = True
    assert transport.post(b"a", timeout=2).status == 204
    server.close_after_reply = False
    assert transport.post(b"b", timeout=2).status == 204
    assert transport.connections == 2


def test_an_idle_connection_closed_by_the_server_is_noticed_before_reuse() -> None:
    server = Server(idle_timeout_s=0.2)  # closes a kept-alive connection after 0.2 s without a request
    try:
        transport = HttpTransport(server.url, HEADERS)
        assert transport.post(b"a", timeout=2).status == 204
        sock = transport._conn.sock if transport._conn else None
        assert sock is not None
        wait_until(lambda: _readable(sock), 5, message="server closed the idle connection")
        assert transport.post(b"b", timeout=2).status == 204  # not a broken pipe: a new connection
        assert transport.connections == 2
    finally:
        server.stop()


def _readable(sock: socket.socket) -> bool:
    return bool(select.select([sock], [], [], 0)[0])


def test_status_retry_after_and_body_are_returned(server: Server) -> None:
    server.status = 429
    response = HttpTransport(server.url, HEADERS).post(b"x", timeout=2)
    assert (response.status, response.retry_after) == (429, "7")
    assert response.body.startswith(b"err: too many")


def test_refused_connection_was_never_sent() -> None:
    port = free_port()
    with pytest.raises(PostError) as caught:
        HttpTransport(f"http://127.0.0.1:{port}/w", HEADERS).post(b"x", timeout=2)
    assert caught.value.kind == "error" and caught.value.never_sent
    assert caught.value.detail == "ConnectionError: [Errno 111] Connection refused"


def test_no_answer_in_time_is_a_timeout_that_may_have_been_stored(server: Server) -> None:
    server.delay_s = 1.0
    transport = HttpTransport(server.url, HEADERS)
    with pytest.raises(PostError) as caught:
        transport.post(b"x", timeout=0.2)
    assert caught.value.kind == "timeout" and not caught.value.never_sent
    assert "0.2s" in caught.value.detail
    server.delay_s = 0.0
    assert transport.post(b"y", timeout=2).status == 204  # a fresh connection after the timeout


def test_user_and_password_in_the_url_become_basic_auth(server: Server) -> None:
    url = server.url.replace("http://", "http://writer:s%40cret@")
    HttpTransport(url, HEADERS).post(b"x", timeout=2)
    assert server.seen[0][1]["Authorization"] == "Basic d3JpdGVyOnNAY3JldA=="  # writer:s@cret


def test_describe_keeps_one_short_line() -> None:
    assert describe(ConnectionRefusedError(111, "Connection refused")) == (
        "ConnectionError: [Errno 111] Connection refused"
    )
    assert describe(OSError("first\nsecond")) == "ConnectionError: first"
