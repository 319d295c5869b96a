"""Rail readings to series: labels and scope per board, V x I, exact integration, negative currents."""

from __future__ import annotations

import pytest

from jetson_ina3221.discovery import find_rails
from jetson_ina3221.processor import RailProcessor, rail_labels
from jetson_ina3221.settings import DEFAULT_TOTAL_RAILS
from monitoring_client.series_batch import as_records

S = 1_000_000_000


@pytest.mark.parametrize(
    "board, scopes",
    [
        ("orin-nx", {"VDD_IN": "total", "VDD_CPU_GPU_CV": "part", "VDD_SOC": "part"}),
        ("nano", {"POM_5V_IN": "total", "POM_5V_GPU": "part", "POM_5V_CPU": "part"}),
        ("agx-orin", {"VDD_GPU_SOC": None, "VDD_CPU_CV": None, "VIN_SYS_5V0": None, "VDDQ_VDD2_1V8AO": None}),
    ],
)
def test_scope_only_where_a_whole_board_rail_exists(make_jetson, board: str, scopes: dict[str, str | None]) -> None:
    rails = find_rails(make_jetson(board).root)
    labels = rail_labels(rails, DEFAULT_TOTAL_RAILS)
    assert {lab["component"]: lab.get("scope") for lab in labels} == scopes
    assert all(lab["method"] == "integrated" and lab["zone"] == r.zone for lab, r in zip(labels, rails, strict=True))


def test_four_series_per_rail_and_exact_energy(make_jetson) -> None:
    rails = find_rails(make_jetson("orin-nx").root)[:2]
    processor = RailProcessor(rails, "jetson", DEFAULT_TOTAL_RAILS)
    readings = [[5080, 1520, 5000, -2], [5080, 1520, 5000, -2], [5080, 3040, 5000, 400]]
    processor.handle([(k * S // 10, 1_700_000_000_000 + 100 * k, values) for k, values in enumerate(readings)])
    out = as_records(processor.take())
    assert len(out) == 3 * 2 * 4
    assert processor.take() == []

    def series(metric: str, rail: int) -> list[object]:
        return [r["value"] for r in out if r["metric"] == metric and r["labels"]["zone"] == rails[rail].zone]

    first = {m: series(m, 0)[0] for m in {r["metric"] for r in out}}
    assert first == {
        "jetson_power_watts": pytest.approx(5.08 * 1.52),
        "jetson_energy_joules_total": 0.0,
        "jetson_voltage_volts": 5.08,
        "jetson_current_amperes": 1.52,
    }
    assert {r["timestamp_ms"] for r in out} == {1_700_000_000_000 + 100 * k for k in range(3)}
    vin = 5.08 * 1.52
    total = "jetson_energy_joules_total"
    assert series(total, 0) == pytest.approx([0.0, vin * 0.1, vin * 0.1 + (vin + 2 * vin) / 2 * 0.1], rel=1e-12)
    # a slightly negative current shows in the gauges but never lowers the energy total
    assert series("jetson_current_amperes", 1) == [-0.002, -0.002, 0.4]
    assert series(total, 1) == pytest.approx([0.0, 0.0, 2.0 / 2 * 0.1])
