"""Sender against a real local HTTP server: headers, retry decisions, Retry-After, drops, order."""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import pytest
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
    receiver.enqueue(422, body=b"unprocessable: wrong endpoint")
    stop = threading.Thread(target=sender.run, daemon=True)
    stop.start()
    wait_until(lambda: len(receiver.accepted()) == 1, 10, message="the good payload after the refused one")
    sender.finish(time.monotonic() + 2)
    stop.join(5)
    assert [r.status for r in receiver.requests] == [422, 204]  # never retried the 422
    assert decode(receiver.requests[1].body) == decode(good.body)
    assert metrics.value("monitoring_client_samples_dropped_total", {"reason": REJECTED}) == 4
    assert metrics.value("monitoring_client_samples_sent_total") == 2
    assert len(DROP_DETAILS) == 1 and "refused a request of 4 samples" in DROP_DETAILS[0]
    assert "HTTP 422: unprocessable: wrong endpoint" in DROP_DETAILS[0]
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


def test_out_of_order_refusal_without_an_unanswered_attempt_is_not_taken_for_stored(receiver: Any) -> None:
    """Refused at the first attempt: nothing was stored, so the request is split and its halves sent."""
    sender, buf, metrics, _ = make_sender(receiver.url)
    receiver.enqueue(400, body=b"out of order sample")
    buf.put(payload(5))
    run_until_empty(sender, buf)
    assert [r.status for r in receiver.requests] == [400, 204, 204]
    assert metrics.value("monitoring_client_samples_dropped_total", {"reason": REJECTED}) == 0
    assert metrics.value("monitoring_client_samples_sent_total") == 5


def run_until_empty(sender: Sender, buf: MemoryStore, timeout: float = 20) -> None:
    """Run the sender in its thread until the store is empty, then finish it."""
    thread = threading.Thread(target=sender.run, daemon=True)
    thread.start()
    wait_until(lambda: len(buf) == 0, timeout, message="every payload sent or dropped")
    sender.finish(time.monotonic() + 1)
    thread.join(5)
    assert not thread.is_alive()


def series_payload(series: int, per_series: int, own: int = 0) -> Payload:
    """``series`` series of ``per_series`` samples each (value = a unique sample number), plus ``own``
    self-metric samples; timestamps interleave across series as a real batch does."""
    groups = {
        (("__name__", "m"), ("s", str(k))): SeriesSamples(
            [TS + i * 10 + k for i in range(per_series)], [float(k * 1000 + i) for i in range(per_series)]
        )
        for k in range(series)
    }
    self_groups = {
        (("__name__", f"monitoring_client_x{j}"),): SeriesSamples([TS + j], [float(-1 - j)]) for j in range(own)
    }
    (p,) = Encoder(10**6, 10**9).encode(groups, self_groups)
    return p


def values_in(body: bytes) -> list[float]:
    return [v for _, _, v in iter_samples(decode(body))]


def test_a_request_refused_for_some_samples_is_split_until_only_those_are_dropped(receiver: Any) -> None:
    bad = {13.0, 2007.0}  # one sample of series 0, one of series 2

    def judge(body: bytes) -> tuple[int, bytes] | None:
        return (400, b"out of bounds") if bad & set(values_in(body)) else None

    receiver.judge = judge
    DROP_DETAILS.clear()
    sender, buf, metrics, health = make_sender(receiver.url)
    buf.put(series_payload(3, 20, own=2))
    run_until_empty(sender, buf)
    delivered = [v for r in receiver.accepted() for v in values_in(r.body)]
    expected = {float(k * 1000 + i) for k in range(3) for i in range(20)} - bad
    assert sorted(v for v in delivered if v >= 0) == sorted(expected), "every good sample once"
    assert sorted(v for v in delivered if v < 0) == [-2.0, -1.0], "the client's own samples too"
    assert metrics.value("monitoring_client_samples_dropped_total", {"reason": REJECTED}) == 2
    assert metrics.value("monitoring_client_samples_sent_total") == 58
    # Per series, the receiver got the samples in timestamp order.
    for k in range(3):
        got = [v for v in delivered if 1000 * k <= v < 1000 * (k + 1)]
        assert got == sorted(got)
    # Bounded work: 62 samples need at most 2 * 62 - 1 requests; two refused samples take far fewer.
    assert len(receiver.requests) <= 2 * 2 * 6 + 2
    assert sorted(d.split(" for good")[0].split("refused ")[1] for d in DROP_DETAILS) == [
        f'the sample m{{s="0"}} 13.0 @ {TS + 130}',
        f'the sample m{{s="2"}} 2007.0 @ {TS + 72}',
    ]
    assert health.check()[0], "a refused sample among accepted ones is not a health problem"


@pytest.mark.parametrize("status", [409, 413])
def test_409_and_413_split_like_400(receiver: Any, status: int) -> None:
    receiver.judge = lambda body: (status, b"too large or conflict") if len(values_in(body)) > 1 else None
    sender, buf, metrics, _ = make_sender(receiver.url)
    buf.put(series_payload(2, 8))
    run_until_empty(sender, buf)
    assert sorted(v for r in receiver.accepted() for v in values_in(r.body)) == sorted(
        float(k * 1000 + i) for k in range(2) for i in range(8)
    ), "split down to single samples, each accepted"
    assert all(len(values_in(r.body)) == 1 for r in receiver.accepted())
    assert metrics.value("monitoring_client_samples_sent_total") == 16


