"""What a person reads when NVML cannot be used here, and what to do about it (exit status 3)."""

from __future__ import annotations

from monitoring_client.errors import EnvironmentProblem

FIX = (
    "Install the NVIDIA driver on the host (`nvidia-smi` must list the GPU). In Docker, install the NVIDIA "
    "Container Toolkit on the host and give the container the GPUs: `docker run --gpus all`, or in Compose "
    "`deploy.resources.reservations.devices` with `driver: nvidia` and `capabilities: [gpu]`; the toolkit "
    "mounts the driver's libnvidia-ml.so.1 and the /dev/nvidia* device nodes into the container. To try the "
    "client without a GPU, run `python -m gpu_nvml.fake_nvml build DIR` and set the variables it prints."
)

# pynvml error codes (NVML_ERROR_*) and what each means for a person starting the client.
_CAUSES = {
    12: "the NVIDIA Management Library libnvidia-ml.so.1 was not found: this machine has no NVIDIA driver, "
    "or the container was not given the driver's libraries",
    9: "the NVIDIA kernel driver is not loaded",
    18: "the NVIDIA library and kernel driver versions differ (the driver was updated without a reboot): "
    "reboot, or reload the nvidia kernel modules",
    4: "this process may not open the GPU device nodes (/dev/nvidia*)",
}


def nvml_unavailable(code: int, text: str) -> EnvironmentProblem:
    """nvmlInit failed with NVML error ``code`` (``text`` is NVML's own words)."""
    cause = _CAUSES.get(code, f"NVML could not start ({text})")
    return EnvironmentProblem(f"No NVIDIA GPU can be read: {cause}. {FIX}")


def no_gpu() -> EnvironmentProblem:
    """NVML started but sees no GPU."""
    return EnvironmentProblem(f"No NVIDIA GPU can be read: NVML started but reports no GPU. {FIX}")


def nothing_to_read(detail: str) -> EnvironmentProblem:
    """Every selected GPU lacks a power reading or is lost."""
    return EnvironmentProblem(f"No selected NVIDIA GPU reports power or energy ({detail}). {FIX}")
