"""Series batches: the same outcome as the same samples sent as records, through the record path's own rules."""

from __future__ import annotations

import math
import queue
import threading
import time
from typing import Any

import pytest
from inline_impl import impl

from monitoring_client.config import Config
from monitoring_client.pipeline import Pipeline
from monitoring_client.series_batch import SeriesBatch, SeriesBuffer, as_records, samples_in

# A minute ago: inside the window of timestamps the client sends (MAX_SAMPLE_AGE_S, MAX_SAMPLE_AHEAD_S).
TS = int(time.time() * 1000) - 60_000
LABELS = {"zone": "z0"}


def idle(q: queue.Queue[Any], interval: float, stop: threading.Event) -> None:
    stop.wait()


def pipeline() -> Pipeline:
    """A pipeline that is never started: ingest() is called directly, as the batcher would."""
    return Pipeline(Config(remote_write_url="http://127.0.0.1:9/w", host_label="h"), impl(idle))


def outcome(p: Pipeline) -> tuple[dict[Any, tuple[list[int], list[float]]], dict[str, int]]:
    groups = {k: (list(s.timestamps), list(s.values)) for k, s in p._groups.items()}
    return groups, p.metrics.dropped_by_reason()


def batch(ts: list[Any], values: list[Any], metric: str = "t_watts", labels: Any = LABELS) -> SeriesBatch:
    return SeriesBatch(metric, labels, ts, values)


def same_as_records(*items: Any) -> Pipeline:
    """Ingest ``items`` into one pipeline and the same samples as records into another: same outcome."""
    fast, slow = pipeline(), pipeline()
    for item in items:
        fast.ingest(item)
        slow.ingest(as_records([item]))
    assert outcome(fast) == outcome(slow)
    assert fast._pending == slow._pending
    return fast


def test_a_valid_batch_is_grouped_whole_once_its_series_is_known() -> None:
    p = same_as_records(
        batch([TS, TS + 100], [1.0, 2.0]),  # first of its series: the record path, which caches its key
        batch([TS + 200, TS + 300, TS + 400], [3.0, 4.0, 5.0]),  # the fast path
        [batch([TS + 500], [6.0]), {"metric": "t_watts", "labels": LABELS, "value": 7.0, "timestamp_ms": TS + 600}],
    )
    ((key, (ts, values)),) = outcome(p)[0].items()
    assert dict(key) == {"__name__": "t_watts", "zone": "z0", "source": "monitoring-client", "host": "h"}
    assert ts == [TS + 100 * i for i in range(7)] and values == [float(i + 1) for i in range(7)]


@pytest.mark.parametrize(
    ("second", "dropped"),
    [
        (batch([TS + 200, TS + 100, TS + 300], [1.0, 2.0, 3.0]), {"out_of_order": 1}),  # not increasing
        (batch([TS + 50, TS + 200], [1.0, 2.0]), {"out_of_order": 1}),  # starts before what was accepted
        (batch([TS + 200, TS + 300], [1, True]), {}),  # numbers that are not floats: converted as for records
        (batch([TS + 200, TS + 300], [math.nan, math.inf]), {}),  # what records accept, batches accept
        (batch([TS + 200, TS + 300], ["x", 2.0]), {"bad_value": 1}),
        (batch([TS + 200, 1_700_000_000], [1.0, 2.0]), {"bad_timestamp": 1}),  # seconds, not ms
        (batch([TS + 200, float(TS + 300)], [1.0, 2.0]), {}),  # a whole float timestamp: accepted as for records
        (batch([TS - 7_200_000, TS + 200], [1.0, 2.0]), {"too_old": 1}),  # before MAX_SAMPLE_AGE_S
        (batch([TS + 200, TS + 7_200_000], [1.0, 2.0]), {"too_far_ahead": 1}),  # after MAX_SAMPLE_AHEAD_S
        (batch([TS + 200, TS + 300, TS + 400], [1.0]), {"missing_key": 2}),  # timestamps without values
        (batch([TS + 200], [1.0, 2.0]), {"missing_key": 1}),
        (batch([TS + 200], [1.0], metric="bad name"), {"bad_metric_name": 1}),
        (batch([TS + 200, TS + 300], [1.0, 2.0], labels={"__x": "y"}), {"bad_label_name": 2}),
        (batch([TS + 200, TS + 300], [1.0, 2.0], labels="not a dict"), {"bad_label_name": 2}),
        (batch([], []), {}),
    ],
    ids=[
        "not-increasing",
        "before-accepted",
        "ints",
        "nan-inf",
        "bad-value",
        "seconds",
        "float-ts",
        "too-old",
        "too-far-ahead",
        "short-values",
        "short-timestamps",
        "bad-metric",
        "bad-label",
        "labels-not-dict",
        "empty",
    ],
)
def test_a_batch_with_any_problem_gets_exactly_what_its_records_get(second: SeriesBatch, dropped: dict) -> None:
    p = same_as_records(batch([TS, TS + 100], [1.0, 2.0]), second)
    assert {k: v for k, v in outcome(p)[1].items() if v} == dropped


def test_samples_in_counts_the_samples_of_every_kind_of_item() -> None:
    record = {"metric": "m", "labels": {}, "value": 1.0, "timestamp_ms": TS}
    b3 = batch([TS, TS + 1, TS + 2], [1.0, 2.0, 3.0])
    assert samples_in(record) == 1
    assert samples_in(b3) == 3
    assert samples_in([record, record]) == 2
    assert samples_in([record, b3, record]) == 5
    assert samples_in((b3, b3)) == 6
    assert samples_in(batch([TS], [1.0, 2.0])) == 2
    assert samples_in("not a record") == 1


def test_buffer_hands_on_each_series_with_samples_and_starts_afresh() -> None:
    buf = SeriesBuffer([[("p_watts", {"z": "0"}), ("p_joules", {"z": "0"})], [("p_watts", {"z": "1"})]])
    buf.stamps[0] += [TS, TS + 1]
    buf.values[0][0] += [1.0, 2.0]
    buf.values[0][1] += [10.0, 20.0]
    taken = buf.take()
    assert [(b.metric, b.labels, list(b.timestamps), list(b.values)) for b in taken] == [
        ("p_watts", {"z": "0"}, [TS, TS + 1], [1.0, 2.0]),
        ("p_joules", {"z": "0"}, [TS, TS + 1], [10.0, 20.0]),
    ]
    assert taken[0].timestamps is taken[1].timestamps  # one list per group
    assert buf.stamps == [[], []] and buf.values == [[[], []], [[]]]
    assert buf.take() == []


def test_a_known_series_is_not_validated_sample_by_sample() -> None:
    p = pipeline()
    p.ingest(batch([TS], [1.0]))
    seen: list[object] = []
    real = p.normalizer.normalize
    p.normalizer.normalize = lambda record: seen.append(record) or real(record)  # type: ignore[method-assign]
    p.ingest([batch([TS + 1, TS + 2], [2.0, 3.0]), batch([TS + 3], [4.0])])
    assert seen == [] and p._pending == 4
