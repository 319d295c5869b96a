"""cpu_pyjoules.records: the three series per zone and sample, with the documented names and labels, and the
scope rule that keeps ``sum(x{scope!="part"})`` from counting a joule twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from cpu_pyjoules.rapl_discovery import RaplZone
from cpu_pyjoules.records import RecordBuilder, metric_names, zone_scopes


def zone(zone_id, component):
    return RaplZone(zone_id, component, Path("/x") / zone_id / "energy_uj", 10**9, domain=None)


def layout(*zones: tuple[str, str]) -> list[RaplZone]:
    return [zone(zone_id, component) for zone_id, component in zones]


SERVER = layout(  # two sockets, dram as a sub-zone of each package, no psys
    ("intel-rapl:0", "package-0"),
    ("intel-rapl:0:0", "dram"),
    ("intel-rapl:1", "package-1"),
    ("intel-rapl:1:0", "dram"),
)
CLIENT = layout(("intel-rapl:0", "package-0"), ("intel-rapl:0:0", "core"), ("intel-rapl:0:1", "uncore"))
LAPTOP = layout(  # psys beside the package: the platform's whole power
    ("intel-rapl:0", "package-0"),
    ("intel-rapl:0:0", "core"),
    ("intel-rapl:0:1", "uncore"),
    ("intel-rapl:0:2", "dram"),
    ("intel-rapl:1", "psys"),
)


def test_three_records_per_zone_and_sample():
    builder = RecordBuilder(LAPTOP, "pyjoules_remote_write")
    out = []
    builder.append(
        out, 3, delta_uj=400_000, interval_ns=100_000_000, total_uj=12_345_678, timestamp_ms=1_700_000_000_123
    )
    contract = {"component": "dram", "zone": "intel-rapl:0:2", "method": "counter", "scope": "part"}
    assert sorted(out, key=lambda r: r["metric"]) == [
        {
            "metric": "pyjoules_remote_write_energy_joules_total",
            "labels": contract,
            "value": pytest.approx(12.345678),
            "timestamp_ms": 1_700_000_000_123,
        },
        {
            # The seed's metric keeps the seed's labels: existing queries and series stay as they were.
            "metric": "pyjoules_remote_write_energy_uj",
            "labels": {"component": "dram", "zone": "intel-rapl:0:2"},
            "value": 400_000.0,
            "timestamp_ms": 1_700_000_000_123,
        },
        {
            "metric": "pyjoules_remote_write_power_watts",
            "labels": contract,
            "value": pytest.approx(4.0),
            "timestamp_ms": 1_700_000_000_123,
        },
    ]
    assert all(type(r["value"]) is float for r in out)


def test_prefix_is_configurable():
    assert metric_names("rapl") == ("rapl_energy_uj", "rapl_power_watts", "rapl_energy_joules_total")


def test_label_dicts_are_built_once_per_zone():
    builder = RecordBuilder(CLIENT, "p")
    out = []
    builder.append(out, 0, 1, 1, 1, 1)
    builder.append(out, 0, 2, 1, 3, 2)
    assert len({id(r["labels"]) for r in out}) == 2  # the seed's labels and the contract's


@pytest.mark.parametrize(
    "zones, totals",
    [
        (LAPTOP, {"psys"}),
        (CLIENT, {"package-0"}),
        (LAPTOP[:4], {"package-0", "dram"}),
    ],
    ids=["with psys", "package and parts", "dram beside core and uncore"],
)
def test_psys_else_packages_and_dram_are_the_totals(zones, totals):
    scopes = zone_scopes(zones)
    assert {z.component for z, s in zip(zones, scopes, strict=True) if s == "total"} == totals
    assert all(s == "part" for z, s in zip(zones, scopes, strict=True) if z.component not in totals)


def test_every_zone_has_a_scope_even_where_none_is_a_part():
    # dram is a sub-zone of each package in the tree, yet a total: the label says so, nobody has to guess
    assert zone_scopes(SERVER) == ["total"] * 4
    builder = RecordBuilder(layout(("intel-rapl:0", "package-0")), "p")
    out = []
    builder.append(out, 0, 10, 10, 10, 1)
    assert [r["labels"].get("scope") for r in out] == [None, "total", "total"]  # the seed's energy_uj has none


def test_the_sum_of_totals_is_the_energy_drawn_once():
    """With the fake's watts per zone, what a dashboard sums (scope!="part") is each host's true draw."""
    watts = {"package-0": 25.0, "core": 15.0, "uncore": 2.0, "dram": 4.0, "psys": 40.0}
    scopes = zone_scopes(LAPTOP)
    assert sum(watts[z.component] for z, s in zip(LAPTOP, scopes, strict=True) if s != "part") == 40.0
    scopes = zone_scopes(LAPTOP[:4])  # the same machine without psys: package plus dram, core and uncore inside
    assert sum(watts[z.component] for z, s in zip(LAPTOP[:4], scopes, strict=True) if s != "part") == 29.0
