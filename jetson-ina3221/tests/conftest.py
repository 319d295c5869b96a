"""Fixtures for the jetson-ina3221 tests: fake Jetson trees of real files, and the client launcher."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from jetson_ina3221.fake_sysfs import FakeJetson

IMPL = Path(__file__).resolve().parents[1] / "monitor_impl.py"


@pytest.fixture
def make_jetson(tmp_path: Path) -> Callable[..., FakeJetson]:
    """``make_jetson(board, {rail: (volts, amps)})``: a built fake tree under tmp_path."""

    def make(board: str, values: Mapping[str, tuple[float, float]] | None = None) -> FakeJetson:
        return FakeJetson(tmp_path / f"sys-{board}", board, values).build()

    return make
