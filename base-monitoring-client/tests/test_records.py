"""Record validation: good records become series keys, bad ones are dropped with the right reason."""

from __future__ import annotations

import math

import pytest

from monitoring_client import records as r
from monitoring_client.records import RecordNormalizer

TS = 1_700_000_000_000


def good(**over: object) -> dict[str, object]:
    rec: dict[str, object] = {"metric": "power_watts", "labels": {"zone": "z0"}, "value": 1.5, "timestamp_ms": TS}
    rec.update(over)
    return rec


@pytest.fixture
def drops() -> list[tuple[str, str]]:
    return []


@pytest.fixture
def norm(drops: list[tuple[str, str]]) -> RecordNormalizer:
    return RecordNormalizer({"source": "src", "host": "h1"}, lambda reason, detail: drops.append((reason, detail)))


def test_good_record_gets_sorted_key_with_external_labels(norm: RecordNormalizer, drops: list) -> None:
    key, ts, value = norm.normalize(good(labels={"zone": "z0", "component": "core"}))  # type: ignore[misc]
    assert key == (
        ("__name__", "power_watts"),
        ("component", "core"),
        ("host", "h1"),
        ("source", "src"),
        ("zone", "z0"),
    )
    assert (ts, value) == (TS, 1.5)
    assert drops == []


def test_record_labels_win_over_external_labels(norm: RecordNormalizer) -> None:
    key, _, _ = norm.normalize(good(labels={"source": "mine"}))  # type: ignore[misc]
    assert dict(key)["source"] == "mine"
    assert dict(key)["host"] == "h1"


def test_empty_label_value_means_absent(norm: RecordNormalizer) -> None:
    key, _, _ = norm.normalize(good(labels={"zone": ""}))  # type: ignore[misc]
    assert "zone" not in dict(key)


def test_numeric_types_are_accepted(norm: RecordNormalizer) -> None:
    assert norm.normalize(good(value=3))[2] == 3.0  # type: ignore[index]
    assert norm.normalize(good(value=True))[2] == 1.0  # type: ignore[index]
    assert math.isnan(norm.normalize(good(value=float("nan")))[2])  # type: ignore[index]
    assert norm.normalize(good(timestamp_ms=float(TS)))[1] == TS  # type: ignore[index]


def test_cached_key_is_the_same_object(norm: RecordNormalizer) -> None:
    a = norm.normalize(good())
    b = norm.normalize(good(value=2.0, timestamp_ms=TS + 1))
    assert a is not None and b is not None and a[0] is b[0]


BAD = [
    ("a string", r.NOT_A_DICT),
    ({"metric": "m", "labels": {}, "value": 1.0}, r.MISSING_KEY),
    (good(metric="9starts_with_digit"), r.BAD_METRIC_NAME),
    (good(metric="has-dash"), r.BAD_METRIC_NAME),
    (good(metric=None), r.BAD_METRIC_NAME),
    (good(labels={"bad-name": "x"}), r.BAD_LABEL_NAME),
    (good(labels={"__reserved": "x"}), r.BAD_LABEL_NAME),
    (good(labels={1: "x"}), r.BAD_LABEL_NAME),
    (good(labels=["zone", "z0"]), r.BAD_LABEL_NAME),
    (good(labels={"zone": 3}), r.BAD_LABEL_VALUE),
    (good(labels={"zone": ["unhashable"]}), r.BAD_LABEL_VALUE),
    (good(labels={"zone": "\udc80"}), r.BAD_LABEL_VALUE),
    (good(value="1.5"), r.BAD_VALUE),
    (good(value=None), r.BAD_VALUE),
    (good(value=10**400), r.BAD_VALUE),  # too large for a double
    (good(timestamp_ms="now"), r.BAD_TIMESTAMP),
    (good(timestamp_ms=1.5), r.BAD_TIMESTAMP),
    (good(timestamp_ms=1_700_000_000), r.BAD_TIMESTAMP),  # seconds, not ms
    (good(timestamp_ms=1_700_000_000_000_000), r.BAD_TIMESTAMP),  # microseconds
]


@pytest.mark.parametrize(("record", "reason"), BAD)
def test_bad_records_are_dropped_with_reason(norm: RecordNormalizer, drops: list, record: object, reason: str) -> None:
    assert norm.normalize(record) is None
    assert [d[0] for d in drops] == [reason]
    assert drops[0][1]  # a human-readable detail


def test_bad_label_is_refused_even_after_the_metric_was_seen(norm: RecordNormalizer, drops: list) -> None:
    assert norm.normalize(good()) is not None
    assert norm.normalize(good(labels={"zone": "z0", "bad-name": "1"})) is None
    assert [d[0] for d in drops] == [r.BAD_LABEL_NAME]


def test_cache_is_bounded(drops: list) -> None:
    norm = RecordNormalizer({}, lambda *a: drops.append(a), max_cached_series=10)
    for i in range(25):
        assert norm.normalize(good(labels={"i": str(i)})) is not None
    assert len(norm._keys) <= 20
