"""Health rules: healthy while pushes succeed or are retried within budget; unhealthy when data is lost."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from prometheus_client import CollectorRegistry

from monitoring_client.health import HealthServer, HealthState
from testkit.wait import wait_until


def state() -> tuple[HealthState, list[float]]:
    now = [100.0]
    return HealthState(overflow_grace_s=60, max_rejections=3, clock=lambda: now[0]), now


def test_starting_and_succeeding_are_healthy() -> None:
    h, now = state()
    assert h.check() == (True, "no push yet (0s since start)")
    h.success()
    now[0] += 2
    assert h.check() == (True, "last push accepted 2.0s ago")


def test_retrying_is_healthy_until_the_buffer_overflows() -> None:
    h, now = state()
    h.retrying("HTTP 503: down")
    now[0] += 30
    ok, text = h.check()
    assert ok and text == "retrying for 30s: HTTP 503: down"
    h.overflow()
    assert not h.check()[0]
    now[0] += 61  # no overflow for longer than the grace period
    assert h.check()[0]


def test_consecutive_refusals_are_unhealthy_until_a_success() -> None:
    h, _ = state()
    for _ in range(2):
        h.rejected("HTTP 404: not found")
    assert h.check()[0]
    h.rejected("HTTP 404: not found")
    assert h.check() == (False, "receiver refused the last 3 requests: HTTP 404: not found")
    h.success()
    assert h.check()[0]


def test_dead_pipeline_is_unhealthy_for_good() -> None:
    h, _ = state()
    h.dead("get_power crashed")
    h.success()
    assert h.check() == (False, "pipeline stopped: get_power crashed")


def test_refused_credentials_are_unhealthy_until_a_request_is_accepted() -> None:
    h, _ = state()
    h.retrying("HTTP 401: Unauthorized")
    h.credentials_refused("HTTP 401: Unauthorized")
    assert h.check() == (False, "receiver refuses the client's credentials (requests kept): HTTP 401: Unauthorized")
    h.success()
    assert h.check()[0]


def test_a_sender_stuck_on_one_request_is_unhealthy() -> None:
    now = [100.0]
    h = HealthState(stuck_after_s=30, clock=lambda: now[0])
    h.sender_busy()
    now[0] += 29
    assert h.check()[0]
    now[0] += 2
    ok, text = h.check()
    assert not ok and text.startswith("sender stuck: one request has been in progress for 31s")
    h.sender_idle()
    assert h.check()[0]


def test_requests_never_answered_in_time_are_unhealthy_but_an_outage_is_not() -> None:
    h, now = state()
    for _ in range(5):
        h.retrying("ConnectionError: [Errno 111] Connection refused")  # nobody there: retried, healthy
    assert h.check()[0]
    for _ in range(3):
        h.retrying("no answer within 5s (ReadTimeout)", unanswered=True)
    ok, text = h.check()
    assert not ok and "no complete answer" in text
    h.retrying("HTTP 503: down")  # it answers again
    assert h.check()[0]


def get_healthz(port: int, timeout: float = 5.0) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.settimeout(timeout)
        conn.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        return int(conn.recv(64).split()[1])


def test_a_flood_of_silent_connections_holds_few_descriptors_and_healthz_still_answers() -> None:
    from monitoring_client.health import MAX_CONNECTIONS

    server = HealthServer("127.0.0.1", 0, HealthState(), CollectorRegistry(), idle_timeout_s=30)
    server.start()
    flood: list[socket.socket] = []
    try:
        for _ in range(200):  # connect and never send a request (the idle timeout is long here)
            flood.append(socket.create_connection(("127.0.0.1", server.port), timeout=5))
        wait_until(lambda: server.open_connections() == MAX_CONNECTIONS, 10, message="the flood accepted")
        assert get_healthz(server.port) == 200
        assert server.open_connections() <= MAX_CONNECTIONS
        # The connections beyond the bound were closed by the server: they read end-of-file.
        closed = 0
        for conn in flood[:-MAX_CONNECTIONS]:
            conn.settimeout(5)
            closed += conn.recv(1) == b""
        assert closed == len(flood) - MAX_CONNECTIONS
    finally:
        for conn in flood:
            conn.close()
        server.stop()


def test_a_silent_connection_is_let_go_after_the_idle_timeout() -> None:
    server = HealthServer("127.0.0.1", 0, HealthState(), CollectorRegistry(), idle_timeout_s=0.3)
    server.start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as silent:
            silent.settimeout(5)
            assert silent.recv(1) == b"", "closed by the server, not by the client"
        wait_until(lambda: server.open_connections() == 0, 5, message="no connection left")
    finally:
        server.stop()


def test_a_connection_that_sent_its_request_is_not_the_one_evicted() -> None:
    from monitoring_client.health import MAX_CONNECTIONS

    release = threading.Event()

    class SlowRegistry(CollectorRegistry):
        def collect(self):  # type: ignore[no-untyped-def]
            release.wait(10)  # /metrics answers only when the test says so
            return super().collect()

    server = HealthServer("127.0.0.1", 0, HealthState(), SlowRegistry(), idle_timeout_s=30)
    server.start()
    flood: list[socket.socket] = []
    try:
        busy = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        busy.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        wait_until(lambda: server.open_connections(answering=True) == 1, 5, message="the scrape's request read")
        for _ in range(MAX_CONNECTIONS * 2):
            flood.append(socket.create_connection(("127.0.0.1", server.port), timeout=5))
        wait_until(lambda: server.open_connections() == MAX_CONNECTIONS, 10, message="the flood accepted")
        release.set()
        busy.settimeout(10)
        assert busy.recv(12).startswith(b"HTTP/1.0 200"), "the scrape was answered, not evicted"
        busy.close()
    finally:
        release.set()
        for conn in flood:
            conn.close()
        server.stop()


def _voluntary_switches(native_id: int) -> int:
    with open(f"/proc/self/task/{native_id}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("voluntary_ctxt_switches"))


def test_an_idle_endpoint_never_wakes_up_and_stops_at_once() -> None:
    server = HealthServer("127.0.0.1", 0, HealthState(), CollectorRegistry())
    server.start()
    try:
        assert get_healthz(server.port) == 200
        wait_until(lambda: server.open_connections() == 0, 5, message="the healthcheck's connection closed")
        native_id = server._thread.native_id
        assert native_id is not None
        before = _voluntary_switches(native_id)
        time.sleep(1.0)  # an observation window: a server that polls its stop flag wakes ten times in it
        assert _voluntary_switches(native_id) - before == 0
    finally:
        server.stop()
    assert not server._thread.is_alive()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
