"""Configuration of gpu-nvml: its rows of the settings table, read from the environment at start-up.

The rows are declared the way the base client declares its own (``monitoring_client.settings_table``), so a
bad value is reported the same way (``ConfigError``: every problem at once, one line each, exit status 2)
and the README's settings table is rendered from them. ``monitor_impl.py`` calls :func:`load_settings` at
import time, before NVML is started. Whether the GPUs named in NVML_DEVICES exist is checked when NVML
answers (``gpu_nvml.devices``), also with exit status 2.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from monitoring_client.power_contract import prefix_setting
from monitoring_client.settings_table import parse, setting
from monitoring_client.settings_values import Bad, CommaList, Number

DEFAULT_METRIC_PREFIX = "nvml"
# A GPU drawing more than this is a misread: the largest accelerators are rated around 1.2 kW.
DEFAULT_MAX_GPU_POWER_W = 3000.0

GPU_SELECTION = CommaList(
    r"\d+|(?:GPU|MIG)-[0-9A-Za-z/-]+",
    "GPU indexes and UUIDs separated by commas (e.g. 0,2 or GPU-8f3e...)",
    everything="all",
    bad=(Bad("neither an index nor a UUID", "first"), Bad("negative index", "-1"), Bad("'all' among GPUs", "all,1")),
)

SELECTION_MEANING = (
    "GPUs to read; an index or UUID this machine lacks stops the client (exit status 2) with the list of GPUs it has"
)
MAX_POWER_MEANING = (
    "a GPU drawing more than this is a misread: an energy counter jump beyond it is not trusted (that interval is"
    " taken from the power readings)"
)


@dataclass(frozen=True)
class Settings:
    """Everything gpu-nvml needs besides the sampling interval (which the base client passes in)."""

    devices: tuple[str, ...] = setting(
        "NVML_DEVICES", GPU_SELECTION, (), SELECTION_MEANING, refused_at_start=(Bad("a GPU it lacks", "97"),)
    )
    metric_prefix: str = prefix_setting(DEFAULT_METRIC_PREFIX)
    max_gpu_power_w: float = setting(
        "MAX_GPU_POWER_W", Number(minimum=1.0, maximum=1e6), DEFAULT_MAX_GPU_POWER_W, MAX_POWER_MEANING
    )


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read every gpu-nvml variable; raise one ConfigError listing each invalid one on its own line."""
    return parse(Settings, environ)
