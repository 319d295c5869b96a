"""The naming contract every power client follows, and the selectors built from it.

Each client publishes ``<prefix>_energy_joules_total`` (a counter, monotonic except when the client
restarts) and ``<prefix>_power_watts`` (a gauge) per zone, labelled ``component``, ``zone`` (unique per
host), ``source`` and ``host``, optionally ``method`` and ``scope`` (``total`` for a zone that measures a
whole device, ``part`` for its parts). This module is the only place that knows those names, so the report
covers every client, present and future, without naming any of them except to give device kinds a
readable name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from energy_report.errors import UsageError

ENERGY_SUFFIX = "_energy_joules_total"
POWER_SUFFIX = "_power_watts"
# Readable device kinds for the prefixes of the project's clients; any other prefix is its own kind.
DEVICE_KINDS = {"pyjoules_remote_write": "CPU", "nvml": "GPU", "jetson": "board"}
# Labels every contract series has; a series lacking ``zone`` is not a contract series.
CONTRACT_LABELS = ("host", "source", "component", "zone")

SeriesKey = tuple[tuple[str, str], ...]

_MATCHER = r'\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"\s*'
_MATCHERS_RE = re.compile(rf"^\{{(?:{_MATCHER}(?:,{_MATCHER})*,?)?\s*\}}$")
NAME_MATCHER = re.compile(r"(^|,)\s*__name__\s*(=~|!~|!=|=)")
# A zone id of a powercap sub-zone (``intel-rapl:0:1``), listed under the package zone above it.
_POWERCAP_SUBZONE = re.compile(r"^[a-z0-9_-]+:\d+:\d+$")


def series_key(labels: Mapping[str, str]) -> SeriesKey:
    return tuple(sorted(labels.items()))


def prefix_of(metric: str) -> str:
    for suffix in (ENERGY_SUFFIX, POWER_SUFFIX):
        if metric.endswith(suffix):
            return metric[: -len(suffix)]
    return metric


def device_kind(metric: str) -> str:
    """``pyjoules_remote_write_energy_joules_total`` -> ``CPU``; an unknown prefix is its own kind."""
    prefix = prefix_of(metric)
    return DEVICE_KINDS.get(prefix, prefix)


def scope_of(labels: Mapping[str, str], host_has_psys: bool = False) -> str:
    """``total`` or ``part``, from the ``scope`` label.

    Series written before cpu-pyjoules carried ``scope`` follow its rule: with a ``psys`` zone (the whole
    platform) on the host, psys is the total and every other RAPL zone a part; without one, the packages and
    ``dram`` (which RAPL does not count inside the package, though sysfs lists it under it) are totals and
    the other sub-zones (core, uncore) parts. Anything else counts as a total.
    """
    scope = labels.get("scope", "")
    if scope:
        return scope
    zone, component = labels.get("zone", ""), labels.get("component", "")
    if host_has_psys and component != "psys" and zone.startswith("intel-rapl:"):
        return "part"
    if _POWERCAP_SUBZONE.match(zone) and component != "dram":
        return "part"
    return "total"


def power_name(energy_metric: str) -> str:
    return prefix_of(energy_metric) + POWER_SUFFIX


def check_matchers(matchers: Sequence[str], *, allow_name: bool = False) -> list[str]:
    """Validate ``--match`` values (``{host="lab-7",source=~"cpu.*"}``); return their inner matcher lists.

    Reports select devices by label; ``allow_name`` (export) also accepts ``__name__`` matchers.
    """
    inner = []
    for text in matchers:
        value = text.strip()
        if not _MATCHERS_RE.match(value):
            raise UsageError(
                f"--match {text!r} is not a set of label matchers: use e.g. '{{host=\"lab-7\"}}' or "
                '\'{host=~"lab-.*",source="cpu-pyjoules"}\' (double quotes inside braces)'
            )
        body = value[1:-1].strip().rstrip(",").strip()
        if not allow_name and NAME_MATCHER.search(body):
            raise UsageError(f"--match {text!r}: select devices by label, not by metric name (__name__)")
        if body:
            inner.append(body)
    return inner


def split_name_matchers(matchers: Sequence[str]) -> tuple[list[str], list[str]]:
    """``(label matcher lists, metric-name matcher lists)`` of checked ``--match`` values."""
    names = [m for m in matchers if NAME_MATCHER.search(m)]
    return [m for m in matchers if m not in names], names


def selector(suffix: str, matchers: Sequence[str]) -> str:
    """Every contract series with ``suffix`` that matches all ``matchers`` (inner matcher lists)."""
    parts = [f'__name__=~".+{suffix}"', 'zone!=""', *matchers]
    return "{" + ",".join(parts) + "}"


def energy_selector(matchers: Sequence[str]) -> str:
    return selector(ENERGY_SUFFIX, matchers)


def power_selector(matchers: Sequence[str]) -> str:
    return selector(POWER_SUFFIX, matchers)
