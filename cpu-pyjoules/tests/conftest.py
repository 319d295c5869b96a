"""Fixtures for the cpu-pyjoules tests: fake powercap trees of real files in tmp_path."""

from __future__ import annotations

import os
import shutil
import tempfile
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
    path = Path(tempfile.mkdtemp(prefix="cpu-pyjoules-test-", dir=shm))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
