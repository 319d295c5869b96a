"""The zones of a fake powercap tree: which zones a watts spec asks for, and what each one has drawn.

Kept apart from ``fake_powercap`` (which writes the files and advances the counters) so the spec and the
zone model can be read, and tested, on their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

CONTROL_TYPE = "intel-rapl"
SUBZONE_NAMES = ("core", "uncore", "dram")
# max_energy_range_uj of a typical Intel package zone (32-bit counter at 61 µJ units).
DEFAULT_MAX_RANGE_UJ = 262_143_328_850

WattsSpec = str | Mapping[str, float]


def parse_watts(spec: WattsSpec) -> dict[str, float]:
    """``"package-0=25,core=15,dram=4"`` -> ``{"package-0": 25.0, "core": 15.0, "dram": 4.0}`` (order kept).

    Keys: ``package`` (every socket), ``package-N`` (socket N), ``core``, ``uncore``, ``dram`` (a sub-zone on
    every socket, numbered in the order given), ``psys``. Raises ValueError with a readable reason.
    """
    items = spec.items() if isinstance(spec, Mapping) else _split_spec(spec)
    watts: dict[str, float] = {}
    for key, value in items:
        key = key.strip()
        if not (key in SUBZONE_NAMES or key in ("package", "psys") or _is_package_n(key)):
            raise ValueError(f"unknown zone {key!r} in watts (use package, package-N, core, uncore, dram, psys)")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"watts for {key!r} must be a number, got {value!r}") from None
        if not (number >= 0 and number < 1e6):
            raise ValueError(f"watts for {key!r} must be between 0 and 1e6, got {value!r}")
        watts[key] = number
    if not any(k == "package" or _is_package_n(k) for k in watts):
        raise ValueError("watts needs a package value (package-0=W or package=W): sub-zones live in packages")
    return watts


def _split_spec(spec: str) -> list[tuple[str, str]]:
    pairs = []
    for part in spec.split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"expected NAME=WATTS, got {part!r}")
        pairs.append((key, value.strip()))
    return pairs


def _is_package_n(key: str) -> bool:
    return key.startswith("package-") and key[len("package-") :].isdigit()


@dataclass
class FakeZone:
    """One zone of the fake tree and its true, unwrapped energy."""

    zone_id: str  # "intel-rapl:0:1"
    name: str  # "core"
    watts: float  # power at full load
    directory: Path
    max_range_uj: int
    initial_uj: int  # counter value at build time
    energy_uj: float = 0.0  # energy drawn since build, never wrapped
    fd: int = -1

    @property
    def counter_uj(self) -> int:
        """What ``energy_uj`` holds now."""
        return (self.initial_uj + int(self.energy_uj)) % self.max_range_uj

    @property
    def joules(self) -> float:
        """True energy drawn since the tree was built."""
        return self.energy_uj / 1e6

    @property
    def wrap_period_s(self) -> float:
        return self.max_range_uj / 1e6 / self.watts if self.watts > 0 else float("inf")


def zone_layout(watts: Mapping[str, float], sockets: int) -> list[tuple[str, str, float, Path]]:
    """``(zone_id, name, watts, directory relative to the tree's root)`` for every zone, in sysfs order."""
    subzones = [k for k in watts if k in SUBZONE_NAMES]
    default_package = watts.get("package", watts.get("package-0"))
    out = []
    for s in range(sockets):
        package = watts.get(f"package-{s}", default_package)
        if package is None:
            raise ValueError(f"no watts for package-{s}: give package-{s}=W or package=W")
        top = f"{CONTROL_TYPE}:{s}"
        out.append((top, f"package-{s}", package, Path(CONTROL_TYPE, top)))
        for n, name in enumerate(subzones):
            out.append((f"{top}:{n}", name, watts[name], Path(CONTROL_TYPE, top, f"{top}:{n}")))
    if "psys" in watts:
        top = f"{CONTROL_TYPE}:{sockets}"
        out.append((top, "psys", watts["psys"], Path(CONTROL_TYPE, top)))
    return out
