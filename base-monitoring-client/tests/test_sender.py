"""Sender against a real local HTTP server: headers, retry decisions, Retry-After, drops, order."""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import requests

from monitoring_client import __version__
from monitoring_client.encoder import Encoder, Payload, SeriesSamples, decode, iter_samples
from monitoring_client.health import HealthState
from monitoring_client.records import REJECTED
from monitoring_client.retry_policy import Backoff, Verdict
from monitoring_client.self_metrics import SelfMetrics
from monitoring_client.send_buffer import MemoryStore
from monitoring_client.sender import Sender
from testkit.ports import free_port
from testkit.wait import wait_until

TS = 1_700_000_000_000


def payload(n: int = 3, start: int = 0):
    key = (("__name__", "m"), ("i", str(start)))
    return Encoder().encode(
        {key: SeriesSamples([TS + start * 1000 + i for i in range(n)], [float(i) for i in range(n)])}
    )[0]


DROP_DETAILS: list[str] = []


def make_sender(url: str, **kw) -> tuple[Sender, MemoryStore, SelfMetrics, HealthState]:
    metrics = SelfMetrics()

    def on_drop(reason: str, dropped: Payload, detail: str) -> None:
        # Drops are the store's listener's to count and log; here it does what the pipeline's does.
        metrics.dropped(reason, dropped.samples)
        DROP_DETAILS.append(detail)

    buf = MemoryStore(100, 10_000_000, on_drop=on_drop)
    health = HealthState()
    sender = Sender(
        url, buf, Backoff(0.01, 0.05, random.Random(0)), metrics, health, timeout_s=kw.pop("timeout_s", 2.0), **kw
    )
    return sender, buf, metrics, health


def test_success_sends_remote_write_headers_and_body(receiver: Any) -> None:
    sender, buf, metrics, health = make_sender(receiver.url)
    p = payload()
    buf.put(p)
    assert sender.send(buf.take()).verdict is Verdict.SUCCESS  # type: ignore[arg-type]
    req = receiver.requests[0]
    assert req.headers["Content-Encoding"] == "snappy"
    assert req.headers["Content-Type"] == "application/x-protobuf"
    assert req.headers["X-Prometheus-Remote-Write-Version"] == "0.1.0"
    assert req.headers["User-Agent"] == f"monitoring-client/{__version__}"
    assert req.body == p.body
    assert len(buf) == 0
    assert metrics.value("monitoring_client_samples_sent_total") == 3
    assert metrics.value("monitoring_client_requests_total", {"status": "204"}) == 1
    assert metrics.value("monitoring_client_last_success_timestamp_seconds") > 0
    assert health.check()[0]


def test_5xx_and_429_are_retried_and_keep_the_payload(receiver: Any) -> None:
    sender, buf, metrics, _ = make_sender(receiver.url)
    buf.put(payload())
    for status in (500, 503, 429):
        receiver.enqueue(status, body=b"busy")
        attempt = sender.send(buf.take())  # type: ignore[arg-type]
        assert attempt.verdict is Verdict.RETRY and attempt.status == str(status)
        assert len(buf) == 1
    assert metrics.value("monitoring_client_samples_sent_total") == 0


def test_other_4xx_is_dropped_counted_and_reported(receiver: Any) -> None:
    sender, buf, metrics, health = make_sender(receiver.url)
    DROP_DETAILS.clear()
    bad, good = payload(4), payload(2, start=1)
    buf.put(bad)
    buf.put(good)
    receiver.enqueue(400, body=b"out of bounds: sample too old")
    stop = threading.Thread(target=sender.run, daemon=True)
    stop.start()
    wait_until(lambda: len(receiver.accepted()) == 1, 10, message="the good payload after the refused one")
    sender.finish(time.monotonic() + 2)
    stop.join(5)
    assert [r.status for r in receiver.requests] == [400, 204]  # never retried the 400
    assert decode(receiver.requests[1].body) == decode(good.body)
    assert metrics.value("monitoring_client_samples_dropped_total", {"reason": REJECTED}) == 4
    assert metrics.value("monitoring_client_samples_sent_total") == 2
    assert len(DROP_DETAILS) == 1 and "refused a request of 4 samples" in DROP_DETAILS[0]
    assert "HTTP 400: out of bounds: sample too old" in DROP_DETAILS[0]
    assert health.check()[0]  # one refusal followed by success is healthy


def test_repeated_refusals_make_it_unhealthy(receiver: Any) -> None:
    sender, buf, _, health = make_sender(receiver.url)
    receiver.set_default(404, body=b"404 page not found")
    for i in range(3):
        buf.put(payload(1, start=i))
        sender.send(buf.take())  # type: ignore[arg-type]
    ok, text = health.check()
    assert not ok and "404" in text


