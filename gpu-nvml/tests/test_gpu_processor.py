"""GPU readings to series: counter totals, restarts filled from power, integration, missing values."""

from __future__ import annotations

import pytest

from gpu_nvml.devices import POWER_FROM_COUNTER, POWER_INSTANT, Gpu
from gpu_nvml.processor import GpuProcessor
from monitoring_client.device_loop import Record
from monitoring_client.series_batch import as_records

S = 1_000_000_000
T0 = 1_700_000_000_000


def gpu(index: int, counter: bool, power: str = POWER_INSTANT) -> Gpu:
    return Gpu(index, f"GPU-{index}", f"Model {index}", None, counter, power)


def run(processor: GpuProcessor, readings: list[list[int | None]], step_ns: int = S // 10) -> list[Record]:
    """The samples of ``readings`` as records, series by series (each in time order)."""
    processor.handle([(k * step_ns, T0 + k * 100, values) for k, values in enumerate(readings)])
    return as_records(processor.take())


def series(out: list[Record], metric: str, zone: str) -> list[float]:
    return [r["value"] for r in out if r["metric"] == metric and r["labels"]["zone"] == zone]  # type: ignore[index]


def test_labels_follow_the_contract() -> None:
    processor = GpuProcessor([gpu(0, True), gpu(3, False)], "nvml", 3000)
    out = run(processor, [[0, 1000, None, 2000]])
    assert out[0]["labels"] == {
        "component": "gpu",
        "zone": "GPU-0",
        "method": "counter",
        "index": "0",
        "model": "Model 0",
    }
    assert out[2]["labels"]["method"] == "integrated"  # type: ignore[index]
    assert {r["metric"] for r in out} == {"nvml_power_watts", "nvml_energy_joules_total"}


def test_a_counter_gpu_totals_its_counter_from_the_client_start() -> None:
    processor = GpuProcessor([gpu(0, True)], "nvml", 3000)
    out = run(processor, [[5_000_000 + 25_000 * k, 250_000] for k in range(11)])  # 250 W for 1 s
    assert series(out, "nvml_energy_joules_total", "GPU-0") == pytest.approx([25.0 * k for k in range(11)])
    assert series(out, "nvml_power_watts", "GPU-0") == [250.0] * 11


def test_a_counter_restart_is_filled_from_the_power_readings(caplog: pytest.LogCaptureFixture) -> None:
    processor = GpuProcessor([gpu(0, True)], "nvml", 3000)
    counter = [9_000_000, 9_025_000, 9_050_000, 12_000, 37_000]  # driver reloaded during the 4th interval
    out = run(processor, [[c, 250_000] for c in counter])
    totals = series(out, "nvml_energy_joules_total", "GPU-0")
    assert totals == pytest.approx([0.0, 25.0, 50.0, 75.0, 100.0])
    assert processor.counters[0] is not None and processor.counters[0].resets == 1
    assert "GPU 0 (GPU-0): energy counter restarted or jumped (now 12000 mJ" in caplog.text


def test_a_gpu_without_counter_integrates_its_power() -> None:
    processor = GpuProcessor([gpu(0, False)], "nvml", 3000)
    out = run(processor, [[None, 60_000], [None, 60_000], [None, 120_000]])
    assert series(out, "nvml_energy_joules_total", "GPU-0") == pytest.approx([0.0, 6.0, 15.0])


def test_without_power_reading_the_counter_rate_is_the_power() -> None:
    processor = GpuProcessor([gpu(0, True, POWER_FROM_COUNTER)], "nvml", 3000)
    out = run(processor, [[1000, None], [8000, None], [15_000, None]])
    assert series(out, "nvml_power_watts", "GPU-0") == pytest.approx([70.0, 70.0])
    assert series(out, "nvml_energy_joules_total", "GPU-0") == pytest.approx([0.0, 7.0, 14.0])


def test_missing_values_leave_gaps_but_no_energy_is_lost() -> None:
    processor = GpuProcessor([gpu(0, True), gpu(1, False)], "nvml", 3000)
    readings = [[0, 100_000, None, 50_000], [None, 100_000, None, None], [20_000, 100_000, None, 50_000]]
    out = run(processor, readings)
    assert series(out, "nvml_energy_joules_total", "GPU-0") == pytest.approx([0.0, 20.0])
    assert series(out, "nvml_power_watts", "GPU-0") == [100.0, 100.0, 100.0]
    assert series(out, "nvml_energy_joules_total", "GPU-1") == pytest.approx([0.0, 10.0])  # bridged the gap
    assert series(out, "nvml_power_watts", "GPU-1") == [50.0, 50.0]
