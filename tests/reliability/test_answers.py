"""What the client does with each answer of a real (or deliberately misbehaving) receiver: nothing good lost.

Each test runs one scenario of ``answers.py``; ``python -m bench.reliability`` runs the same ones into
docs/RELIABILITY.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from testkit.prometheus import PrometheusServer

from . import answers
from .test_reliability import assert_complete

pytestmark = pytest.mark.integration


def test_samples_far_from_the_clock_are_never_sent(tmp_path: Path, prometheus: PrometheusServer) -> None:
    result = answers.samples_out_of_window(tmp_path, prometheus)
    assert result.allowed_loss == 0
    assert_complete(result)
    d = result.details
    assert d["client_dropped_by_reason"] == {"too_old": 1.0, "too_far_ahead": 1.0}, d
    assert d["stored_bad_time_samples"] == 0
    assert "400" not in d["requests_by_status"], d


def test_a_request_refused_for_one_sample_loses_only_that_sample(tmp_path: Path, prometheus: PrometheusServer) -> None:
    result = answers.refused_sample_split(tmp_path, prometheus)
    assert result.allowed_loss == 0
    assert_complete(result)
    d = result.details
    assert d["client_dropped_by_reason"] == {"rejected": 1.0}, d
    assert d["requests_by_status"].get("400", 0) >= 2, "the request and at least one half were refused"
    assert any("reliability_sequence_bad_time{" in line and "out of bounds" in line for line in d["error_lines"]), d


def test_413_is_split_until_the_halves_pass(tmp_path: Path, prometheus: PrometheusServer) -> None:
    result = answers.too_large_413(tmp_path, prometheus, count=3)
    assert result.details["proxy"]["status_413"] == 3
    assert result.allowed_loss == 0 and result.details["client_dropped_by_reason"] == {}
    assert_complete(result)


def test_409_is_split_like_400(tmp_path: Path, prometheus: PrometheusServer) -> None:
    result = answers.conflict_409(tmp_path, prometheus)
    assert result.details["proxy"]["status_409"] == 1
    assert result.allowed_loss == 0 and result.details["client_dropped_by_reason"] == {}
    assert_complete(result)


def test_refused_credentials_lose_nothing(tmp_path: Path, prometheus: PrometheusServer) -> None:
    result = answers.credentials_refused(tmp_path, prometheus, window_s=8)
    d = result.details
    assert result.allowed_loss == 0 and d["client_dropped_by_reason"] == {}, d
    assert_complete(result)
    assert any(h.startswith("unhealthy: receiver refuses the client's credentials") for h in d["healthz_during"]), d
    assert d["credential_error_lines"] == 1, "one actionable line a minute, not one per attempt"


def test_requests_refused_for_good_are_logged_as_few_errors_with_counts(
    tmp_path: Path, prometheus: PrometheusServer
) -> None:
    result = answers.refused_for_good(tmp_path, prometheus, window_s=10)
    d = result.details
    assert d["refused_requests"] >= 10, d
    assert result.lost == result.allowed_loss > 0, "exactly the refused requests' samples are lost"
    assert_complete(result)
    assert 1 <= d["error_lines"] <= 2, d  # the first at once, the rest summed up (at shutdown at the latest)
    if d["error_lines"] == 2:
        assert f"{d['refused_requests'] - 1} more requests refused by the receiver (" in d["last_error_line"], d


def test_requests_never_answered_in_time_turn_health_unhealthy(tmp_path: Path, prometheus: PrometheusServer) -> None:
    result = answers.never_answered(tmp_path, prometheus, count=4)
    assert result.allowed_loss == 0
    assert_complete(result)
    first, last = result.details["healthz"]
    assert first.startswith("unhealthy: no progress: the last 3 requests got no complete answer"), first
    assert last.startswith("ok"), last


def test_credentials_refused_by_a_real_prometheus_lose_nothing(tmp_path: Path) -> None:
    pytest.importorskip("bcrypt", reason="bcrypt is a test requirement (./run-tests.sh installs it)")
    result = answers.credentials_fixed_on_the_server(tmp_path, window_s=8)
    d = result.details
    assert result.allowed_loss == 0 and d["client_dropped_by_reason"] == {}, d
    assert_complete(result)
    assert d["requests_by_status"].get("401", 0) >= 2, d
    assert d["credential_error_lines_while_refused"] == 1, d
    assert not d["secret_in_log"]
