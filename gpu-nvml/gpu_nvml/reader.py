"""Read every selected GPU once per tick: a few NVML calls, nothing else.

``read()`` returns ``[energy_mJ, power_mW, ...]``, two values per GPU in the order given, ``None`` where a
value could not be read. A GPU that is lost (fell off the bus) is reported once, as an error in the log
and as a problem that turns ``/healthz`` unhealthy, and is not called again: its series stop while the
other GPUs go on. Other failed calls leave that value out for the tick, with a rate-limited warning.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import pynvml

from gpu_nvml.devices import LOST_CODES, POWER_INSTANT, POWER_USAGE, Gpu
from monitoring_client.impl_health import IMPLEMENTATION_HEALTH, ImplementationHealth
from monitoring_client.ratelimited_log import RateLimitedLog

logger = logging.getLogger(__name__)

FAILED_READ = "failed NVML reads"

# nvmlValue_t member by NVML value type (NVML_VALUE_TYPE_*).
_VALUE_MEMBER = ("dVal", "uiVal", "ulVal", "ullVal", "sllVal", "siVal", "usVal")


class GpuReader:
    """The collector's hot path; NVML functions are bound once, the field list is built once."""

    def __init__(
        self,
        gpus: Sequence[Gpu],
        *,
        nvml: ModuleType = pynvml,
        health: ImplementationHealth = IMPLEMENTATION_HEALTH,
        warning_period_s: float = 60.0,
    ) -> None:
        self.gpus = list(gpus)
        self.lost = [False] * len(self.gpus)
        self.health = health
        self.warnings = RateLimitedLog(logger, warning_period_s)
        self._error = nvml.NVMLError
        self._energy = nvml.nvmlDeviceGetTotalEnergyConsumption
        self._usage = nvml.nvmlDeviceGetPowerUsage
        self._fields = nvml.nvmlDeviceGetFieldValues
        self._instant_field = [nvml.NVML_FI_DEV_POWER_INSTANT]
        self._success = nvml.NVML_SUCCESS
        # Per GPU: (handle, read energy?, power source), so the loop does no attribute lookups on Gpu.
        self._plan = [(gpu.handle, gpu.counter, gpu.power) for gpu in self.gpus]

    def read(self) -> list[int | None]:
        values: list[int | None] = []
        append = values.append
        for slot, (handle, counter, source) in enumerate(self._plan):
            energy = power = None
            if not self.lost[slot]:
                try:
                    if counter:
                        energy = self._energy(handle)
                    if source is POWER_INSTANT:
                        power = self._instant(handle)
                    elif source is POWER_USAGE:
                        power = self._usage(handle)
                except self._error as exc:
                    self._failed(slot, exc)
            append(energy)
            append(power)
        return values

    def _instant(self, handle: Any) -> int | None:
        field = self._fields(handle, self._instant_field)[0]
        if field.nvmlReturn != self._success:
            self.warnings.report(FAILED_READ, f"instant power field answered NVML error {field.nvmlReturn}")
            return None
        return int(getattr(field.value, _VALUE_MEMBER[field.valueType]))

    def _failed(self, slot: int, exc: Any) -> None:
        gpu = self.gpus[slot]
        if exc.value in LOST_CODES:
            self.lost[slot] = True
            reason = (
                f"GPU {gpu.index} ({gpu.uuid}, {gpu.name}) is lost ({exc}): it fell off the bus or was removed;"
                " its series stop, the other GPUs go on. Check `dmesg` for Xid errors; a GPU reset or a reboot"
                " brings it back, then restart this client"
            )
            logger.error("%s", reason)
            self.health.report(f"gpu {gpu.uuid}", reason)
        else:
            self.warnings.report(FAILED_READ, f"GPU {gpu.index} ({gpu.uuid}): NVML call failed, value skipped: {exc}")
