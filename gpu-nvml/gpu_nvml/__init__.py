"""gpu-nvml: power and energy of every NVIDIA GPU through NVML."""

__version__ = "0.1.0"
