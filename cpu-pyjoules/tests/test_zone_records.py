"""cpu_pyjoules.records: the three series per zone, with the documented names and labels, and the
scope rule that keeps ``sum(x{scope!="part"})`` from counting a joule twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from cpu_pyjoules.rapl_discovery import RaplZone
from cpu_pyjoules.records import ZoneSeries, metric_names, zone_scopes
from monitoring_client.series_batch import as_records


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


def add(series, zone, energy_uj, power_w, total_j, timestamp_ms):
    """One sample of each of the zone's series, as the processor appends them."""
    series.stamps[zone].append(timestamp_ms)
    for values, value in zip(series.values[zone], (energy_uj, power_w, total_j), strict=True):
        values.append(value)


def test_three_series_per_zone():
    series = ZoneSeries(LAPTOP, "pyjoules_remote_write")
    add(series, 3, energy_uj=400_000.0, power_w=4.0, total_j=12.345678, timestamp_ms=1_700_000_000_123)
    batches = series.take()
    assert len(batches) == 3
    out = as_records(batches)
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
    series = ZoneSeries(CLIENT, "p")
    add(series, 0, 1.0, 1.0, 1.0, 1)
    first = series.take()
    add(series, 0, 2.0, 2.0, 3.0, 2)
    second = series.take()
    assert len({id(b.labels) for b in first + second}) == 2  # the seed's labels and the contract's
    assert first[0].timestamps is first[1].timestamps is first[2].timestamps  # one list per zone


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
    series = ZoneSeries(layout(("intel-rapl:0", "package-0")), "p")
    add(series, 0, 10.0, 1.0, 1.0, 1)
    assert [r["labels"].get("scope") for r in as_records(series.take())] == [
        None,
        "total",
        "total",
    ]  # the seed's energy_uj has none


def test_the_sum_of_totals_is_the_energy_drawn_once():
    """With the fake's watts per zone, what a dashboard sums (scope!="part") is each host's true draw."""
    watts = {"package-0": 25.0, "core": 15.0, "uncore": 2.0, "dram": 4.0, "psys": 40.0}
    scopes = zone_scopes(LAPTOP)
    assert sum(watts[z.component] for z, s in zip(LAPTOP, scopes, strict=True) if s != "part") == 40.0
    scopes = zone_scopes(LAPTOP[:4])  # the same machine without psys: package plus dram, core and uncore inside
    assert sum(watts[z.component] for z, s in zip(LAPTOP[:4], scopes, strict=True) if s != "part") == 29.0
