"""Turn rail readings into series: power, energy (integrated), voltage and current per rail.

Series (prefix ``jetson``): ``jetson_power_watts``, ``jetson_energy_joules_total``, ``jetson_voltage_volts``
and ``jetson_current_amperes``, all with the rail's labels: ``component`` the rail name, ``zone`` the chip
and channel, ``method="integrated"`` and, on a board that has a whole-board rail (``VDD_IN``, ...),
``scope="total"`` on it and ``scope="part"`` on the others. Power is V × I in integer µW; energy is its
trapezoid integral over the readings' monotonic times, exact, so nothing drifts.
"""

from __future__ import annotations

from collections.abc import Sequence

from jetson_ina3221.discovery import Rail
from monitoring_client.device_loop import Reading
from monitoring_client.energy import TrapezoidIntegrator
from monitoring_client.power_contract import METHOD_INTEGRATED, SCOPE_PART, SCOPE_TOTAL, PowerSeries, zone_labels
from monitoring_client.series_batch import SeriesBatch

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
    """``handle(readings)`` and ``take()`` for ``BatchProcessor``: four series per rail, one batch each a second."""

    def __init__(self, rails: Sequence[Rail], prefix: str, total_rails: Sequence[str]) -> None:
        volts_name = f"{prefix}_voltage_volts"
        amps_name = f"{prefix}_current_amperes"
        self.series = PowerSeries(prefix, rail_labels(rails, total_rails), (volts_name, amps_name))
        self.integrators = [TrapezoidIntegrator(UW_NS_JOULES) for _ in rails]

    def handle(self, readings: list[Reading]) -> None:
        # Appends straight to the series' lists: per rail, one timestamp and four values.
        stamps, series = self.series.stamps, self.series.values
        integrators = list(enumerate(self.integrators))
        for t_ns, wall_ms, values in readings:
            for slot, integrator in integrators:
                millivolts = values[2 * slot]
                milliamps = values[2 * slot + 1]
                microwatts = millivolts * milliamps
                integrator.add(microwatts, t_ns)
                stamps[slot].append(wall_ms)
                power, energy, volts, amps = series[slot]
                power.append(microwatts / 1e6)
                energy.append(integrator.joules)
                volts.append(millivolts / 1000.0)
                amps.append(milliamps / 1000.0)

    def take(self) -> list[SeriesBatch]:
        return self.series.take()
