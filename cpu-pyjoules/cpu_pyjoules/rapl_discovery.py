"""Find the RAPL zones of a powercap tree through pyJoules's own RAPL device.

pyJoules 0.5.1 already knows how to walk ``intel-rapl``: packages per socket, then ``core``, ``uncore`` and
``dram`` sub-zones. Two things keep it from being used as is: it reads the fixed module constant
``pyJoules.device.rapl_device.RAPL_API_DIR`` (``/sys/class/powercap/intel-rapl``), so a container that
mounts the host's tree elsewhere, or a fake tree in a test, cannot be reached; and it has no ``psys``
(platform) domain. :class:`PowercapRaplDevice` extends pyJoules's ``RaplDevice`` instead of forking it:
pyJoules's own discovery code runs while the constant briefly points at the chosen tree (under a lock, and
restored afterwards), and a ``RaplPsysDomain`` adds the platform zone. The result is still a pyJoules device
(``configure()``, ``get_energy()``, usable by ``EnergyMeter``), and :func:`discover_zones` turns it into the
flat zone list the reader and the record builder need.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cpu_pyjoules import rapl_errors

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

CONTROL_TYPE = "intel-rapl"
PSYS_NAME = "psys"


def _import_rapl_device() -> Any:
    """Import pyJoules's RAPL module without its GPU device and without its import-time warning.

    ``pyJoules.device`` imports NVIDIA's bindings (``pynvml``, and ctypes with them) for a GPU device this
    client never uses; loading them was a large share of the client's start-up, so they are hidden from it
    during the import (pyJoules then goes on without that device), and importable again afterwards.
    ``pyJoules.device`` logs "pynvml not found" through the root logger when it cannot import them; on an
    unconfigured root logger that call would even install a stderr handler behind the base client's back.
    The record is filtered out for the duration of the import only.
    """
    root = logging.getLogger()

    def drop_pynvml(record: logging.LogRecord) -> bool:
        return "pynvml" not in str(record.msg)

    guard = logging.NullHandler() if not root.handlers else None
    hide = "pynvml" not in sys.modules
    if hide:
        sys.modules["pynvml"] = None  # type: ignore[assignment]  # None in sys.modules: ImportError
    root.addFilter(drop_pynvml)
    if guard is not None:
        root.addHandler(guard)
    try:
        from pyJoules.device import rapl_device
    finally:
        if hide and sys.modules.get("pynvml", False) is None:
            del sys.modules["pynvml"]
        root.removeFilter(drop_pynvml)
        if guard is not None:
            root.removeHandler(guard)
    return rapl_device


rapl_device = _import_rapl_device()
RaplDevice = rapl_device.RaplDevice
RaplDomain = rapl_device.RaplDomain
from pyJoules.device.device import Device  # noqa: E402  (after the quiet import above)
from pyJoules.exception import NoSuchDeviceError  # noqa: E402

_API_DIR_LOCK = threading.RLock()


@contextmanager
def pyjoules_api_dir(api_dir: PathLike) -> Iterator[None]:
    """Point pyJoules's ``RAPL_API_DIR`` at ``api_dir`` for the duration of the block, then restore it.

    Only discovery runs inside (a few file reads at start-up); the lock keeps two discoveries from
    seeing each other's directory. Tests use it to run pyJoules's unmodified ``RaplDevice`` on a fake tree.
    """
    with _API_DIR_LOCK:
        saved = rapl_device.RAPL_API_DIR
        rapl_device.RAPL_API_DIR = str(api_dir)
        try:
            yield
        finally:
            rapl_device.RAPL_API_DIR = saved


class RaplPsysDomain(RaplDomain):  # type: ignore[misc, valid-type]
    """The platform ("psys") zone: a top-level zone named ``psys``, which pyJoules 0.5.1 does not know.

    Its ``socket`` is the zone's index (``intel-rapl:1`` -> 1); psys belongs to the platform, not a socket.
    """

    def get_domain_name(self) -> str:
        return PSYS_NAME

    def get_device_type(self) -> type:
        # pyJoules's DeviceFactory instantiates this type for the domain: the plain RaplDevice has no psys.
        return PowercapRaplDevice


class PowercapRaplDevice(RaplDevice):  # type: ignore[misc, valid-type]
    """pyJoules's RAPL device reading the tree under ``root`` (default ``/sys/class/powercap``), plus psys.

    Raises pyJoules's ``NoSuchDeviceError`` when ``root/intel-rapl`` does not exist, like the original.
    """

    def __init__(self, root: PathLike = "/sys/class/powercap") -> None:
        self.root = Path(root)
        self.api_dir = self.root / CONTROL_TYPE
        Device.__init__(self)  # calls self.available_domains()
        self._api_file_names = None

    def available_domains(self) -> list[Any]:
        with pyjoules_api_dir(self.api_dir):
            domains = list(RaplDevice.available_domains())
        return domains + self._psys_domains()

    def _psys_domains(self) -> list[RaplPsysDomain]:
        found = []
        for index in _top_level_indexes(self.api_dir):
            if _read_name(self.api_dir / f"{CONTROL_TYPE}:{index}") == PSYS_NAME:
                found.append(RaplPsysDomain(index))
        return found

    def _get_domain_file_name(self, domain) -> str:  # type: ignore[no-untyped-def]
        if isinstance(domain, RaplPsysDomain):
            return str(self.api_dir / f"{CONTROL_TYPE}:{domain.socket}" / "energy_uj")
        with pyjoules_api_dir(self.api_dir):
            return str(RaplDevice._get_domain_file_name(self, domain))

    @property
    def api_file_names(self) -> list[str]:
        """The ``energy_uj`` path of each configured domain, in ``get_configured_domains()`` order."""
        if self._api_file_names is None:
            raise rapl_device.NotConfiguredDeviceException()
        return list(self._api_file_names)


@dataclass(frozen=True)
class RaplZone:
    """One RAPL zone as the rest of cpu-pyjoules sees it."""

    zone_id: str  # sysfs zone id, unique on a host: "intel-rapl:0:1"
    component: str  # the zone's sysfs name: "package-0", "core", "uncore", "dram", "psys"
    energy_path: Path  # its energy_uj file
    max_energy_range_uj: int | None  # where the counter wraps; None if the tree does not say
    domain: object  # the pyJoules domain object (RaplPackageDomain(0), RaplPsysDomain(1), ...)


def discover_zones(root: PathLike) -> list[RaplZone]:
    """Every package/core/uncore/dram zone of every socket, plus psys, under ``root/intel-rapl``.

    Raises ``EnvironmentProblem`` when the tree is absent, holds no zone, or cannot be listed. Zones of the
    tree that pyJoules's discovery does not reach (a gap in the numbering, an unknown name) are logged so
    nobody silently loses a domain.
    """
    root = Path(root)
    api_dir = root / CONTROL_TYPE
    try:
        device = PowercapRaplDevice(root)
        device.configure()
        domains = list(device.get_configured_domains())
        paths = device.api_file_names
    except NoSuchDeviceError:
        detail = "the directory does not exist" if not root.exists() else f"{root} has no {CONTROL_TYPE}/ directory"
        raise rapl_errors.no_rapl(api_dir, detail) from None
    except (OSError, ValueError) as exc:
        raise rapl_errors.no_rapl(api_dir, f"cannot list the zones: {exc}") from None
    if not domains:
        raise rapl_errors.no_rapl(api_dir, "the directory holds no RAPL zone")

    zones = []
    for domain, energy_file in zip(domains, paths, strict=True):
        zone_dir = Path(energy_file).parent
        zones.append(
            RaplZone(
                zone_id=zone_dir.name,
                component=_read_name(zone_dir) or domain.get_domain_name(),
                energy_path=Path(energy_file),
                max_energy_range_uj=_read_max_range(zone_dir),
                domain=domain,
            )
        )
    zones.sort(key=lambda z: _zone_sort_key(z.zone_id))
    _warn_about_unreached_zones(api_dir, {z.zone_id for z in zones})
    return zones


def _zone_sort_key(zone_id: str) -> tuple[int, ...]:
    return tuple(int(part) for part in zone_id.split(":")[1:])


def _top_level_indexes(api_dir: Path) -> list[int]:
    indexes = []
    try:
        entries = os.listdir(api_dir)
    except OSError:
        return []
    for entry in entries:
        prefix, _, rest = entry.partition(":")
        if prefix == CONTROL_TYPE and rest.isdigit():
            indexes.append(int(rest))
    return sorted(indexes)


def _read_name(zone_dir: Path) -> str | None:
    try:
        return (zone_dir / "name").read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _read_max_range(zone_dir: Path) -> int | None:
    path = zone_dir / "max_energy_range_uj"
    try:
        value = int(path.read_text().strip())
    except (OSError, ValueError) as exc:
        logger.warning(
            "%s is not readable (%s): counter wraps of %s cannot be corrected and will be dropped",
            path,
            exc,
            zone_dir.name,
        )
        return None
    return value if value > 0 else None


def _warn_about_unreached_zones(api_dir: Path, monitored: set[str]) -> None:
    for index in _top_level_indexes(api_dir):
        top = api_dir / f"{CONTROL_TYPE}:{index}"
        candidates = [top] + [top / f"{top.name}:{sub}" for sub in _sub_indexes(top)]
        for zone_dir in candidates:
            if zone_dir.name not in monitored:
                logger.warning(
                    "RAPL zone %s (name %r) is not monitored: pyJoules's discovery does not reach it",
                    zone_dir,
                    _read_name(zone_dir),
                )


def _sub_indexes(top: Path) -> list[int]:
    try:
        entries = os.listdir(top)
    except OSError:
        return []
    prefix = top.name + ":"
    return sorted(int(e[len(prefix) :]) for e in entries if e.startswith(prefix) and e[len(prefix) :].isdigit())
