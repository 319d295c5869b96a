"""Configuration of jetson-ina3221: its rows of the settings table, read from the environment at start-up.

The rows are declared the way the base client declares its own (``monitoring_client.settings_table``), so a
bad value is reported the same way (``ConfigError``: every problem at once, one line each, exit status 2)
and the README's settings table is rendered from them. ``monitor_impl.py`` calls :func:`load_settings` at
import time; a sysfs root without INA3221 rails is an environment problem (exit status 3), found right after.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from monitoring_client.power_contract import prefix_setting
from monitoring_client.settings_table import parse, setting
from monitoring_client.settings_values import Bad, CommaList, FilePath

DEFAULT_SYSFS_ROOT = Path("/sys")
DEFAULT_METRIC_PREFIX = "jetson"
# Rails that measure a whole board or module input: VDD_IN (Orin, Xavier NX, TX2 module), VDD_MUX (the
# TX1/TX2 carrier board's input, beside VDD_IN), POM_5V_IN (Nano). Every other rail of such a board is a part.
DEFAULT_TOTAL_RAILS = ("VDD_IN", "VDD_MUX", "POM_5V_IN")

ROOT_MEANING = (
    "the sysfs to read: the host's `/sys` mounted elsewhere (the compose service mounts it read-only at"
    " `/host/sys`), or a fake tree"
)
NO_RAILS = Bad("no INA3221 rails there", "/nonexistent/sys")
RAIL_NAMES_REFUSED = (Bad("a blank in a rail name", "VDD IN"), Bad("not a rail name", "VDD-IN"))


@dataclass(frozen=True)
class Settings:
    """Everything jetson-ina3221 needs besides the sampling interval (which the base client passes in)."""

    sysfs_root: Path = setting(
        "JETSON_SYSFS_ROOT", FilePath(), DEFAULT_SYSFS_ROOT, ROOT_MEANING, refused_at_start=(NO_RAILS,)
    )
    metric_prefix: str = prefix_setting(DEFAULT_METRIC_PREFIX)
    total_rails: tuple[str, ...] = setting(
        "JETSON_TOTAL_RAILS",
        CommaList(r"[A-Za-z0-9_]+", "rail names separated by commas (e.g. VDD_IN)", bad=RAIL_NAMES_REFUSED),
        DEFAULT_TOTAL_RAILS,
        "rails that measure a whole board or module input (see `scope` below)",
    )


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read every jetson-ina3221 variable; raise one ConfigError listing each invalid one on its own line."""
    return parse(Settings, environ)
