"""Turn rail readings into records: power, energy (integrated), voltage and current per rail.

Series (prefix ``jetson``): ``jetson_power_watts``, ``jetson_energy_joules_total``, ``jetson_voltage_volts``
and ``jetson_current_amperes``, all with the rail's labels: ``component`` the rail name, ``zone`` the chip
and channel, ``method="integrated"`` and, on a board that has a whole-board rail (``VDD_IN``, ...),
``scope="total"`` on it and ``scope="part"`` on the others. Power is V × I in integer µW; energy is its
trapezoid integral over the readings' monotonic times, exact, so nothing drifts.
"""

from __future__ import annotations

from collections.abc import Sequence

from jetson_ina3221.discovery import Rail
from monitoring_client.device_loop import Reading, Record
from monitoring_client.energy import TrapezoidIntegrator
from monitoring_client.power_contract import METHOD_INTEGRATED, SCOPE_PART, SCOPE_TOTAL, PowerRecords, zone_labels

UW_NS_JOULES = 1e-15  # one microwatt for one nanosecond


def rail_labels(rails: Sequence[Rail], total_rails: Sequence[str]) -> list[dict[str, str]]:
    """Labels per rail; ``scope`` only when one of ``total_rails`` is on this board."""
    has_total = any(rail.name in total_rails for rail in rails)

    def scope(rail: Rail) -> str | None:
        if not has_total:
            return None
        return SCOPE_TOTAL if rail.name in total_rails else SCOPE_PART

    return [zone_labels(rail.name, rail.zone, METHOD_INTEGRATED, scope=scope(rail)) for rail in rails]


class RailProcessor:
    """``handle(reading, out)`` for ``BatchProcessor``: four records per rail and reading."""

    def __init__(self, rails: Sequence[Rail], prefix: str, total_rails: Sequence[str]) -> None:
        self.records = PowerRecords(prefix, rail_labels(rails, total_rails))
        self.volts_name = f"{prefix}_voltage_volts"
        self.amps_name = f"{prefix}_current_amperes"
        self.integrators = [TrapezoidIntegrator(UW_NS_JOULES) for _ in rails]

    def handle(self, reading: Reading, out: list[Record]) -> None:
        t_ns, wall_ms, values = reading
        records = self.records
        gauge = records.append_gauge
        for slot, integrator in enumerate(self.integrators):
            millivolts = values[2 * slot]
            milliamps = values[2 * slot + 1]
            microwatts = millivolts * milliamps
            integrator.add(microwatts, t_ns)
            records.append(out, slot, microwatts / 1e6, integrator.joules, wall_ms)
            gauge(out, self.volts_name, slot, millivolts / 1000.0, wall_ms)
            gauge(out, self.amps_name, slot, milliamps / 1000.0, wall_ms)
