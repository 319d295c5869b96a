"""The whole pipeline in-process against a local receiver: exact accounting, shutdown, failures."""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

import pytest
import requests
from inline_impl import impl

from monitoring_client.config import Config
from monitoring_client.encoder import decode, iter_samples
from monitoring_client.errors import EnvironmentProblem
from monitoring_client.pipeline import Pipeline
from testkit.ports import free_port
from testkit.wait import wait_until

# A minute ago: within the window of timestamps the client sends (MAX_SAMPLE_AGE_S).
TS = int(time.time() * 1000) - 60_000


def rec(i: int, series: str = "a", ts: int | None = None) -> dict[str, Any]:
    return {
        "metric": "t_value",
        "labels": {"s": series},
        "value": float(i),
        "timestamp_ms": TS + i if ts is None else ts,
    }


def config(url: str, **over: Any) -> Config:
    base: dict[str, Any] = {
        "remote_write_url": url,
        "scrape_interval_s": 0.01,
        "push_interval_s": 0.05,
        "retry_base_s": 0.01,
        "retry_max_s": 0.05,
        "shutdown_timeout_s": 3.0,
        "self_metrics_interval_s": 0.0,
        "host_label": "test-host",
    }
    base.update(over)
    return Config(**base)


class Running:
    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.status: int | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.status = self.pipeline.run()

    def stop(self, timeout: float = 20) -> int:
        self.pipeline.request_stop("test")
        return self.wait(timeout)

    def wait(self, timeout: float = 20) -> int:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "pipeline did not stop"
        assert self.status is not None
        return self.status


def data_samples(receiver: Any) -> list[tuple]:
    out = []
    for r in receiver.accepted():
        out.extend(
            s for s in iter_samples(decode(r.body)) if not dict(s[0])["__name__"].startswith("monitoring_client_")
        )
    return out


def test_every_sample_arrives_once_in_order_with_external_labels(receiver: Any) -> None:
    def emit(q: queue.Queue, interval: float, stop: threading.Event) -> None:
        for i in range(200):
            q.put([rec(i, "a"), rec(i, "b")] if i % 2 else rec(i, "a"))

    run = Running(Pipeline(config(receiver.url), impl(emit)))
    wait_until(lambda: len(data_samples(receiver)) == 300, 20, message="300 samples")
    assert run.stop() == 0
    got = data_samples(receiver)
    assert len(got) == 300
    a = [(ts, v) for k, ts, v in got if dict(k)["s"] == "a"]
    assert a == [(TS + i, float(i)) for i in range(200)]
    keys = {k for k, _, _ in got}
    assert all(dict(k)["source"] == "monitoring-client" and dict(k)["host"] == "test-host" for k in keys)
    m = run.pipeline.metrics
    assert m.value("monitoring_client_samples_received_total") == 300
    assert m.value("monitoring_client_samples_sent_total") == 300


def test_sigterm_like_stop_flushes_everything_collected(receiver: Any) -> None:
    # A long push interval: nothing would be sent before the stop without the shutdown flush.
    def emit(q: queue.Queue, interval: float, stop: threading.Event) -> None:
        for i in range(50):
            q.put(rec(i))

    pipeline = Pipeline(config(receiver.url, push_interval_s=60), impl(emit))
    run = Running(pipeline)
    wait_until(lambda: pipeline.metrics.value("monitoring_client_samples_received_total") == 50, 10, message="50 in")
    assert receiver.accepted() == []
    assert run.stop() == 0
    assert len(data_samples(receiver)) == 50


def test_a_filling_processed_queue_wakes_the_batcher_before_the_push_is_due(receiver: Any) -> None:
    # The batcher sleeps until the push is due (60 s here) and is not woken by puts: only by a half-full
    # queue. With room for 4 items, 40 puts would block process_data for good without that wake-up.
    def emit(q: queue.Queue, interval: float, stop: threading.Event) -> None:
        for i in range(40):
            q.put(rec(i))

    pipeline = Pipeline(config(receiver.url, push_interval_s=60, proc_queue_size=4), impl(emit))
    run = Running(pipeline)
    received = "monitoring_client_samples_received_total"  # counted as each item is queued
    wait_until(lambda: pipeline.metrics.value(received) == 40, 10, message="40 records through a queue of 4")
    assert receiver.accepted() == []  # taken from the queue, not pushed before the push is due
    assert run.stop() == 0
    assert [v for _, _, v in data_samples(receiver)] == [float(i) for i in range(40)]


