"""Configuration of gpu-nvml, read from the environment once at start-up (exit status 2 on a bad value)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from monitoring_client.config import env_float, env_str
from monitoring_client.errors import ConfigError
from monitoring_client.power_contract import env_metric_prefix

DEFAULT_METRIC_PREFIX = "nvml"
# A GPU drawing more than this is a misread: the largest accelerators are rated around 1.2 kW.
DEFAULT_MAX_GPU_POWER_W = 3000.0


@dataclass(frozen=True)
class Settings:
    """Everything gpu-nvml needs besides the sampling interval (which the base client passes in)."""

    devices: tuple[str, ...] = ()  # NVML_DEVICES: indexes and UUIDs; empty means every GPU
    metric_prefix: str = DEFAULT_METRIC_PREFIX
    max_gpu_power_w: float = DEFAULT_MAX_GPU_POWER_W


def parse_devices(text: str) -> tuple[str, ...]:
    """``"0,2"`` or ``"GPU-8f3e...,1"`` -> the tokens; ``"all"`` or empty -> (). Raises ConfigError."""
    tokens = tuple(token.strip() for token in text.split(",") if token.strip())
    if tokens in ((), ("all",)):
        return ()
    for token in tokens:
        if not (token.isdigit() or token.startswith(("GPU-", "MIG-"))):
            raise ConfigError(
                f"NVML_DEVICES={text!r} is invalid: expected 'all' or GPU indexes and UUIDs separated by commas"
                f" (e.g. 0,2 or GPU-8f3e...), got {token!r}"
            )
    return tokens


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read NVML_DEVICES, METRIC_PREFIX and MAX_GPU_POWER_W; raise ConfigError on the first bad one."""
    env = os.environ if environ is None else environ
    return Settings(
        devices=parse_devices(env_str("NVML_DEVICES", "", environ=env)),
        metric_prefix=env_metric_prefix(DEFAULT_METRIC_PREFIX, environ=env),
        max_gpu_power_w=env_float("MAX_GPU_POWER_W", DEFAULT_MAX_GPU_POWER_W, minimum=1.0, maximum=1e6, environ=env),
    )
