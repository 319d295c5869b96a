"""Configuration of cpu-pyjoules: its rows of the settings table, read from the environment at start-up.

The rows are declared the way the base client declares its own (``monitoring_client.settings_table``), so
a bad value is reported the same way (``ConfigError``: every problem at once, one line each, exit status 2)
and the README's settings table is rendered from them. ``monitor_impl.py`` calls :func:`load_settings` at
import time, so a typo stops the process before any thread starts instead of surfacing minutes later.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cpu_pyjoules.sampler_process import AUTO, SAMPLER_MODES
from monitoring_client.power_contract import prefix_setting
from monitoring_client.settings_table import parse, setting
from monitoring_client.settings_values import Bad, Choice, FilePath, Flag, Number

DEFAULT_POWERCAP_ROOT = Path("/sys/class/powercap")
DEFAULT_METRIC_PREFIX = "pyjoules_remote_write"
# A single RAPL zone above this many watts is a misread, not a measurement: the largest server packages
# are rated around 500 W and psys of a workstation stays well below. Used to reject impossible deltas.
DEFAULT_MAX_ZONE_POWER_W = 1500.0


@dataclass(frozen=True)
class Settings:
    """Everything cpu-pyjoules needs besides the sampling interval (which the base client passes in)."""

    powercap_root: Path = setting(
        "POWERCAP_ROOT",
        FilePath(),
        DEFAULT_POWERCAP_ROOT,
        "the tree holding `intel-rapl/`; e.g. the host's `/sys/devices/virtual/powercap` mounted read-only at"
        " `/host/powercap`",
        refused_at_start=(Bad("no RAPL tree there", "/nonexistent/powercap"),),
    )
    metric_prefix: str = prefix_setting(DEFAULT_METRIC_PREFIX, "prefix of the three metric names")
    max_zone_power_w: float = setting(
        "MAX_ZONE_POWER_W",
        Number(minimum=1.0, maximum=1e6),
        DEFAULT_MAX_ZONE_POWER_W,
        "a zone drawing more than this is a misread: such an interval is dropped and counted",
    )
    sampler_process: str = setting(
        "SAMPLER_PROCESS",
        Choice(SAMPLER_MODES),
        AUTO,
        "sample in a child process (`auto`: above 200 Hz); see below",
    )
    sampler_realtime: bool = setting(
        "SAMPLER_REALTIME",
        Flag(),
        False,
        "ask for real-time scheduling (`SCHED_FIFO`) of that child; needs CAP_SYS_NICE (`cap_add: [SYS_NICE]`),"
        " otherwise a warning and no effect",
    )


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read every cpu-pyjoules variable; raise one ConfigError listing each invalid one on its own line."""
    return parse(Settings, environ)
