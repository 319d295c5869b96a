"""Configuration of jetson-ina3221, read from the environment once at start-up (exit status 2 on a bad value)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from monitoring_client.config import env_path, env_str
from monitoring_client.errors import ConfigError
from monitoring_client.power_contract import env_metric_prefix

DEFAULT_SYSFS_ROOT = Path("/sys")
DEFAULT_METRIC_PREFIX = "jetson"
# Rails that measure a whole board or module input: VDD_IN (Orin, Xavier NX, TX2 module), VDD_MUX (the
# TX1/TX2 carrier board's input, beside VDD_IN), POM_5V_IN (Nano). Every other rail of such a board is a part.
DEFAULT_TOTAL_RAILS = ("VDD_IN", "VDD_MUX", "POM_5V_IN")


@dataclass(frozen=True)
class Settings:
    """Everything jetson-ina3221 needs besides the sampling interval (which the base client passes in)."""

    sysfs_root: Path = DEFAULT_SYSFS_ROOT
    metric_prefix: str = DEFAULT_METRIC_PREFIX
    total_rails: tuple[str, ...] = DEFAULT_TOTAL_RAILS


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read JETSON_SYSFS_ROOT, METRIC_PREFIX and JETSON_TOTAL_RAILS; raise ConfigError on the first bad one."""
    env = os.environ if environ is None else environ
    totals_text = env_str("JETSON_TOTAL_RAILS", ",".join(DEFAULT_TOTAL_RAILS), environ=env)
    totals = tuple(name.strip() for name in totals_text.split(",") if name.strip())
    if not all(name.replace("_", "").isalnum() for name in totals):
        raise ConfigError(
            f"JETSON_TOTAL_RAILS={totals_text!r} is invalid: expected rail names separated by commas (e.g. VDD_IN)"
        )
    return Settings(
        sysfs_root=env_path("JETSON_SYSFS_ROOT", DEFAULT_SYSFS_ROOT, environ=env),
        metric_prefix=env_metric_prefix(DEFAULT_METRIC_PREFIX, environ=env),
        total_rails=totals,
    )