def test_bad_and_out_of_order_records_are_dropped_and_counted(receiver: Any) -> None:
    def emit(q: queue.Queue, interval: float, stop: threading.Event) -> None:
        q.put([rec(1), rec(2), rec(3, ts=TS + 2), rec(4, ts=TS + 1), rec(5)])  # 3 and 4 out of order
        q.put("garbage")
        q.put({"metric": "bad name", "labels": {}, "value": 1.0, "timestamp_ms": TS})
        q.put({"metric": "t_value", "labels": {}, "value": "NaN?", "timestamp_ms": TS})
        q.put(rec(6))

    pipeline = Pipeline(config(receiver.url), impl(emit))
    run = Running(pipeline)
    wait_until(lambda: pipeline.metrics.value("monitoring_client_samples_received_total") == 9, 10, message="9 in")
    assert run.stop() == 0
    assert [v for _, _, v in data_samples(receiver)] == [1.0, 2.0, 5.0, 6.0]
    assert pipeline.metrics.dropped_by_reason() == {
        "out_of_order": 2,
        "not_a_dict": 1,
        "bad_metric_name": 1,
        "bad_value": 1,
    }


def test_outage_then_recovery_loses_nothing_and_keeps_order(receiver: Any) -> None:
    receiver.set_default(503, body=b"down")
    emitted = threading.Event()

    def emit(q: queue.Queue, interval: float, stop: threading.Event) -> None:
        for i in range(100):
            q.put(rec(i))
            stop.wait(0.002)
        emitted.set()

    pipeline = Pipeline(config(receiver.url), impl(emit))
    run = Running(pipeline)
    wait_until(lambda: emitted.is_set() and len(receiver.requests) >= 5, 10, message="failing for a while")
    assert pipeline.health.check()[0]  # retrying within budget is healthy
    receiver.set_default(204)
    wait_until(lambda: len(data_samples(receiver)) == 100, 20, message="everything after recovery")
    assert run.stop() == 0
    assert [v for _, _, v in data_samples(receiver)] == [float(i) for i in range(100)]
    assert pipeline.metrics.value("monitoring_client_retries_total") >= 5


def test_buffer_overflow_drops_oldest_and_accounts_exactly(receiver: Any) -> None:
    receiver.set_default(503)

    def emit(q: queue.Queue, interval: float, stop: threading.Event) -> None:
        for i in range(60):
            q.put(rec(i))
            stop.wait(0.01)

    pipeline = Pipeline(config(receiver.url, max_retry_batches=3, shutdown_timeout_s=1.0), impl(emit))
    run = Running(pipeline)
    wait_until(lambda: pipeline.metrics.value("monitoring_client_samples_received_total") == 60, 10, message="60 in")
    wait_until(lambda: pipeline.metrics.dropped_by_reason().get("buffer_full"), 10, message="an overflow")
    assert not pipeline.health.check()[0]
    assert run.stop() == 0
    dropped = pipeline.metrics.dropped_by_reason()
    assert dropped["buffer_full"] > 0 and dropped["shutdown_timeout"] > 0
    assert sum(dropped.values()) == 60  # nothing was sent, every sample is accounted for
    assert pipeline.metrics.value("monitoring_client_samples_sent_total") == 0


def test_crash_in_implementation_exits_1_after_flushing(receiver: Any, caplog: pytest.LogCaptureFixture) -> None:
    def emit(q: queue.Queue, interval: float, stop: threading.Event) -> None:
        q.put(rec(1))
        raise RuntimeError("sensor exploded")

    run = Running(Pipeline(config(receiver.url), impl(emit)))
    assert run.wait() == 1
    assert "sensor exploded" in caplog.text and "Traceback" in caplog.text
    assert len(data_samples(receiver)) == 1  # what was collected before the crash is not lost


