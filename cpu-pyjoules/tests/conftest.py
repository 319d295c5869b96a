"""Fixtures for the cpu-pyjoules tests: fake powercap trees of real files in tmp_path."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cpu_pyjoules.fake_powercap import FakePowercap


@pytest.fixture
def make_tree(tmp_path: Path) -> Iterator[Callable[..., FakePowercap]]:
    """Build fake trees (closed at the end of the test); ``make_tree(watts, **options)``."""
    made: list[FakePowercap] = []

    def make(
        watts: object = "package-0=25,core=15,dram=4", *, root: Path | None = None, **options: object
    ) -> FakePowercap:
        fake = FakePowercap(root or tmp_path / f"powercap{len(made)}", watts, **options)  # type: ignore[arg-type]
        made.append(fake)
        return fake.build()

    yield make
    for fake in made:
        fake.close()
