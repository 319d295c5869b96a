"""Root pytest configuration shared by every suite in the repository: the real-Prometheus (and
VictoriaMetrics) fixtures, and a directory in memory for fake hardware trees.

Each suite starts Prometheus the same way (testkit, installed by ./run-tests.sh) and nobody writes a
second launcher.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit.prometheus import PrometheusServer, find_prometheus
from testkit.victoriametrics import VictoriaMetricsServer, find_victoria_metrics


def _server(tmp_path: Path, window: str | None) -> Iterator[PrometheusServer]:
    if find_prometheus() is None:
        pytest.skip("Prometheus binary not found: run ./run-tests.sh (installs it) or set PROMETHEUS_BIN")
    with PrometheusServer(tmp_path / "prometheus", out_of_order_window=window) as server:
        yield server


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[PrometheusServer]:
    """A real Prometheus on 127.0.0.1 with no out-of-order window (strictest, like a default server)."""
    yield from _server(tmp_path, None)


@pytest.fixture
def prometheus_ooo(tmp_path: Path) -> Iterator[PrometheusServer]:
    """A real Prometheus that accepts samples up to 10 minutes out of order, as the stack configures it."""
    yield from _server(tmp_path, "10m")


@pytest.fixture
def tmpfs_path(tmp_path: Path) -> Iterator[Path]:
    """A directory in memory (/dev/shm) when there is one, else tmp_path.

    A fake tree that advances in real time should live on tmpfs: on a disk-backed filesystem a rewrite of a
    page that is being written back can block for tens of milliseconds, which freezes the counters and
    shows up as single power samples that are off by several percent.
    """
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    path = Path(tempfile.mkdtemp(prefix="powermon-test-", dir=shm))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def victoria_metrics(tmp_path: Path) -> Iterator[VictoriaMetricsServer]:
    """A real VictoriaMetrics single node on 127.0.0.1, without auth."""
    if find_victoria_metrics() is None:
        pytest.skip("victoria-metrics binary not found: run ./run-tests.sh (installs it) or set VICTORIA_METRICS_BIN")
    with VictoriaMetricsServer(tmp_path / "victoria-metrics") as server:
        yield server
