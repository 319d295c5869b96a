"""Root pytest configuration shared by every suite in the repository.

It makes ``testkit`` importable from any test directory and offers the real-Prometheus fixtures, so each
suite starts Prometheus the same way and nobody writes a second launcher.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from testkit.prometheus import PrometheusServer, find_prometheus  # noqa: E402


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
