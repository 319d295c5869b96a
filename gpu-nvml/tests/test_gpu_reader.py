"""The per-tick read through the real pynvml on the stand-in: values, a lost GPU, health."""

from __future__ import annotations

import logging
import time

import pytest

from gpu_nvml.devices import open_gpus
from gpu_nvml.fake_nvml import FakeGpu
from gpu_nvml.reader import GpuReader
from gpu_nvml.settings import Settings
from monitoring_client.health import HealthState
from monitoring_client.impl_health import ImplementationHealth


def test_read_gives_energy_and_power_per_gpu(make_fake_nvml, nvml_in_process) -> None:
    fake = make_fake_nvml([FakeGpu("A", 250), FakeGpu("B", 60, energy=False), FakeGpu("C", 70.5, instant=False)])
    nvml_in_process(fake)
    reader = GpuReader(open_gpus(Settings()))
    before = [fake.counter_joules(0), fake.counter_joules(2)]
    values = reader.read()
    after = [fake.counter_joules(0), fake.counter_joules(2)]
    assert values[1::2] == [250_000, 60_000, 70_500]  # mW
    assert values[2] is None  # no counter on B
    for got, low, high in zip((values[0], values[4]), before, after, strict=True):
        assert isinstance(got, int) and int(low * 1000) <= got <= high * 1000


def test_counters_advance_in_real_time_at_the_set_power(make_fake_nvml, nvml_in_process) -> None:
    fake = make_fake_nvml([FakeGpu("A", 300)])
    nvml_in_process(fake)
    reader = GpuReader(open_gpus(Settings()))
    before0, e0, after0 = time.monotonic_ns(), reader.read()[0], time.monotonic_ns()
    time.sleep(0.3)
    before1, e1, after1 = time.monotonic_ns(), reader.read()[0], time.monotonic_ns()
    assert e0 is not None and e1 is not None
    # 300 W = 0.3 mJ/µs; the counter ran between the two reads (±1 mJ of rounding each)
    assert 300 * (before1 - after0) / 1e6 - 2 <= e1 - e0 <= 300 * (after1 - before0) / 1e6 + 2
    fake.reset_counter(0)
    assert reader.read()[0] < e1  # a restart: the counter starts again from zero


def test_a_lost_gpu_is_reported_once_and_never_read_again(make_fake_nvml, nvml_in_process, caplog) -> None:
    fake = make_fake_nvml([FakeGpu("A", 250), FakeGpu("B", 60)])
    nvml_in_process(fake)
    health = ImplementationHealth()
    state = HealthState(implementation=health)
    reader = GpuReader(open_gpus(Settings()), health=health)
    assert None not in reader.read()
    fake.lose(1)
    with caplog.at_level(logging.WARNING):
        for _ in range(5):
            values = reader.read()
            assert values[2:] == [None, None] and values[1] == 250_000
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(errors) == 1 and errors[0].levelno == logging.ERROR
    assert "GPU 1 (GPU-fa4e0000-0000-4000-8000-000000000001, B) is lost" in errors[0].getMessage()
    ok, text = state.check()
    assert not ok and "GPU 1" in text and "fell off the bus" in text
    assert reader.lost == [False, True]


@pytest.mark.parametrize("value_type, member, expected", [(1, "uiVal", 123_456), (0, "dVal", 123_456)])
def test_the_instant_field_is_read_by_its_value_type(value_type: int, member: str, expected: int) -> None:
    class Value:
        uiVal = 123_456
        dVal = 123_456.4

    class Field:
        nvmlReturn = 0
        valueType = value_type
        value = Value()

    reader = GpuReader([])
    reader._fields = lambda handle, fields: [Field()]  # type: ignore[assignment]
    assert reader._instant(None) == expected
