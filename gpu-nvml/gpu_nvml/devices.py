"""Start NVML, find the GPUs NVML_DEVICES selects, and learn how each one reports power and energy.

Run once at start-up (``monitor_impl`` calls :func:`open_gpus` at import time), so that a machine without a
usable GPU stops at once with exit status 3 and a paragraph naming the fix, and a selection that names a
GPU this machine does not have stops with exit status 2, before any thread starts.

Per GPU:

* energy: ``nvmlDeviceGetTotalEnergyConsumption`` (mJ since the driver loaded, Volta and newer): the
  ``counter`` method; where it answers NOT_SUPPORTED, power is integrated (``integrated``);
* power: the field ``NVML_FI_DEV_POWER_INSTANT`` where the GPU supports it, else
  ``nvmlDeviceGetPowerUsage`` (on recent GPUs a one-second average), else, with an energy counter, the
  counter's rate between two samples.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pynvml

from gpu_nvml import nvml_errors
from gpu_nvml.settings import Settings
from monitoring_client.errors import ConfigError

logger = logging.getLogger(__name__)

POWER_INSTANT = "instant"  # field NVML_FI_DEV_POWER_INSTANT
POWER_USAGE = "usage"  # nvmlDeviceGetPowerUsage
POWER_FROM_COUNTER = "counter"  # energy counter's rate

# NVML errors that mean the GPU itself is gone (fell off the bus, removed), not that one call failed.
LOST_CODES = frozenset({pynvml.NVML_ERROR_GPU_IS_LOST, pynvml.NVML_ERROR_GPU_NOT_FOUND})


@dataclass
class Gpu:
    """One GPU the client reads, and how."""

    index: int
    uuid: str
    name: str
    handle: Any
    counter: bool  # has an energy counter
    power: str  # POWER_INSTANT, POWER_USAGE or POWER_FROM_COUNTER

    def describe(self) -> str:
        energy = "energy counter" if self.counter else "energy integrated from power"
        power = {
            POWER_INSTANT: "instant power",
            POWER_USAGE: "power usage (a 1 s average on recent GPUs)",
            POWER_FROM_COUNTER: "power from the energy counter",
        }[self.power]
        return f"{self.index} {self.uuid} ({self.name}): {energy}, {power}"


def start_nvml(nvml: ModuleType = pynvml) -> None:
    """``nvmlInit``, with its failures turned into ``EnvironmentProblem`` (exit status 3)."""
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as exc:
        raise nvml_errors.nvml_unavailable(exc.value, str(exc)) from None


def _supported(nvml: ModuleType, call: Any, *args: Any) -> bool:
    try:
        call(*args)
    except nvml.NVMLError as exc:
        if exc.value != nvml.NVML_ERROR_NOT_SUPPORTED:
            raise
        return False
    return True


def probe(nvml: ModuleType, index: int, handle: Any) -> Gpu:
    """Name, UUID and the readings one GPU supports. NVMLError other than NOT_SUPPORTED propagates."""
    uuid = nvml.nvmlDeviceGetUUID(handle)
    name = nvml.nvmlDeviceGetName(handle)
    counter = _supported(nvml, nvml.nvmlDeviceGetTotalEnergyConsumption, handle)
    field = nvml.nvmlDeviceGetFieldValues(handle, [nvml.NVML_FI_DEV_POWER_INSTANT])[0]
    if field.nvmlReturn == nvml.NVML_SUCCESS:
        power = POWER_INSTANT
    elif _supported(nvml, nvml.nvmlDeviceGetPowerUsage, handle):
        power = POWER_USAGE
    else:
        power = POWER_FROM_COUNTER
    return Gpu(index, uuid, name, handle, counter, power)


def _select(available: Sequence[tuple[int, str, str]], wanted: Sequence[str]) -> list[int]:
    """Indexes chosen by NVML_DEVICES tokens (index or UUID), in the machine's order; ConfigError if unknown."""
    if not wanted:
        return [index for index, _, _ in available]
    by_uuid = {uuid: index for index, uuid, _ in available}
    chosen = set()
    for token in wanted:
        index = int(token) if token.isdigit() else by_uuid.get(token)
        if index is None or not 0 <= index < len(available):
            listing = "; ".join(f"{i} {uuid} ({name})" for i, uuid, name in available)
            raise ConfigError(
                f"NVML_DEVICES={','.join(wanted)!r} is invalid: no GPU {token!r} on this machine, which has: {listing}"
            )
        chosen.add(index)
    return sorted(chosen)


def open_gpus(settings: Settings, nvml: ModuleType = pynvml) -> list[Gpu]:
    """Start NVML and return the selected GPUs that can be read. Raises EnvironmentProblem or ConfigError."""
    start_nvml(nvml)
    count = nvml.nvmlDeviceGetCount()
    if count == 0:
        raise nvml_errors.no_gpu()
    handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
    available = []
    for index, handle in enumerate(handles):
        try:
            available.append((index, nvml.nvmlDeviceGetUUID(handle), nvml.nvmlDeviceGetName(handle)))
        except nvml.NVMLError as exc:
            available.append((index, f"unreadable: {exc}", "?"))
    gpus: list[Gpu] = []
    problems: list[str] = []
    for index in _select(available, settings.devices):
        try:
            gpu = probe(nvml, index, handles[index])
        except nvml.NVMLError as exc:
            problems.append(f"GPU {index}: {exc}")
            logger.error("GPU %d cannot be read and is left out: %s", index, exc)
            continue
        if gpu.power == POWER_FROM_COUNTER and not gpu.counter:
            problems.append(f"GPU {index} ({gpu.name}) has no power sensor")
            logger.warning("GPU %d (%s) reports neither power nor energy: left out", index, gpu.name)
            continue
        gpus.append(gpu)
    if not gpus:
        raise nvml_errors.nothing_to_read("; ".join(problems))
    return gpus
