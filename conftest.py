"""Root pytest configuration shared by every suite in the repository.

It makes ``testkit`` importable from any test directory and offers the real-Prometheus fixtures, so each
suite starts Prometheus the same way and nobody writes a second launcher.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from testkit.prometheus import PrometheusServer, find_prometheus  # noqa: E402
from testkit.wait import wait_until  # noqa: E402


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


@pytest.fixture(scope="session")
def client_process() -> type:
    """The client launcher of tests/reliability/harness.py (``ClientProcess``), for the device clients' suites.

    Imported as pytest names it (package ``reliability`` under tests/): pyJoules installs a top-level ``tests``
    package, so ``tests.reliability`` cannot be imported by that name.
    """
    if str(ROOT / "tests") not in sys.path:
        sys.path.append(str(ROOT / "tests"))
    return importlib.import_module("reliability.harness").ClientProcess  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def wait_for_samples() -> Callable[..., None]:
    """``wait_for_samples(client, prometheus, selector, count, what)``: until Prometheus holds ``count`` samples
    of ``selector``; fails at once, with the client's log, if the client dies meanwhile."""

    def wait(client: object, prometheus: PrometheusServer, selector: str, count: int, what: str) -> None:
        alive = client.check_alive  # type: ignore[attr-defined]
        wait_until(lambda: alive() or prometheus.count_samples(selector) >= count, 120, 0.5, what)

    return wait
