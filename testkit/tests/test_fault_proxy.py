"""The fault proxy: if it injected the wrong fault or relayed wrongly, the reliability suite would lie."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from testkit import fault_proxy
from testkit.fault_proxy import PASS, FaultProxy
from testkit.wait import wait_until


class _Upstream:
    """A tiny receiver that records bodies and answers 204, like Prometheus's remote-write endpoint."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                owner.bodies.append(body)
                self.send_response(204)
                self.send_header("X-Upstream", "yes")
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def upstream() -> Iterator[_Upstream]:
    server = _Upstream()
    yield server
    server.close()


class _FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_passes_through_by_default(upstream: _Upstream) -> None:
    with FaultProxy(upstream.url) as proxy, requests.Session() as session:
        for i in range(3):
            resp = session.post(proxy.write_url, data=f"body-{i}".encode(), timeout=5)
            assert resp.status_code == 204
            assert resp.headers["X-Upstream"] == "yes"
    assert upstream.bodies == [b"body-0", b"body-1", b"body-2"]
    assert proxy.counts == {"pass": 3}
    assert [e.upstream_status for e in proxy.exchanges] == [204, 204, 204]


def test_queued_faults_apply_once_each_in_order(upstream: _Upstream) -> None:
    with FaultProxy(upstream.url) as proxy, requests.Session() as session:
        proxy.enqueue(
            fault_proxy.status(429, retry_after="7"),
            fault_proxy.status(503),
            fault_proxy.status(400, body="out of order sample"),
        )
        answers = [session.post(proxy.write_url, data=b"x", timeout=5) for _ in range(4)]
    assert [r.status_code for r in answers] == [429, 503, 400, 204]
    assert answers[0].headers["Retry-After"] == "7"
    assert answers[2].text == "out of order sample"
    assert proxy.counts == {"status_429": 1, "status_503": 1, "status_400": 1, "pass": 1}
    assert len(upstream.bodies) == 1, "a status fault must not reach the upstream"
    assert proxy.pending() == 0


def test_time_window_ends_on_its_clock(upstream: _Upstream) -> None:
    clock = _FakeClock()
    with FaultProxy(upstream.url, clock=clock) as proxy, requests.Session() as session:
        proxy.fail_for(60, fault_proxy.status(503))
        assert session.post(proxy.write_url, data=b"a", timeout=5).status_code == 503
        clock.now += 59.9
        assert session.post(proxy.write_url, data=b"b", timeout=5).status_code == 503
        clock.now += 0.2
        assert session.post(proxy.write_url, data=b"c", timeout=5).status_code == 204
        proxy.set_mode(fault_proxy.status(500))
        clock.now += 1e6
        assert session.post(proxy.write_url, data=b"d", timeout=5).status_code == 500
        proxy.set_mode(PASS)
        assert session.post(proxy.write_url, data=b"e", timeout=5).status_code == 204
    assert upstream.bodies == [b"c", b"e"]
    assert [e.at for e in proxy.exchanges][:3] == [1000.0, 1059.9, pytest.approx(1060.1)]


def test_slow_answer_times_the_client_out_after_forwarding(upstream: _Upstream) -> None:
    with FaultProxy(upstream.url) as proxy:
        proxy.enqueue(fault_proxy.slow(30))
        with pytest.raises(requests.Timeout):
            requests.post(proxy.write_url, data=b"late", timeout=0.3)
        assert upstream.bodies == [b"late"], "forwarded before the delay: the receiver stored it"
        started = time.monotonic()
    # stop() released the held request instead of waiting out its 30 s.
    assert time.monotonic() - started < 10
    assert proxy.counts == {"slow": 1}


def test_slow_without_forwarding_keeps_the_upstream_untouched(upstream: _Upstream) -> None:
    with FaultProxy(upstream.url) as proxy:
        proxy.enqueue(fault_proxy.slow(30, forward=False))
        with pytest.raises(requests.Timeout):
            requests.post(proxy.write_url, data=b"late", timeout=0.3)
    assert upstream.bodies == []
    assert proxy.exchanges[0].forwarded is False


def test_reset_is_a_connection_error(upstream: _Upstream) -> None:
    with FaultProxy(upstream.url) as proxy, requests.Session() as session:
        proxy.enqueue(fault_proxy.reset(), fault_proxy.reset(forward=True))
        for _ in range(2):
            with pytest.raises(requests.ConnectionError):
                session.post(proxy.write_url, data=b"r", timeout=5)
        assert session.post(proxy.write_url, data=b"ok", timeout=5).status_code == 204
    assert proxy.counts == {"reset": 2, "pass": 1}
    assert upstream.bodies == [b"r", b"ok"], "only the forwarding reset reached the upstream"


def test_upstream_down_answers_502(upstream: _Upstream) -> None:
    url = upstream.url
    upstream.close()
    with FaultProxy(url) as proxy:
        resp = requests.post(proxy.write_url, data=b"x", timeout=5)
    assert resp.status_code == 502
    assert proxy.exchanges[0].upstream_status == 502


def test_rejects_non_http_upstream() -> None:
    with pytest.raises(ValueError, match="http://"):
        FaultProxy("https://127.0.0.1:1")


def test_request_headers_are_recorded_and_redirects_answered(upstream: _Upstream) -> None:
    with FaultProxy(upstream.url) as proxy, requests.Session() as session:
        proxy.enqueue(fault_proxy.redirect(307, "/elsewhere"))
        resp = session.post(proxy.write_url, data=b"x", headers={"X-Scope-OrgID": "lab-a"}, allow_redirects=False)
        assert (resp.status_code, resp.headers["Location"]) == (307, "/elsewhere")
        exchange = proxy.snapshot()[0]
        assert ("X-Scope-OrgID", "lab-a") in exchange.headers
        assert exchange.fault == "status_307" and not exchange.forwarded


@pytest.mark.parametrize(
    "fault",
    [fault_proxy.huge_body(50 * 1024 * 1024), fault_proxy.endless_chunked(), fault_proxy.trickle(0.05)],
    ids=["huge_body", "endless_chunked", "trickle"],
)
def test_hostile_answers_go_on_until_the_client_hangs_up(upstream: _Upstream, fault: fault_proxy.Fault) -> None:
    with FaultProxy(upstream.url) as proxy:
        proxy.enqueue(fault)
        with requests.post(proxy.write_url, data=b"x", stream=True, timeout=10) as resp:
            assert resp.status_code == fault.status
            got = resp.raw.read(10)  # a prefix, then hang up
        assert got

        def finished() -> bool:
            return proxy.snapshot()[0].answer_bytes > 0

        wait_until(finished, 20, message="the proxy noticed the client leave")
        assert proxy.snapshot()[0].answer_bytes < 50 * 1024 * 1024
