"""gpu-nvml settings: the rows of its settings table (NVML_DEVICES, METRIC_PREFIX, MAX_GPU_POWER_W)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpu_nvml.settings import Settings, load_settings
from monitoring_client import settings_table
from monitoring_client.errors import ConfigError

README = Path(__file__).resolve().parents[1] / "README.md"


def test_defaults_read_every_gpu_with_prefix_nvml() -> None:
    assert load_settings({}) == Settings(devices=(), metric_prefix="nvml", max_gpu_power_w=3000.0)


@pytest.mark.parametrize(
    "text, tokens",
    [
        ("all", ()),
        ("0", ("0",)),
        (" 0, 2 ,", ("0", "2")),
        ("GPU-ab12,1", ("GPU-ab12", "1")),
        ("MIG-GPU-8f3e/1/0", ("MIG-GPU-8f3e/1/0",)),
    ],
)
def test_devices_by_index_or_uuid(text: str, tokens: tuple[str, ...]) -> None:
    assert load_settings({"NVML_DEVICES": text}).devices == tokens


@pytest.mark.parametrize("text", ["first", "-1", "0;1", "gpu0", "all,1", ","])
def test_bad_device_lists_name_the_variable(text: str) -> None:
    with pytest.raises(ConfigError, match=r"^NVML_DEVICES=.* is invalid: expected 'all' or GPU indexes and UUIDs"):
        load_settings({"NVML_DEVICES": text})


def test_every_problem_is_reported_at_once_one_line_each() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({"NVML_DEVICES": "first", "METRIC_PREFIX": "gpu-power", "MAX_GPU_POWER_W": "0"})
    lines = str(info.value).splitlines()
    assert [line.split("=")[0] for line in lines] == ["NVML_DEVICES", "METRIC_PREFIX", "MAX_GPU_POWER_W"]
    assert info.value.exit_status == 2


def test_readme_table_is_the_settings_table() -> None:
    text = README.read_text()
    assert settings_table.update_readme(text, Settings) == text, (
        "README.md's settings table is out of date: run"
        " python -m monitoring_client.settings_table gpu_nvml.settings:Settings gpu-nvml/README.md"
    )