def test_a_single_sample_refused_is_dropped_and_named(receiver: Any) -> None:
    receiver.set_default(413, body=b"request entity too large")
    DROP_DETAILS.clear()
    sender, buf, metrics, _ = make_sender(receiver.url)
    buf.put(payload(1))
    run_until_empty(sender, buf)
    assert len(receiver.requests) == 1
    assert metrics.value("monitoring_client_samples_dropped_total", {"reason": REJECTED}) == 1
    assert 'refused the sample m{i="0"} 0.0 @' in DROP_DETAILS[0] and "HTTP 413" in DROP_DETAILS[0]


def test_refused_credentials_keep_every_request_until_fixed(receiver: Any, caplog: pytest.LogCaptureFixture) -> None:
    receiver.set_default(401, body=b"Unauthorized")
    sender, buf, metrics, health = make_sender(receiver.url)
    sent = [payload(3, start=i) for i in range(4)]
    for p in sent:
        buf.put(p)
    thread = threading.Thread(target=sender.run, daemon=True)
    thread.start()
    wait_until(lambda: len(receiver.requests) >= 4, 10, message="several attempts refused")
    ok, text = health.check()
    assert not ok and "credentials" in text and "401" in text
    assert len(buf) == 4 and metrics.dropped_by_reason() == {}, "nothing dropped"
    assert {r.body for r in receiver.requests} == {sent[0].body}, "the oldest is retried, the rest wait"
    errors = [r for r in caplog.records if r.levelname == "ERROR" and "credentials" in r.getMessage()]
    assert len(errors) == 1, "one line, not one per attempt"
    assert "REMOTE_WRITE_PASSWORD_FILE" in errors[0].getMessage()
    receiver.set_default(204)  # the credentials were fixed
    wait_until(lambda: len(buf) == 0, 10, message="everything delivered")
    sender.finish(time.monotonic() + 1)
    thread.join(5)
    assert [r.body for r in receiver.accepted()] == [p.body for p in sent]
    assert metrics.value("monitoring_client_samples_sent_total") == 12
    assert health.check()[0]


def test_samples_older_than_the_bound_are_taken_out_before_sending(receiver: Any) -> None:
    now = TS / 1000 + 7200  # the payload's samples are two hours old, the bound one hour
    old = payload(3)
    fresh_key = (("__name__", "m"), ("i", "fresh"))
    (mixed,) = Encoder().encode(
        {
            (("__name__", "m"), ("i", "old")): SeriesSamples([TS, TS + 1], [1.0, 2.0]),
            fresh_key: SeriesSamples([int(now * 1000) - 1000], [3.0]),
        }
    )
    events: list[tuple[str, int]] = []
    metrics = SelfMetrics()
    buf = MemoryStore(100, 10**7, on_drop=lambda reason, p, detail: events.append((reason, p.samples)))
    sender = Sender(
        receiver.url,
        buf,
        Backoff(0.01, 0.05),
        metrics,
        HealthState(),
        wall_clock=lambda: now,
        max_sample_age_s=3600,
    )
    buf.put(old)
    buf.put(mixed)
    run_until_empty(sender, buf)
    assert events == [("too_old", 3), ("too_old", 2)]
    assert [values_in(r.body) for r in receiver.requests] == [[3.0]], "only the fresh sample is sent"
    assert metrics.value("monitoring_client_samples_sent_total") == 1


def test_answers_that_never_complete_turn_health_unhealthy(receiver: Any) -> None:
    sender, buf, _, health = make_sender(receiver.url, timeout_s=0.2)
    for _ in range(3):
        receiver.enqueue(204, delay_s=1.0)
    buf.put(payload())
    for attempt in range(3):
        assert sender.send(buf.take()).status == "timeout"  # type: ignore[arg-type]
        assert health.check()[0] is (attempt < 2)
    ok, text = health.check()
    assert not ok and "no complete answer" in text


def test_a_refused_body_that_cannot_be_taken_apart_is_dropped_not_fatal(receiver: Any) -> None:
    receiver.set_default(400, body=b"snappy: corrupt input")
    sender, buf, metrics, _ = make_sender(receiver.url, max_sample_age_s=3600)
    garbage = Payload(b"not snappy at all", 5, 0, 1, 17, oldest_ms=1)
    buf.put(garbage)
    run_until_empty(sender, buf)
    assert len(receiver.requests) == 1, "sent as it is, refused once, dropped"
    assert metrics.value("monitoring_client_samples_dropped_total", {"reason": REJECTED}) == 5


def test_a_receiver_that_refuses_everything_stops_the_splitting_until_it_accepts(receiver: Any) -> None:
    from monitoring_client.sender import REFUSE_ALL_SAMPLES

    receiver.set_default(400, body=b"bad_data: invalid parameter")  # e.g. a wrong path of the server
    sender, buf, metrics, _ = make_sender(receiver.url)
    first = series_payload(2, REFUSE_ALL_SAMPLES // 2)  # split down to its samples: 2n - 1 requests
    buf.put(first)
    run_until_empty(sender, buf)
    assert len(receiver.requests) == 2 * REFUSE_ALL_SAMPLES - 1
    buf.put(series_payload(2, 10))
    run_until_empty(sender, buf)
    assert len(receiver.requests) == 2 * REFUSE_ALL_SAMPLES, "the next request is dropped whole, not split"
    receiver.set_default(204)  # the URL was fixed
    buf.put(series_payload(1, 3))
    run_until_empty(sender, buf)
    receiver.set_default(400, body=b"out of bounds")
    buf.put(series_payload(1, 2))
    run_until_empty(sender, buf)
    assert [r.status for r in receiver.requests[-4:]] == [204, 400, 400, 400], "splitting again after a success"
    assert metrics.value("monitoring_client_samples_dropped_total", {"reason": REJECTED}) == REFUSE_ALL_SAMPLES + 22
