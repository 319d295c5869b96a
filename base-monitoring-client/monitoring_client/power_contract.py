"""The naming contract every power client follows, so that dashboards and reports need nothing else.

Per measured zone (a CPU package, a GPU, a board rail), two series:

* ``<prefix>_power_watts`` (gauge): the power at the sample's time;
* ``<prefix>_energy_joules_total`` (counter): joules since the client started, monotonic across hardware
  counter wraps and restarts.

Labels, the same on both series of a zone:

* ``component``: what the zone is (``package-0``, ``gpu``, ``VDD_IN``);
* ``zone``: which one, unique on a host (a sysfs id, a GPU UUID, a chip and channel);
* ``method``: ``counter`` where the hardware keeps an energy counter, ``integrated`` where the client
  integrates sampled power;
* ``scope``: where a whole-board zone and its parts coexist on a host: ``total`` on the whole-board
  zone, ``part`` on the others, so that ``sum without(...) (x{scope!="part"})`` never counts twice (a
  client whose zones nest in a way a reader could misjudge sets it on every zone, as cpu-pyjoules does);
* ``source`` and ``host``: added by the base client to every series.

Clients may add their own labels (a GPU's ``index`` and ``model``). Everything a client needs to follow the
contract is here, so there is one spelling of each name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from monitoring_client.errors import ConfigError
from monitoring_client.settings_table import setting
from monitoring_client.settings_values import MetricName

POWER_SUFFIX = "_power_watts"
ENERGY_SUFFIX = "_energy_joules_total"

COMPONENT = "component"
ZONE = "zone"
METHOD = "method"
SCOPE = "scope"

METHOD_COUNTER = "counter"
METHOD_INTEGRATED = "integrated"
METHODS = (METHOD_COUNTER, METHOD_INTEGRATED)

SCOPE_TOTAL = "total"
SCOPE_PART = "part"
SCOPES = (SCOPE_TOTAL, SCOPE_PART)

Record = dict[str, object]

_PREFIX_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


def power_metric(prefix: str) -> str:
    """``<prefix>_power_watts``."""
    return prefix + POWER_SUFFIX


def energy_metric(prefix: str) -> str:
    """``<prefix>_energy_joules_total``."""
    return prefix + ENERGY_SUFFIX


def check_prefix(prefix: str, variable: str = "METRIC_PREFIX") -> str:
    """Return ``prefix`` if it can start a Prometheus metric name, else raise ``ConfigError`` (exit 2)."""
    if not _PREFIX_RE.match(prefix):
        raise ConfigError(
            f"{variable}={prefix!r} is invalid: expected a Prometheus metric name prefix "
            "(letters, digits, '_' or ':', not starting with a digit)"
        )
    return prefix


def prefix_setting(default: str, meaning: str = "prefix of the metric names") -> Any:
    """The ``METRIC_PREFIX`` row of a power client's settings table (a dataclass field, see settings_table)."""
    return setting("METRIC_PREFIX", MetricName("a Prometheus metric name prefix"), default, meaning)


def zone_labels(
    component: str,
    zone: str,
    method: str,
    *,
    scope: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The contract's labels of one zone (``source`` and ``host`` come from the base client).

    ``extra`` adds a client's own labels; it may not redefine the contract's. Raises ValueError on a
    method or scope outside the contract, or an empty component or zone: those are programming errors.
    """
    if not component or not zone:
        raise ValueError(f"component and zone must not be empty (got {component!r}, {zone!r})")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if scope is not None and scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES} or None, got {scope!r}")
    labels = {COMPONENT: component, ZONE: zone, METHOD: method}
    if scope is not None:
        labels[SCOPE] = scope
    for key, value in (extra or {}).items():
        if key in labels or key in (SCOPE, "source", "host"):
            raise ValueError(f"extra label {key!r} would redefine a label of the contract")
        labels[key] = value
    return labels


class PowerRecords:
    """Appends the contract's records of one zone's sample to a list.

    The label dicts are built once per zone and shared by every record of that zone, and the metric names
    once per client: the hot path allocates only the record dicts themselves.
    """

    def __init__(self, prefix: str, labels: Sequence[dict[str, str]]) -> None:
        self.power_name = power_metric(check_prefix(prefix))
        self.energy_name = energy_metric(prefix)
        self.labels = list(labels)

    def append(self, out: list[Record], zone: int, watts: float, joules: float, timestamp_ms: int) -> None:
        """Power (W) and energy since start (J) of zone number ``zone``, as two records."""
        labels = self.labels[zone]
        out.append({"metric": self.power_name, "labels": labels, "value": watts, "timestamp_ms": timestamp_ms})
        out.append({"metric": self.energy_name, "labels": labels, "value": joules, "timestamp_ms": timestamp_ms})

    def append_gauge(self, out: list[Record], metric: str, zone: int, value: float, timestamp_ms: int) -> None:
        """Another series of zone number ``zone`` (volts, amperes) with the zone's labels."""
        out.append({"metric": metric, "labels": self.labels[zone], "value": value, "timestamp_ms": timestamp_ms})
