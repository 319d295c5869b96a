"""cpu_pyjoules.settings: defaults, overrides, and one-line ConfigError (exit 2) for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from cpu_pyjoules.settings import (
    DEFAULT_MAX_ZONE_POWER_W,
    DEFAULT_METRIC_PREFIX,
    DEFAULT_POWERCAP_ROOT,
    Settings,
    load_settings,
)
from monitoring_client import settings_table
from monitoring_client.errors import ConfigError

README = Path(__file__).resolve().parents[1] / "README.md"


def test_defaults():
    settings = load_settings({})
    assert settings == Settings()
    assert settings.powercap_root == DEFAULT_POWERCAP_ROOT == Path("/sys/class/powercap")
    assert settings.metric_prefix == DEFAULT_METRIC_PREFIX == "pyjoules_remote_write"
    assert settings.max_zone_power_w == DEFAULT_MAX_ZONE_POWER_W


def test_overrides(tmp_path):
    settings = load_settings(
        {"POWERCAP_ROOT": str(tmp_path), "METRIC_PREFIX": "rapl:host_1", "MAX_ZONE_POWER_W": "350"}
    )
    assert settings == Settings(powercap_root=tmp_path, metric_prefix="rapl:host_1", max_zone_power_w=350.0)


def test_sampler_settings():
    assert (Settings().sampler_process, Settings().sampler_realtime) == ("auto", False)
    settings = load_settings({"SAMPLER_PROCESS": "YES", "SAMPLER_REALTIME": "true"})
    assert (settings.sampler_process, settings.sampler_realtime) == ("yes", True)


@pytest.mark.parametrize(
    "env, name",
    [
        ({"METRIC_PREFIX": "9lives"}, "METRIC_PREFIX"),
        ({"METRIC_PREFIX": "has-dash"}, "METRIC_PREFIX"),
        ({"MAX_ZONE_POWER_W": "lots"}, "MAX_ZONE_POWER_W"),
        ({"MAX_ZONE_POWER_W": "0"}, "MAX_ZONE_POWER_W"),
        ({"MAX_ZONE_POWER_W": "-5"}, "MAX_ZONE_POWER_W"),
        ({"SAMPLER_PROCESS": "sometimes"}, "SAMPLER_PROCESS"),
        ({"SAMPLER_REALTIME": "perhaps"}, "SAMPLER_REALTIME"),
    ],
)
def test_bad_values_are_config_errors(env, name):
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    message = str(info.value)
    assert message.startswith(name) and "\n" not in message
    assert info.value.exit_status == 2


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as info:
        load_settings({"METRIC_PREFIX": "9lives", "SAMPLER_PROCESS": "sometimes"})
    assert [line.split("=")[0] for line in str(info.value).splitlines()] == ["METRIC_PREFIX", "SAMPLER_PROCESS"]


def test_readme_table_is_the_settings_table():
    text = README.read_text()
    assert settings_table.update_readme(text, Settings) == text, (
        "README.md's settings table is out of date: run"
        " python -m monitoring_client.settings_table cpu_pyjoules.settings:Settings cpu-pyjoules/README.md"
    )