def test_retry_after_is_honoured_before_the_next_attempt(receiver: Any) -> None:
    sender, buf, metrics, _ = make_sender(receiver.url)
    receiver.enqueue(429, headers={"Retry-After": "1"})
    buf.put(payload())
    t = threading.Thread(target=sender.run, daemon=True)
    started = time.monotonic()
    t.start()
    wait_until(lambda: receiver.accepted(), 10, message="retry after 429")
    waited = time.monotonic() - started
    sender.finish(time.monotonic() + 1)
    t.join(5)
    assert [r.status for r in receiver.requests] == [429, 204]
    assert waited >= 1.0  # never earlier than the receiver asked (a lower bound, not a speed claim)
    assert metrics.value("monitoring_client_retries_total") == 1


def test_connection_refused_and_timeout_are_retried(receiver: Any) -> None:
    sender, buf, _, health = make_sender(f"http://127.0.0.1:{free_port()}/api/v1/write")
    buf.put(payload())
    attempt = sender.send(buf.take())  # type: ignore[arg-type]
    assert attempt.verdict is Verdict.RETRY and attempt.status == "error"
    assert attempt.detail == "ConnectionError: [Errno 111] Connection refused"
    assert health.check() == (True, health.check()[1]) and "retrying" in health.check()[1]

    slow_sender, slow_buf, _, _ = make_sender(receiver.url, timeout_s=0.3)
    receiver.enqueue(204, delay_s=1.5)
    slow_buf.put(payload())
    attempt = slow_sender.send(slow_buf.take())  # type: ignore[arg-type]
    assert attempt.verdict is Verdict.RETRY and attempt.status == "timeout"
    assert len(slow_buf) == 1


def test_newer_payloads_wait_behind_a_retried_one_in_order(receiver: Any) -> None:
    sender, buf, metrics, _ = make_sender(receiver.url)
    for status in (503, 503, 500):
        receiver.enqueue(status)
    sent = [payload(2, start=i) for i in range(5)]
    for p in sent:
        buf.put(p)
    t = threading.Thread(target=sender.run, daemon=True)
    t.start()
    wait_until(lambda: len(receiver.accepted()) == 5, 10, message="all five payloads")
    sender.finish(time.monotonic() + 1)
    t.join(5)
    bodies = [r.body for r in receiver.accepted()]
    assert bodies == [p.body for p in sent]
    assert [r.body for r in receiver.requests[:4]] == [sent[0].body] * 4  # head-of-line retries
    assert metrics.value("monitoring_client_samples_sent_total") == 10


def test_finish_stops_retrying_at_the_deadline() -> None:
    sender, buf, _, _ = make_sender(f"http://127.0.0.1:{free_port()}/x")
    buf.put(payload())
    t = threading.Thread(target=sender.run, daemon=True)
    t.start()
    sender.finish(time.monotonic() + 1.0)
    t.join(10)
    assert not t.is_alive()
    assert len(buf) == 1  # left for the caller to account as lost


def test_session_is_reused(receiver: Any) -> None:
    session = requests.Session()
    sender, buf, _, _ = make_sender(receiver.url, session=session)
    for i in range(3):
        buf.put(payload(1, start=i))
        sender.send(buf.take())  # type: ignore[arg-type]
    assert len(receiver.accepted()) == 3
    assert [s for _, s, _ in iter_samples(decode(receiver.requests[2].body))] == [TS + 2000]


def test_refusal_of_a_retry_whose_first_attempt_got_no_answer_counts_as_sent(receiver: Any) -> None:
    sender, buf, metrics, _ = make_sender(receiver.url, timeout_s=0.3)
    receiver.enqueue(204, delay_s=1.0)  # stored, but the answer comes too late
    receiver.enqueue(400, body=b"out of order sample")  # the retry: Prometheus has these samples already
    buf.put(payload(5))
    assert sender.send(buf.take()).status == "timeout"  # type: ignore[arg-type]
    assert sender.send(buf.take()).status == "400"  # type: ignore[arg-type]
    assert len(buf) == 0
    assert metrics.value("monitoring_client_samples_sent_total") == 5
    assert metrics.value("monitoring_client_samples_dropped_total", {"reason": REJECTED}) == 0


def test_out_of_order_refusal_without_an_unanswered_attempt_is_a_drop(receiver: Any) -> None:
    sender, buf, metrics, _ = make_sender(receiver.url)
    receiver.enqueue(400, body=b"out of order sample")
    buf.put(payload(5))
    sender.send(buf.take())  # type: ignore[arg-type]
    assert metrics.value("monitoring_client_samples_dropped_total", {"reason": REJECTED}) == 5
    assert metrics.value("monitoring_client_samples_sent_total") == 0
