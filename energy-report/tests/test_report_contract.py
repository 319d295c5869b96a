"""The naming contract: selectors, --match validation, device kinds and scope (no double counting)."""

from __future__ import annotations

import pytest

from energy_report import contract
from energy_report.energy import SeriesEnergy
from energy_report.errors import UsageError
from energy_report.report import SeriesReport, WindowReport


def test_selectors_cover_every_prefix_and_add_the_users_matchers() -> None:
    inner = contract.check_matchers(['{host="lab-7"}', '{ source =~ "cpu.*" , }', "{}"])
    assert inner == ['host="lab-7"', 'source =~ "cpu.*"']
    assert contract.energy_selector(inner) == (
        '{__name__=~".+_energy_joules_total",zone!="",host="lab-7",source =~ "cpu.*"}'
    )
    assert contract.power_selector([]) == '{__name__=~".+_power_watts",zone!=""}'


@pytest.mark.parametrize(
    "bad", ["host=lab-7", '{host="lab-7"', "{host='lab-7'}", '{1host="x"}', '{host~"x"}', '{__name__="x"}']
)
def test_bad_match_values_are_usage_errors(bad: str) -> None:
    with pytest.raises(UsageError, match="--match"):
        contract.check_matchers([bad])


def test_device_kinds_and_power_names() -> None:
    assert contract.device_kind("pyjoules_remote_write_energy_joules_total") == "CPU"
    assert contract.device_kind("nvml_energy_joules_total") == "GPU"
    assert contract.device_kind("jetson_energy_joules_total") == "board"
    assert contract.device_kind("acme_energy_joules_total") == "acme"
    assert contract.power_name("nvml_energy_joules_total") == "nvml_power_watts"


def series(metric: str, host: str, zone: str, joules: float, **labels: str) -> SeriesReport:
    energy = SeriesEnergy(0.0, 10.0, joules=joules, covered_s=10.0)
    return SeriesReport({"__name__": metric, "host": host, "zone": zone, **labels}, energy)


def test_totals_add_only_scope_total_per_host_and_device_kind() -> None:
    window = WindowReport("w", 0.0, 10.0)
    window.series = [
        series("jetson_energy_joules_total", "orin", "1-0040:1", 80.0, component="VDD_IN", scope="total"),
        series("jetson_energy_joules_total", "orin", "1-0040:2", 30.0, component="VDD_CPU_GPU_CV", scope="part"),
        series("jetson_energy_joules_total", "orin", "1-0040:3", 20.0, component="VDD_SOC", scope="part"),
        series("nvml_energy_joules_total", "orin", "GPU-1", 50.0, scope="total"),
        series("nvml_energy_joules_total", "box", "GPU-2", 70.0, scope="total"),
    ]
    totals = {(t.host, t.device_kind): t for t in window.totals()}
    assert set(totals) == {("orin", "board"), ("orin", "GPU"), ("box", "GPU")}
    assert totals[("orin", "board")].joules == 80.0 and totals[("orin", "board")].zones == ["1-0040:1"]
    assert totals[("orin", "GPU")].avg_watts == pytest.approx(5.0)


def test_series_without_scope_nest_like_rapl() -> None:
    assert contract.scope_of({"zone": "intel-rapl:0:1"}) == "part"
    assert contract.scope_of({"zone": "intel-rapl:0:2", "component": "dram"}) == "total"  # not inside package
    assert contract.scope_of({"zone": "intel-rapl:0:2", "component": "dram"}, host_has_psys=True) == "part"
    assert contract.scope_of({"zone": "intel-rapl:0", "component": "package-0"}) == "total"
    assert contract.scope_of({"zone": "intel-rapl:0", "component": "package-0"}, host_has_psys=True) == "part"
    assert contract.scope_of({"zone": "intel-rapl:1", "component": "psys"}, host_has_psys=True) == "total"
    assert contract.scope_of({"zone": "GPU-1"}) == "total"
    assert contract.scope_of({"zone": "intel-rapl:0:1", "scope": "total"}) == "total"  # the label wins
