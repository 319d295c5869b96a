"""cpu_pyjoules.records: the three series per zone and sample, with the documented names and labels."""

from __future__ import annotations

from pathlib import Path

import pytest

from cpu_pyjoules.rapl_discovery import RaplZone
from cpu_pyjoules.records import RecordBuilder, metric_names


def zone(zone_id, component):
    return RaplZone(zone_id, component, Path("/x") / zone_id / "energy_uj", 10**9, domain=None)


def test_three_records_per_zone_and_sample():
    builder = RecordBuilder(
        [zone("intel-rapl:0", "package-0"), zone("intel-rapl:0:1", "dram")], "pyjoules_remote_write"
    )
    out = []
    builder.append(
        out, 1, delta_uj=400_000, interval_ns=100_000_000, total_uj=12_345_678, timestamp_ms=1_700_000_000_123
    )
    assert out == [
        {
            "metric": "pyjoules_remote_write_energy_uj",
            "labels": {"component": "dram", "zone": "intel-rapl:0:1"},
            "value": 400_000.0,
            "timestamp_ms": 1_700_000_000_123,
        },
        {
            "metric": "pyjoules_remote_write_power_watts",
            "labels": {"component": "dram", "zone": "intel-rapl:0:1"},
            "value": pytest.approx(4.0),
            "timestamp_ms": 1_700_000_000_123,
        },
        {
            "metric": "pyjoules_remote_write_energy_joules_total",
            "labels": {"component": "dram", "zone": "intel-rapl:0:1"},
            "value": pytest.approx(12.345678),
            "timestamp_ms": 1_700_000_000_123,
        },
    ]
    assert all(type(r["value"]) is float for r in out)


def test_prefix_is_configurable():
    assert metric_names("rapl") == ("rapl_energy_uj", "rapl_power_watts", "rapl_energy_joules_total")


def test_label_dicts_are_built_once_per_zone():
    builder = RecordBuilder([zone("intel-rapl:0", "package-0")], "p")
    out = []
    builder.append(out, 0, 1, 1, 1, 1)
    builder.append(out, 0, 2, 1, 3, 2)
    assert len({id(r["labels"]) for r in out}) == 1
