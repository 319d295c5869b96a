"""The series the base client ships: three per zone, handed on as series batches once a second.

* ``<prefix>_energy_uj``: energy in the interval since the zone's previous sample, µJ (the seed's metric,
  with the seed's labels ``component`` and ``zone`` only);
* ``<prefix>_power_watts`` and ``<prefix>_energy_joules_total``: the power naming contract of every power
  client (``monitoring_client.power_contract``): that energy divided by the interval's duration (monotonic
  clock), and joules since the client started, wrap-corrected and monotonic. Labels ``component`` (the
  zone's sysfs name), ``zone`` (its sysfs id), ``method="counter"`` (RAPL keeps energy counters) and
  ``scope`` (see :func:`zone_scopes`).

``source`` and ``host`` are added by the base client to every series that lacks them. The label dicts are
built once per zone; the three series of a zone share one list of timestamps (``series_batch.SeriesBuffer``),
so a zone's sample costs four list appends.
"""

from __future__ import annotations

from collections.abc import Sequence

from cpu_pyjoules.rapl_discovery import PSYS_NAME, RaplZone
from monitoring_client.power_contract import (
    METHOD_COUNTER,
    SCOPE_PART,
    SCOPE_TOTAL,
    check_prefix,
    energy_metric,
    power_metric,
    zone_labels,
)
from monitoring_client.series_batch import SeriesBuffer

DRAM_NAME = "dram"


def metric_names(prefix: str) -> tuple[str, str, str]:
    """``(energy_uj, power_watts, energy_joules_total)`` metric names for ``prefix``."""
    return (f"{prefix}_energy_uj", power_metric(prefix), energy_metric(prefix))


def zone_scopes(zones: Sequence[RaplZone]) -> list[str]:
    """The ``scope`` of each zone, so that ``sum(x{scope!="part"})`` per host counts every joule once.

    With a ``psys`` zone (the whole platform: packages, DRAM and the rest of the SoC), psys is the total and
    every other zone a part. Without it, the top-level package zones and ``dram`` (never counted inside
    package energy, whether the tree has it as a sub-zone or not) are totals, and the packages' sub-zones
    (``core``, ``uncore``) parts. Every zone carries its scope, even where none is a part (packages and
    DRAM only): the tree nests ``dram`` under its package, so a reader guessing from the tree would take
    DRAM for a part of the package.
    """
    if any(zone.component == PSYS_NAME for zone in zones):
        return [SCOPE_TOTAL if zone.component == PSYS_NAME else SCOPE_PART for zone in zones]
    return [
        SCOPE_TOTAL if zone.zone_id.count(":") == 1 or zone.component == DRAM_NAME else SCOPE_PART for zone in zones
    ]


class ZoneSeries(SeriesBuffer):
    """The three series of every zone: group ``i`` of the buffer is zone ``i``, its values are the interval's
    energy (µJ), its power (W) and the running total (J), in that order (``ENERGY_UJ``, ``POWER``, ``TOTAL``);
    the processor appends to them."""

    ENERGY_UJ = 0
    POWER = 1
    TOTAL = 2

    def __init__(self, zones: Sequence[RaplZone], prefix: str) -> None:
        energy_uj, power, total = metric_names(check_prefix(prefix))
        groups = []
        for zone, scope in zip(zones, zone_scopes(zones), strict=True):
            contract = zone_labels(zone.component, zone.zone_id, METHOD_COUNTER, scope=scope)
            seed = {"component": zone.component, "zone": zone.zone_id}
            groups.append([(energy_uj, seed), (power, contract), (total, contract)])
        super().__init__(groups)
