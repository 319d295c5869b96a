"""Turn GPU readings into the contract's series: ``nvml_power_watts`` and ``nvml_energy_joules_total``.

Labels: ``component="gpu"``, ``zone`` the GPU's UUID, ``index``, ``model``, and ``method`` (``counter`` for a
GPU with an energy counter, ``integrated`` for one without). The total of a counter GPU follows its counter
(mJ since the driver loaded) from the client's start; where the counter restarts (driver reload) or jumps
impossibly, that interval's energy is taken from the power readings instead, so a restart never yields a
negative or a missing joule. A GPU without a counter integrates its power readings (trapezoid rule over
monotonic time, exact).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from gpu_nvml.devices import Gpu
from monitoring_client.device_loop import Reading
from monitoring_client.energy import CounterAccumulator, TrapezoidIntegrator
from monitoring_client.power_contract import (
    METHOD_COUNTER,
    METHOD_INTEGRATED,
    PowerSeries,
    zone_labels,
)
from monitoring_client.ratelimited_log import RateLimitedLog
from monitoring_client.series_batch import SeriesBatch

logger = logging.getLogger(__name__)

COMPONENT = "gpu"
MW_NS_JOULES = 1e-12  # one milliwatt for one nanosecond
# NVML refreshes the energy counter in steps; a step this long at the ceiling is not an impossible jump.
COUNTER_STEP_ALLOWANCE_S = 1.0
RESTARTS = "energy counter restarts"


def gpu_labels(gpu: Gpu) -> dict[str, str]:
    method = METHOD_COUNTER if gpu.counter else METHOD_INTEGRATED
    return zone_labels(COMPONENT, gpu.uuid, method, extra={"index": str(gpu.index), "model": gpu.name})


class GpuProcessor:
    """``handle(readings)`` and ``take()`` for ``BatchProcessor``: per GPU slot, energy and power -> two series."""

    def __init__(self, gpus: Sequence[Gpu], prefix: str, max_gpu_power_w: float) -> None:
        self.gpus = list(gpus)
        # Apart: a tick may bring only the power or only the energy of a GPU.
        self.series = PowerSeries(prefix, [gpu_labels(gpu) for gpu in gpus], apart=True)
        self.notices = RateLimitedLog(logger, 60.0)
        ceiling_mj_per_s = max_gpu_power_w * 1000.0
        self.counters = [
            CounterAccumulator(max_units_per_s=ceiling_mj_per_s, allowance_s=COUNTER_STEP_ALLOWANCE_S)
            if gpu.counter
            else None
            for gpu in gpus
        ]
        self.integrators = [TrapezoidIntegrator(MW_NS_JOULES) for _ in gpus]

    def take(self) -> list[SeriesBatch]:
        return self.series.take()

    def handle(self, readings: list[Reading]) -> None:
        series = self.series
        add_power, add_energy = series.add_power, series.add_energy
        slots = list(enumerate(zip(self.counters, self.integrators, strict=True)))
        for t_ns, wall_ms, values in readings:
            for slot, (counter, integrator) in slots:
                energy_mj = values[2 * slot]
                power_mw = values[2 * slot + 1]
                if counter is None:
                    if power_mw is not None:
                        integrator.add(power_mw, t_ns)
                        add_power(slot, power_mw / 1000.0, wall_ms)
                        add_energy(slot, integrator.joules, wall_ms)
                elif energy_mj is None:
                    if power_mw is not None:  # the counter failed this tick: power only; the next one covers it
                        integrator.add(power_mw, t_ns)
                        add_power(slot, power_mw / 1000.0, wall_ms)
                elif power_mw is not None:
                    estimate_mj = integrator.interval_joules(power_mw, t_ns) * 1000.0
                    resets = counter.resets
                    counter.update(energy_mj, t_ns, estimate_mj)
                    if counter.resets != resets:
                        self._restarted(slot, energy_mj, "power readings")
                    integrator.add(power_mw, t_ns)
                    add_power(slot, power_mw / 1000.0, wall_ms)
                    add_energy(slot, counter.total / 1000.0, wall_ms)
                else:  # no power reading: the counter's rate over the interval is the power
                    first = counter.prev_raw is None
                    since_ns = counter.prev_ns
                    resets = counter.resets
                    gained_mj = counter.update(energy_mj, t_ns)
                    if counter.resets != resets:
                        self._restarted(slot, energy_mj, "counter's new value")
                    if not (first or t_ns <= since_ns):
                        add_power(slot, gained_mj * 1e6 / (t_ns - since_ns), wall_ms)
                    add_energy(slot, counter.total / 1000.0, wall_ms)

    def _restarted(self, slot: int, raw_mj: int, filled_from: str) -> None:
        gpu = self.gpus[slot]
        self.notices.report(
            RESTARTS,
            f"GPU {gpu.index} ({gpu.uuid}): energy counter restarted or jumped (now {raw_mj} mJ; driver reloaded?);"
            f" that interval's energy taken from the {filled_from}, the total goes on",
        )