def test_user_error_in_thread_gives_its_status_and_message(receiver: Any) -> None:
    def emit(q: queue.Queue, interval: float, stop: threading.Event) -> None:
        raise EnvironmentProblem("No RAPL here.")

    pipeline = Pipeline(config(receiver.url), impl(emit))
    assert Running(pipeline).wait() == 3
    assert pipeline.fatal_message == "No RAPL here."


def test_collector_returning_early_is_a_failure(receiver: Any) -> None:
    module = impl(lambda q, i, s: None)
    module.get_power = lambda q, i, s: None  # type: ignore[attr-defined]  # returns without being stopped
    assert Running(Pipeline(config(receiver.url), module)).wait() == 1


def test_health_endpoint_serves_healthz_and_metrics(receiver: Any) -> None:
    port = free_port()
    pipeline = Pipeline(config(receiver.url, health_port=port), impl(lambda q, i, s: q.put(rec(1))))
    run = Running(pipeline)
    wait_until(lambda: receiver.accepted(), 10, message="first push")
    health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
    metrics = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert health.status_code == 200 and health.text.startswith("ok: ")
    assert "monitoring_client_samples_sent_total 1.0" in metrics.text
    assert requests.get(f"http://127.0.0.1:{port}/nope", timeout=5).status_code == 404
    assert run.stop() == 0


def test_self_metrics_ride_the_same_remote_write(receiver: Any) -> None:
    pipeline = Pipeline(config(receiver.url, self_metrics_interval_s=0.05), impl(lambda q, i, s: q.put(rec(1))))
    run = Running(pipeline)
    wait_until(lambda: len(receiver.accepted()) >= 3, 10, message="a few pushes")
    assert run.stop() == 0
    own: dict[tuple[tuple[str, str], ...], list[tuple[int, float]]] = {}
    for r in receiver.accepted():
        for key, ts, value in iter_samples(decode(r.body)):
            labels = dict(key)
            if labels["__name__"].startswith("monitoring_client_"):
                assert labels["source"] == "monitoring-client" and labels["host"] == "test-host"
                own.setdefault(key, []).append((ts, value))
    names = {dict(k)["__name__"] for k in own}
    for expected in (
        "monitoring_client_samples_received_total",
        "monitoring_client_samples_sent_total",
        "monitoring_client_requests_total",
        "monitoring_client_push_duration_seconds_bucket",
        "monitoring_client_push_duration_seconds_count",
        "monitoring_client_buffered_payloads",
        "monitoring_client_last_success_timestamp_seconds",
    ):
        assert expected in names
    assert not any(n.endswith("_created") for n in names)
    for samples in own.values():  # per series strictly increasing timestamps
        stamps = [ts for ts, _ in samples]
        assert stamps == sorted(set(stamps))
    # Accounting excludes the client's own samples: received and sent count the implementation's only.
    assert pipeline.metrics.value("monitoring_client_samples_sent_total") == 1


def test_health_port_in_use_is_an_environment_problem(receiver: Any) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        pipeline = Pipeline(config(receiver.url, health_port=port), impl(lambda q, i, s: None))
        with pytest.raises(EnvironmentProblem, match=f"HEALTH_PORT={port}: cannot listen"):
            pipeline.start()


def test_per_series_state_stays_bounded_under_label_churn() -> None:
    """Label values that change on every tick (new series forever) must not grow memory: the ordering
    guard, the normalizer's cache and the encoder's encoded labels remember at most 2 x MAX_SERIES series,
    while a series seen on every tick is never forgotten (its late samples are still dropped)."""
    pipeline = Pipeline(config("http://127.0.0.1:9/unused", max_series=100), impl(lambda *_: None))
    for tick in range(60):
        ts = TS + tick
        churn = [
            {"metric": "t_churn", "labels": {"id": f"{tick}-{i}"}, "value": 1.0, "timestamp_ms": ts} for i in range(50)
        ]
        pipeline.ingest([rec(tick, "steady", ts), *churn])
        pipeline.flush()
        pipeline.store.drain()
    sizes = (len(pipeline.guard), len(pipeline.normalizer._keys), len(pipeline.encoder._label_cache))
    assert max(sizes) <= 200, sizes
    pipeline.ingest(rec(0, "steady", TS))  # older than what was sent for the steady series
    assert pipeline.metrics.dropped_by_reason() == {"out_of_order": 1}
