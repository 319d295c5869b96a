"""Turn GPU readings into the contract's records: ``nvml_power_watts`` and ``nvml_energy_joules_total``.

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
from monitoring_client.device_loop import Reading, Record
from monitoring_client.energy import CounterAccumulator, TrapezoidIntegrator
from monitoring_client.power_contract import (
    METHOD_COUNTER,
    METHOD_INTEGRATED,
    PowerRecords,
    zone_labels,
)
from monitoring_client.ratelimited_log import RateLimitedLog

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
    """``handle(reading, out)`` for ``BatchProcessor``: per GPU slot, energy and power -> two records."""

    def __init__(self, gpus: Sequence[Gpu], prefix: str, max_gpu_power_w: float) -> None:
        self.gpus = list(gpus)
        self.records = PowerRecords(prefix, [gpu_labels(gpu) for gpu in gpus])
        self.notices = RateLimitedLog(logger, 60.0)
        ceiling_mj_per_s = max_gpu_power_w * 1000.0
        self.counters = [
            CounterAccumulator(max_units_per_s=ceiling_mj_per_s, allowance_s=COUNTER_STEP_ALLOWANCE_S)
            if gpu.counter
            else None
            for gpu in gpus
        ]
        self.integrators = [TrapezoidIntegrator(MW_NS_JOULES) for _ in gpus]

    def handle(self, reading: Reading, out: list[Record]) -> None:
        t_ns, wall_ms, values = reading
        records = self.records
        for slot, counter in enumerate(self.counters):
            energy_mj = values[2 * slot]
            power_mw = values[2 * slot + 1]
            integrator = self.integrators[slot]
            if counter is None:
                if power_mw is not None:
                    integrator.add(power_mw, t_ns)
                    records.append(out, slot, power_mw / 1000.0, integrator.joules, wall_ms)
            elif energy_mj is None:
                if power_mw is not None:  # the counter failed this tick: power only; the next one covers it
                    integrator.add(power_mw, t_ns)
                    records.append_gauge(out, records.power_name, slot, power_mw / 1000.0, wall_ms)
            elif power_mw is not None:
                estimate_mj = integrator.interval_joules(power_mw, t_ns) * 1000.0
                resets = counter.resets
                counter.update(energy_mj, t_ns, estimate_mj)
                if counter.resets != resets:
                    self._restarted(slot, energy_mj, "power readings")
                integrator.add(power_mw, t_ns)
                records.append(out, slot, power_mw / 1000.0, counter.total / 1000.0, wall_ms)
            else:  # no power reading: the counter's rate over the interval is the power
                first = counter.prev_raw is None
                since_ns = counter.prev_ns
                resets = counter.resets
                gained_mj = counter.update(energy_mj, t_ns)
                if counter.resets != resets:
                    self._restarted(slot, energy_mj, "counter's new value")
                joules = counter.total / 1000.0
                if first or t_ns <= since_ns:
                    records.append_gauge(out, records.energy_name, slot, joules, wall_ms)
                else:
                    records.append(out, slot, gained_mj * 1e6 / (t_ns - since_ns), joules, wall_ms)

    def _restarted(self, slot: int, raw_mj: int, filled_from: str) -> None:
        gpu = self.gpus[slot]
        self.notices.report(
            RESTARTS,
            f"GPU {gpu.index} ({gpu.uuid}): energy counter restarted or jumped (now {raw_mj} mJ; driver reloaded?);"
            f" that interval's energy taken from the {filled_from}, the total goes on",
        )
