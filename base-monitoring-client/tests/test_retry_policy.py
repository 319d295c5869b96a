"""Retry decisions and backoff."""

from __future__ import annotations

import random
from email.utils import formatdate

import pytest

from monitoring_client.retry_policy import (
    RETRY_AFTER_CEILING_S,
    Backoff,
    Verdict,
    classify_status,
    parse_retry_after,
)


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, Verdict.SUCCESS),
        (204, Verdict.SUCCESS),
        (429, Verdict.RETRY),
        (500, Verdict.RETRY),
        (503, Verdict.RETRY),
        (599, Verdict.RETRY),
        (400, Verdict.SPLIT),
        (409, Verdict.SPLIT),
        (413, Verdict.SPLIT),
        (401, Verdict.AUTH),
        (403, Verdict.AUTH),
        (404, Verdict.DROP),
        (405, Verdict.DROP),
        (301, Verdict.DROP),
    ],
)
def test_classify(status: int, verdict: Verdict) -> None:
    assert classify_status(status) is verdict


def test_retry_after_seconds_and_http_date() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after("7", now) == 7.0
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now) == pytest.approx(30.0, abs=1)
    assert parse_retry_after(formatdate(now - 30, usegmt=True), now) == 0.0  # in the past
    assert parse_retry_after("99999", now) == RETRY_AFTER_CEILING_S
    assert parse_retry_after(None, now) is None
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after("-5", now) is None


def test_backoff_grows_within_bounds_and_resets() -> None:
    backoff = Backoff(0.5, 10.0, random.Random(3))
    delays = [backoff.next_delay() for _ in range(50)]
    assert all(0.5 <= d <= 10.0 for d in delays)
    assert max(delays[10:]) > 5  # it does grow toward the cap
    assert len(set(delays)) == 50  # jittered, not lock-step
    backoff.reset()
    assert backoff.next_delay() <= 1.5  # first delay after reset: between base and 3 x base


def test_retry_after_is_a_lower_bound() -> None:
    backoff = Backoff(0.1, 1.0, random.Random(1))
    assert backoff.next_delay(retry_after_s=42.0) == 42.0
    assert backoff.next_delay(retry_after_s=0.0) <= 1.0


def test_invalid_backoff_bounds() -> None:
    with pytest.raises(ValueError):
        Backoff(2.0, 1.0)
