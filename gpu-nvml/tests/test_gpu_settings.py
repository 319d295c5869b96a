"""gpu-nvml settings: NVML_DEVICES, METRIC_PREFIX, MAX_GPU_POWER_W."""

from __future__ import annotations

import pytest

from gpu_nvml.settings import Settings, load_settings, parse_devices
from monitoring_client.errors import ConfigError


def test_defaults_read_every_gpu_with_prefix_nvml() -> None:
    assert load_settings({}) == Settings(devices=(), metric_prefix="nvml", max_gpu_power_w=3000.0)


@pytest.mark.parametrize(
    "text, tokens",
    [("", ()), ("all", ()), ("0", ("0",)), (" 0, 2 ,", ("0", "2")), ("GPU-ab12,1", ("GPU-ab12", "1"))],
)
def test_devices_by_index_or_uuid(text: str, tokens: tuple[str, ...]) -> None:
    assert parse_devices(text) == tokens


@pytest.mark.parametrize("text", ["first", "-1", "0;1", "gpu0", "all,1"])
def test_bad_device_lists_name_the_variable(text: str) -> None:
    with pytest.raises(ConfigError, match=r"^NVML_DEVICES=.* is invalid: expected 'all' or GPU indexes and UUIDs"):
        parse_devices(text)


@pytest.mark.parametrize(
    "env, start",
    [({"METRIC_PREFIX": "gpu-power"}, "METRIC_PREFIX='gpu-power' is invalid"), ({"MAX_GPU_POWER_W": "0"}, "MAX_GPU")],
)
def test_other_bad_values(env: dict[str, str], start: str) -> None:
    with pytest.raises(ConfigError, match=f"^{start}"):
        load_settings(env)
