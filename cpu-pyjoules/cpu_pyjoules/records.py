"""Build the records the base client ships: three series per zone and sample.

* ``<prefix>_energy_uj``: energy in the interval since the zone's previous sample, µJ (the seed's metric,
  with the seed's labels ``component`` and ``zone`` only);
* ``<prefix>_power_watts`` and ``<prefix>_energy_joules_total``: the power naming contract of every power
  client (``monitoring_client.power_contract``): that energy divided by the interval's duration (monotonic
  clock), and joules since the client started, wrap-corrected and monotonic. Labels ``component`` (the
  zone's sysfs name), ``zone`` (its sysfs id), ``method="counter"`` (RAPL keeps energy counters) and
  ``scope`` (see :func:`zone_scopes`).

``source`` and ``host`` are added by the base client to every series that lacks them. The label dicts are
built once per zone and shared by all of that zone's records: the hot path allocates only the record dicts.
"""

from __future__ import annotations

from collections.abc import Sequence

from cpu_pyjoules.rapl_discovery import PSYS_NAME, RaplZone
from monitoring_client.power_contract import (
    METHOD_COUNTER,
    SCOPE_PART,
    SCOPE_TOTAL,
    PowerRecords,
    energy_metric,
    power_metric,
    zone_labels,
)

Record = dict[str, object]

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


class RecordBuilder:
    """Appends the three records of one zone's interval to a list (one call per zone per sample)."""

    def __init__(self, zones: Sequence[RaplZone], prefix: str) -> None:
        contract = [
            zone_labels(zone.component, zone.zone_id, METHOD_COUNTER, scope=scope)
            for zone, scope in zip(zones, zone_scopes(zones), strict=True)
        ]
        self.contract = PowerRecords(prefix, contract)
        self.energy_name = metric_names(prefix)[0]
        self.labels: list[dict[str, str]] = [{"component": z.component, "zone": z.zone_id} for z in zones]

    def append(
        self, out: list[Record], zone_index: int, delta_uj: int, interval_ns: int, total_uj: int, timestamp_ms: int
    ) -> None:
        out.append(
            {
                "metric": self.energy_name,
                "labels": self.labels[zone_index],
                "value": float(delta_uj),
                "timestamp_ms": timestamp_ms,
            }
        )
        # µJ / ns * 1000 = J/s
        self.contract.append(out, zone_index, delta_uj * 1000.0 / interval_ns, total_uj / 1e6, timestamp_ms)
