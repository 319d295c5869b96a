"""Receivers that trickle, flood or redirect: nothing lost, every exchange bounded in time and memory.

Each test runs a scenario of ``transport_scenarios.py`` (the real client, a real Prometheus behind the
fault proxy) and asserts the targets; ``python -m bench.reliability`` writes the same figures.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from testkit.prometheus import PrometheusServer

from . import transport_scenarios
from .test_reliability import assert_complete

pytestmark = pytest.mark.integration

# A client that read a 200 MB answer whole would grow by at least that much.
RSS_GROWTH_BOUND_MIB = 40


@pytest.mark.parametrize("kind", sorted(transport_scenarios.HOSTILE))
def test_hostile_answers_lose_nothing_and_memory_stays_flat(
    tmp_path: Path, prometheus: PrometheusServer, kind: str
) -> None:
    result = transport_scenarios.hostile_answers(tmp_path, prometheus, kind=kind)
    assert result.allowed_loss == 0
    assert_complete(result)
    d = result.details
    assert d["peak_rss_growth_mib"] < RSS_GROWTH_BOUND_MIB, d
    if kind == "huge_body":
        assert all(taken < transport_scenarios.HUGE // 4 for taken in d["answer_bytes_sent_before_hang_up"]), d


def test_a_307_to_the_same_host_is_followed(tmp_path: Path, prometheus: PrometheusServer) -> None:
    result = transport_scenarios.redirected(tmp_path, prometheus, code=307, same_origin=True)
    assert result.allowed_loss == 0
    assert result.details["followed_to"] == ["/api/v1/write?moved=1"]
    assert_complete(result)


def test_a_301_elsewhere_is_not_followed_and_the_log_says_where(tmp_path: Path, prometheus: PrometheusServer) -> None:
    result = transport_scenarios.redirected(tmp_path, prometheus, code=301, same_origin=False)
    assert result.details["followed_to"] == []
    (line,) = result.details["log_line"]
    assert "redirect to http://127.0.0.1:9/api/v1/write?api_key=***" in line
    assert "not-a-key" not in line
    assert result.lost <= result.allowed_loss
    assert_complete(result)
