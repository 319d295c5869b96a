"""Configuration of cpu-pyjoules, read from the environment once at start-up.

Parsing goes through ``monitoring_client.config`` so that every client reports a bad value the same way
(``ConfigError``: one line, exit status 2) and nobody keeps a second copy of the parsing rules.
``monitor_impl.py`` calls :func:`load_settings` at import time, so a typo stops the process before any
thread starts instead of surfacing minutes later.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from monitoring_client.config import env_bool, env_choice, env_float, env_path, env_str
from monitoring_client.errors import ConfigError

DEFAULT_POWERCAP_ROOT = Path("/sys/class/powercap")
DEFAULT_METRIC_PREFIX = "pyjoules_remote_write"
# A single RAPL zone above this many watts is a misread, not a measurement: the largest server packages
# are rated around 500 W and psys of a workstation stays well below. Used to reject impossible deltas.
DEFAULT_MAX_ZONE_POWER_W = 1500.0

_METRIC_PREFIX_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


@dataclass(frozen=True)
class Settings:
    """Everything cpu-pyjoules needs besides the sampling interval (which the base client passes in)."""

    powercap_root: Path = DEFAULT_POWERCAP_ROOT
    metric_prefix: str = DEFAULT_METRIC_PREFIX
    max_zone_power_w: float = DEFAULT_MAX_ZONE_POWER_W
    # Sample in a child process: "auto" (for intervals below 5 ms), "yes" or "no"; see sampler_process.
    sampler_process: str = "auto"
    # Ask for real-time scheduling of that child (needs CAP_SYS_NICE; a warning and no effect without it).
    sampler_realtime: bool = False


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read POWERCAP_ROOT, METRIC_PREFIX, MAX_ZONE_POWER_W, SAMPLER_PROCESS and SAMPLER_REALTIME.

    Raises ConfigError on the first bad one.
    """
    env = os.environ if environ is None else environ
    root = env_path("POWERCAP_ROOT", DEFAULT_POWERCAP_ROOT, environ=env)
    prefix = env_str("METRIC_PREFIX", DEFAULT_METRIC_PREFIX, environ=env)
    if not _METRIC_PREFIX_RE.match(prefix):
        raise ConfigError(
            f"METRIC_PREFIX={prefix!r} is invalid: expected a Prometheus metric name prefix "
            "(letters, digits, '_' or ':', not starting with a digit)"
        )
    ceiling = env_float("MAX_ZONE_POWER_W", DEFAULT_MAX_ZONE_POWER_W, minimum=1.0, maximum=1e6, environ=env)
    sampler = env_choice("SAMPLER_PROCESS", "auto", ("auto", "yes", "no"), environ=env)
    realtime = env_bool("SAMPLER_REALTIME", False, environ=env)
    return Settings(
        powercap_root=Path(root),
        metric_prefix=prefix,
        max_zone_power_w=float(ceiling),
        sampler_process=sampler,
        sampler_realtime=realtime,
    )
