"""The launcher itself: if it lies about readiness or restarts, every integration test lies too."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests

from testkit.prometheus import PrometheusServer
from testkit.wait import GiveUp, wait_until

pytestmark = pytest.mark.integration


def test_serves_queries_and_survives_restart(prometheus: PrometheusServer) -> None:
    first_pid = prometheus.pid
    assert first_pid is not None
    assert requests.get(f"{prometheus.url}/-/ready", timeout=5).status_code == 200
    prometheus.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{prometheus.url}/-/ready", timeout=2)
    prometheus.start()
    assert prometheus.pid not in (None, first_pid)
    # Prometheus scrapes nothing here; the `up`-less server still answers an arithmetic query.
    assert prometheus.query("vector(2)")[0]["value"][1] == "2"


def test_wait_until_reports_last_value(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="last value: 0"):
        wait_until(lambda: 0, timeout=0.2, interval=0.01, message="never")
    start = time.monotonic()
    assert wait_until(lambda: time.monotonic() - start > 0.05 and "ok", timeout=5) == "ok"


def test_start_failure_shows_log(tmp_path: Path, prometheus: PrometheusServer) -> None:
    clash = PrometheusServer(tmp_path / "clash", port=prometheus.port)
    with pytest.raises(GiveUp, match="address already in use"):
        clash.start(timeout=20)
    assert clash.pid is None
