"""Fixtures for the gpu-nvml tests: the stand-in NVML library, compiled once per session, and its GPUs.

In-process tests load the stand-in before ``pynvml`` does (by path, with its soname libnvidia-ml.so.1, so
pynvml's own ``CDLL("libnvidia-ml.so.1")`` gets it); client processes find it through LD_LIBRARY_PATH, as
a user's would.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pynvml
import pytest

from gpu_nvml.fake_nvml import FakeGpu, FakeNvml, FakeNvmlError, compile_library

IMPL = Path(__file__).resolve().parents[1] / "monitor_impl.py"


@pytest.fixture(scope="session")
def fake_nvml_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``libnvidia-ml.so.1`` compiled from gpu_nvml/fake_nvml.c with the system compiler."""
    try:
        return compile_library(tmp_path_factory.mktemp("fake-nvml-lib"))
    except FakeNvmlError as exc:
        pytest.skip(f"cannot build the stand-in NVML library: {exc} (./run-tests.sh installs gcc)")


@pytest.fixture
def make_fake_nvml(tmp_path: Path, fake_nvml_library: Path) -> Callable[[Sequence[FakeGpu]], FakeNvml]:
    """``make_fake_nvml([FakeGpu(...), ...])``: a built stand-in using the session's library."""

    def make(gpus: Sequence[FakeGpu]) -> FakeNvml:
        return FakeNvml(tmp_path / "nvml", gpus, library=fake_nvml_library).build()

    return make


@pytest.fixture
def nvml_in_process(fake_nvml_library: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[FakeNvml], None]]:
    """Point this process's NVML at a stand-in's control file (``use(fake)``); shut NVML down afterwards."""
    if pynvml.nvmlLib is None:  # no test of this suite loads a real library in-process (the gpu test uses a child)
        ctypes.CDLL(str(fake_nvml_library), mode=ctypes.RTLD_GLOBAL)

    def use(fake: FakeNvml) -> None:
        monkeypatch.setenv("FAKE_NVML_CONTROL", str(fake.control))

    yield use
    while True:
        try:
            pynvml.nvmlShutdown()
        except pynvml.NVMLError:
            break
