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
from monitoring_client.series_batch import SeriesBuffer
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


class PowerSeries(SeriesBuffer):
    """The contract's two series of every zone (and any other gauges of the zone), collected as series batches.

    Group ``zone`` (a ``SeriesBuffer`` group, one timestamps list) holds ``<prefix>_power_watts`` (values
    ``values[zone][POWER]``), ``<prefix>_energy_joules_total`` (``values[zone][ENERGY]``) and then the
    ``gauges`` given (volts, amperes: ``values[zone][GAUGES + i]``), all with the zone's labels (one dict per
    zone, shared by every batch). The hot path appends to these lists directly; :meth:`add` does it in one
    call. With ``apart=True`` a zone's power and energy have their own timestamps (groups ``2 * zone`` and
    ``2 * zone + 1``, through :meth:`add_power` and :meth:`add_energy`), for a client whose zones sometimes
    have only one of the two (a GPU whose counter failed this tick).
    """

    POWER = 0
    ENERGY = 1
    GAUGES = 2

    def __init__(
        self, prefix: str, labels: Sequence[dict[str, str]], gauges: Sequence[str] = (), *, apart: bool = False
    ) -> None:
        self.power_name = power_metric(check_prefix(prefix))
        self.energy_name = energy_metric(prefix)
        self.labels = list(labels)
        self.apart = apart
        if apart and gauges:
            raise ValueError("gauges share the zone's timestamps: not with apart=True")
        if apart:
            groups = [[(name, zone)] for zone in self.labels for name in (self.power_name, self.energy_name)]
        else:
            names = (self.power_name, self.energy_name, *gauges)
            groups = [[(name, zone) for name in names] for zone in self.labels]
        super().__init__(groups)

    def add(self, zone: int, watts: float, joules: float, timestamp_ms: int, *gauges: float) -> None:
        """Power (W), energy since start (J) and the gauges of zone number ``zone`` at ``timestamp_ms``."""
        if self.apart:
            self.add_power(zone, watts, timestamp_ms)
            self.add_energy(zone, joules, timestamp_ms)
            return
        self.stamps[zone].append(timestamp_ms)
        values = self.values[zone]
        values[0].append(watts)
        values[1].append(joules)
        for series, value in zip(values[2:], gauges, strict=True):
            series.append(value)

    def add_power(self, zone: int, watts: float, timestamp_ms: int) -> None:
        """Power alone (``apart=True``)."""
        self.stamps[2 * zone].append(timestamp_ms)
        self.values[2 * zone][0].append(watts)

    def add_energy(self, zone: int, joules: float, timestamp_ms: int) -> None:
        """Energy alone (``apart=True``)."""
        self.stamps[2 * zone + 1].append(timestamp_ms)
        self.values[2 * zone + 1][0].append(joules)
