"""Fault injection against a real Prometheus: no sample lost, none duplicated, ordered per series.

Each test runs one scenario from ``scenarios.py`` (the real ``monitoring-client`` in a subprocess with the
sequence implementation) and asserts the issue's targets on its figures. ``python -m bench.reliability``
runs the same scenarios to write docs/RELIABILITY.md.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from monitoring_client.config import Config
from testkit.prometheus import PrometheusServer

from . import scenarios
from .scenarios import Result

pytestmark = pytest.mark.integration

HAS_SPOOL = any(f.name == "spool_dir" for f in dataclasses.fields(Config))


def assert_complete(result: Result) -> None:
    """The issue's targets: nothing lost beyond the scenario's allowance, no duplicates, ordered, exit 0."""
    summary = (
        f"{result.name}: produced {result.produced}, stored {result.stored}, lost {result.lost} "
        f"(allowed {result.allowed_loss}), duplicated {result.duplicated}; {result.details}"
    )
    assert result.produced > 0, summary
    assert result.lost <= result.allowed_loss, summary
    assert result.duplicated == 0, summary
    assert result.stored == result.produced - result.lost, summary
    assert result.ordered, summary
    assert result.exit_status == 0, summary


def test_receiver_down_60s_then_back(tmp_path: Path, prometheus: PrometheusServer) -> None:
    result = scenarios.receiver_down(tmp_path, prometheus, outage_s=60)
    assert result.allowed_loss == 0
    assert_complete(result)


def test_receiver_restarted(tmp_path: Path, prometheus: PrometheusServer) -> None:
    result = scenarios.receiver_restarted(tmp_path, prometheus)
    assert result.allowed_loss == 0
    assert_complete(result)


@pytest.mark.skipif(not HAS_SPOOL, reason="this base client has no on-disk spool (SPOOL_DIR) yet")
def test_client_sigkill_with_spool_loses_at_most_one_push_interval(
    tmp_path: Path, prometheus: PrometheusServer
) -> None:
    result = scenarios.client_sigkill(tmp_path, prometheus, push_interval_s=0.5)
    assert result.details["lost_only_at_kill"], result.details
    assert_complete(result)


def test_429_retry_after_is_honoured(tmp_path: Path, prometheus: PrometheusServer) -> None:
    result = scenarios.too_many_requests(tmp_path, prometheus, retry_after_s=2, count=3)
    assert_complete(result)
    assert result.details["proxy"]["status_429"] == 3
    # The client may wait longer (backoff), never shorter than the receiver asked.
    assert result.details["waits_after_429_s"] and min(result.details["waits_after_429_s"]) >= 1.9


def test_503_window(tmp_path: Path, prometheus: PrometheusServer) -> None:
    result = scenarios.service_unavailable(tmp_path, prometheus, window_s=5)
    assert result.details["proxy"]["status_503"] >= 2
    assert_complete(result)


@pytest.mark.parametrize("forward", [True, False], ids=["stored-then-late", "late-not-stored"])
def test_responses_slower_than_timeout(tmp_path: Path, prometheus: PrometheusServer, forward: bool) -> None:
    result = scenarios.slow_responses(tmp_path, prometheus, timeout_s=1.0, count=3, forward=forward)
    assert result.details["proxy"]["slow"] == 3
    assert_complete(result)


def test_connection_resets(tmp_path: Path, prometheus: PrometheusServer) -> None:
    result = scenarios.connection_resets(tmp_path, prometheus, count=3)
    assert result.details["proxy"]["reset"] == 6
    assert_complete(result)


def test_400_among_good_requests(tmp_path: Path, prometheus: PrometheusServer) -> None:
    result = scenarios.refused_400(tmp_path, prometheus)
    assert result.details["refused_request_samples"] > 0, "the refused request carried sequence samples"
    assert result.allowed_loss == 0, "its halves are sent instead: nothing is lost"
    assert_complete(result)


def test_bad_records_are_dropped_and_counted(tmp_path: Path, prometheus: PrometheusServer) -> None:
    result = scenarios.bad_records(tmp_path, prometheus)
    assert result.allowed_loss == 0
    assert_complete(result)
    emitted = result.details["bad_items_emitted"]
    assert emitted > 0
    dropped = result.details["client_dropped_by_reason"]
    # One of each kind per batch of bad items, each with exactly one fault: each counted under its reason.
    for reason in ("not_a_dict", "missing_key", "bad_value", "bad_metric_name", "bad_label_name"):
        assert dropped.get(reason) == emitted / 5, (reason, dropped)


def test_host_clock_steps_back(tmp_path: Path, prometheus: PrometheusServer) -> None:
    result = scenarios.clock_step_back(tmp_path, prometheus, step_s=2.0, at_tick=40)
    assert_complete(result)
    assert result.ordered
    assert result.lost <= result.details["expected_guard_drops_max"]
    assert "400" not in result.details["requests_by_status"], "Prometheus rejected a request"


def test_counter_wraps_through_cpu_pyjoules(tmp_path: Path, prometheus: PrometheusServer) -> None:
    pytest.importorskip("cpu_pyjoules.fake_powercap", reason="cpu-pyjoules not installed (./run-tests.sh does)")
    result = scenarios.counter_wraps(tmp_path, prometheus, run_s=8, wrap_joules=10)
    d = result.details
    assert result.produced > 0 and result.stored == result.produced, d
    assert result.exit_status == 0
    assert d["negative_values"] == 0 and d["joules_total_decreases"] == 0, d
    assert all(n >= 2 for name, n in d["wraps_per_zone"].items() if name != "dram"), d
    for component, error in d["energy_error_percent"].items():
        assert abs(error) < 3, f"{component}: stored energy off by {error}% ({d})"
