"""Health rules: healthy while pushes succeed or are retried within budget; unhealthy when data is lost."""

from __future__ import annotations

from monitoring_client.health import HealthState


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
