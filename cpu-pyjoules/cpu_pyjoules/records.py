"""Build the records the base client ships: three series per zone and sample.

* ``<prefix>_energy_uj``: energy in the interval since the zone's previous sample, µJ (the seed's metric);
* ``<prefix>_power_watts``: that energy divided by the interval's duration (monotonic clock);
* ``<prefix>_energy_joules_total``: joules since the client started, wrap-corrected and monotonic.

Labels are ``component`` (the zone's sysfs name) and ``zone`` (its sysfs id). ``source`` and ``host`` are
added by the base client to every series that lacks them. The label dicts are built once per zone and
shared by all of that zone's records: the hot path allocates only the record dicts themselves.
"""

from __future__ import annotations

from collections.abc import Sequence

from cpu_pyjoules.rapl_discovery import RaplZone

Record = dict[str, object]


def metric_names(prefix: str) -> tuple[str, str, str]:
    """``(energy_uj, power_watts, energy_joules_total)`` metric names for ``prefix``."""
    return (f"{prefix}_energy_uj", f"{prefix}_power_watts", f"{prefix}_energy_joules_total")


def zone_labels(zone: RaplZone) -> dict[str, str]:
    return {"component": zone.component, "zone": zone.zone_id}


class RecordBuilder:
    """Appends the three records of one zone's interval to a list (one call per zone per sample)."""

    def __init__(self, zones: Sequence[RaplZone], prefix: str) -> None:
        self.energy_name, self.power_name, self.total_name = metric_names(prefix)
        self.labels: list[dict[str, str]] = [zone_labels(z) for z in zones]

    def append(
        self, out: list[Record], zone_index: int, delta_uj: int, interval_ns: int, total_uj: int, timestamp_ms: int
    ) -> None:
        labels = self.labels[zone_index]
        out.append(
            {"metric": self.energy_name, "labels": labels, "value": float(delta_uj), "timestamp_ms": timestamp_ms}
        )
        out.append(
            {
                "metric": self.power_name,
                "labels": labels,
                # µJ / ns * 1000 = J/s
                "value": delta_uj * 1000.0 / interval_ns,
                "timestamp_ms": timestamp_ms,
            }
        )
        out.append({"metric": self.total_name, "labels": labels, "value": total_uj / 1e6, "timestamp_ms": timestamp_ms})
