"""The messages a person sees when this machine's RAPL counters cannot be read, and what to do about it.

Both cases end the process with ``EnvironmentProblem`` (exit status 3, message printed as-is, no
traceback): retrying cannot help, so the base client shuts down instead of spinning.
"""

from __future__ import annotations

from pathlib import Path

from monitoring_client.errors import EnvironmentProblem

_FAKE_HINT = "To try the client without RAPL, run `python -m cpu_pyjoules.fake_powercap DIR` and set POWERCAP_ROOT=DIR."


def no_rapl(api_dir: Path, detail: str | None = None) -> EnvironmentProblem:
    """No RAPL zone under ``api_dir``: wrong machine, missing driver or missing mount."""
    why = f" ({detail})" if detail else ""
    return EnvironmentProblem(
        f"No RAPL energy counters found under {api_dir}{why}. "
        "Virtual machines and most cloud instances do not expose RAPL; on a bare-metal Intel or AMD host, "
        "load the driver (modprobe intel_rapl_msr). In Docker, mount the host's "
        "/sys/devices/virtual/powercap read-only and set POWERCAP_ROOT to the mount point, or use the "
        "docker-pyjoules AppArmor profile or privileged mode (see the README). " + _FAKE_HINT
    )


def unreadable(path: Path, error: BaseException) -> EnvironmentProblem:
    """A counter file exists but cannot be read (permissions, masking, not a regular file)."""
    reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return EnvironmentProblem(
        f"Cannot read the RAPL counter {path}: {reason}. "
        "Since the 2020 PLATYPUS fix (CVE-2020-8694) energy_uj is readable by root only: run the client as "
        "uid 0 (all capabilities may stay dropped). In Docker, Docker masks /sys/devices/virtual/powercap "
        "by default: use the docker-pyjoules AppArmor profile or privileged mode (see the README), or mount "
        "the host's /sys/devices/virtual/powercap read-only elsewhere and set POWERCAP_ROOT to it."
    )
