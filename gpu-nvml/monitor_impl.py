"""gpu-nvml for the base monitoring client: power and energy of every NVIDIA GPU, read through NVML.

The base client (``monitoring-client``) loads this file through MONITOR_IMPL (or as ``monitor_impl`` from
the working directory, as in the image) and runs the seed's two functions in threads. Settings are read and
NVML started here at import time: a bad NVML_DEVICES, METRIC_PREFIX or MAX_GPU_POWER_W stops the process
with exit status 2, a machine without a usable NVIDIA GPU with exit status 3 and a paragraph naming the
fix, before anything runs (also under ``monitoring-client --check``). The work lives in the ``gpu_nvml``
package next to this file.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

import pynvml

from gpu_nvml.devices import open_gpus
from gpu_nvml.processor import GpuProcessor
from gpu_nvml.reader import GpuReader
from gpu_nvml.settings import load_settings
from monitoring_client.device_loop import BatchProcessor, run_sampler

SERVICE_NAME = "gpu-nvml"  # default `source` label (SERVICE_LABEL overrides it)

logger = logging.getLogger("gpu_nvml")

SETTINGS = load_settings()
GPUS = open_gpus(SETTINGS)


def get_power(output_queue: queue.Queue[Any], scrape_interval_s: float, stop_event: threading.Event) -> None:
    """Read every selected GPU every ``scrape_interval_s`` seconds until ``stop_event`` is set."""
    logger.info(
        "sampling %d GPU(s) every %g s through NVML (driver %s): %s",
        len(GPUS),
        scrape_interval_s,
        pynvml.nvmlSystemGetDriverVersion(),
        "; ".join(gpu.describe() for gpu in GPUS),
    )
    try:
        run_sampler(GpuReader(GPUS).read, output_queue, scrape_interval_s, stop_event)
    finally:
        pynvml.nvmlShutdown()


def process_data(input_queue: queue.Queue[Any], output_queue: queue.Queue[Any], stop_event: threading.Event) -> None:
    """Turn GPU readings into power and energy records until stopped and drained."""
    processor = GpuProcessor(GPUS, SETTINGS.metric_prefix, SETTINGS.max_gpu_power_w)
    BatchProcessor(processor.handle, processor.take).run(input_queue, output_queue, stop_event)
