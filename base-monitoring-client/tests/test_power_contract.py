"""The naming contract: metric names, labels and the series every power client emits."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from monitoring_client import power_contract as pc
from monitoring_client.errors import ConfigError
from monitoring_client.records import LABEL_NAME_RE, METRIC_NAME_RE
from monitoring_client.settings_table import parse, rows


def test_metric_names_follow_prometheus_base_units() -> None:
    assert pc.power_metric("nvml") == "nvml_power_watts"
    assert pc.energy_metric("jetson") == "jetson_energy_joules_total"
    assert METRIC_NAME_RE.match(pc.power_metric("a:b_c"))


@pytest.mark.parametrize("prefix", ["", "9gpu", "gpu-nvml", "gpu nvml", "gpü"])
def test_a_prefix_that_cannot_start_a_metric_name_is_a_config_error(prefix: str) -> None:
    with pytest.raises(ConfigError, match=r"^METRIC_PREFIX=.* is invalid: expected a Prometheus metric name prefix"):
        pc.check_prefix(prefix)


def test_prefix_row_of_a_settings_table() -> None:
    @dataclass(frozen=True)
    class Settings:
        metric_prefix: str = pc.prefix_setting("nvml")

    assert parse(Settings, {}).metric_prefix == "nvml"
    assert parse(Settings, {"METRIC_PREFIX": " lab_gpu "}).metric_prefix == "lab_gpu"
    with pytest.raises(ConfigError, match="^METRIC_PREFIX='1x' is invalid: expected a Prometheus metric name prefix"):
        parse(Settings, {"METRIC_PREFIX": "1x"})
    assert [(row.variable, row.meaning) for row in rows(Settings)] == [("METRIC_PREFIX", "prefix of the metric names")]


def test_zone_labels_hold_the_contract_and_extra_labels() -> None:
    labels = pc.zone_labels("gpu", "GPU-1", pc.METHOD_COUNTER, extra={"index": "0", "model": "T4"})
    assert labels == {"component": "gpu", "zone": "GPU-1", "method": "counter", "index": "0", "model": "T4"}
    assert all(LABEL_NAME_RE.match(name) for name in labels)
    scoped = pc.zone_labels("VDD_IN", "1-0040:1", pc.METHOD_INTEGRATED, scope=pc.SCOPE_TOTAL)
    assert scoped["scope"] == "total" and scoped["method"] == "integrated"
    assert "scope" not in pc.zone_labels("gpu", "GPU-1", "counter")


@pytest.mark.parametrize(
    "args, kwargs",
    [
        (("gpu", "GPU-1", "guessed"), {}),
        (("gpu", "GPU-1", "counter"), {"scope": "whole"}),
        (("", "GPU-1", "counter"), {}),
        (("gpu", "", "counter"), {}),
        (("gpu", "GPU-1", "counter"), {"extra": {"zone": "other"}}),
        (("gpu", "GPU-1", "counter"), {"extra": {"host": "other"}}),
    ],
)
def test_labels_outside_the_contract_are_refused(args: tuple[str, str, str], kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        pc.zone_labels(*args, **kwargs)  # type: ignore[arg-type]


def test_series_share_one_label_dict_per_zone() -> None:
    a = pc.zone_labels("gpu", "GPU-a", "counter")
    b = pc.zone_labels("gpu", "GPU-b", "integrated")
    series = pc.PowerSeries("nvml", [a, b], ("nvml_temperature_celsius",))
    series.add(1, 70.5, 12.25, 1_700_000_000_000, 41.0)
    series.add(1, 71.0, 12.5, 1_700_000_000_100, 42.0)
    batches = series.take()
    assert [(x.metric, x.labels, list(x.timestamps), list(x.values)) for x in batches] == [
        ("nvml_power_watts", b, [1_700_000_000_000, 1_700_000_000_100], [70.5, 71.0]),
        ("nvml_energy_joules_total", b, [1_700_000_000_000, 1_700_000_000_100], [12.25, 12.5]),
        ("nvml_temperature_celsius", b, [1_700_000_000_000, 1_700_000_000_100], [41.0, 42.0]),
    ]
    assert all(x.labels is b for x in batches)
    assert series.take() == []


def test_apart_gives_power_and_energy_their_own_timestamps() -> None:
    series = pc.PowerSeries("nvml", [pc.zone_labels("gpu", "GPU-a", "counter")], apart=True)
    series.add_power(0, 70.0, 1_700_000_000_000)
    series.add(0, 71.0, 5.0, 1_700_000_000_100)
    assert [(x.metric, list(x.timestamps)) for x in series.take()] == [
        ("nvml_power_watts", [1_700_000_000_000, 1_700_000_000_100]),
        ("nvml_energy_joules_total", [1_700_000_000_100]),
    ]
    with pytest.raises(ValueError):
        pc.PowerSeries("nvml", [], ("x",), apart=True)


def test_series_refuse_a_bad_prefix() -> None:
    with pytest.raises(ConfigError):
        pc.PowerSeries("0nvml", [])
