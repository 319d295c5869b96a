"""Find every INA3221 rail under a sysfs root, in both driver layouts.

* JetPack 5/6, upstream hwmon driver ``ina3221``: ``bus/i2c/drivers/ina3221/<chip>/hwmon/hwmon*/`` with
  ``in<N>_label``, ``in<N>_input`` (bus voltage, mV) and ``curr<N>_input`` (mA), channels N = 1..3;
* JetPack 4, NVIDIA's iio driver ``ina3221x``: ``bus/i2c/drivers/ina3221x/<chip>/iio:device*/`` with
  ``rail_name_<n>``, ``in_voltage<n>_input`` (mV) and ``in_current<n>_input`` (mA), channels n = 0..2.

Every chip found is read (AGX Orin has two); channels labelled ``NC`` (not connected) are skipped. A
channel is named by its chip and the INA3221's own channel number 1..3 in both layouts (``1-0040:1``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from monitoring_client.errors import EnvironmentProblem

logger = logging.getLogger(__name__)

HWMON_DRIVER = "ina3221"
IIO_DRIVER = "ina3221x"
NOT_CONNECTED = "NC"


@dataclass(frozen=True)
class Rail:
    """One connected channel of one chip, and the two files that hold its voltage and current."""

    name: str  # the board's rail name (VDD_IN, ...), or channel<N> when the channel has no label
    chip: str  # I2C device name: "1-0040" is bus 1, address 0x40
    channel: int  # 1..3
    volts_path: Path  # mV
    amps_path: Path  # mA
    layout: str  # "hwmon" or "iio"

    @property
    def zone(self) -> str:
        return f"{self.chip}:{self.channel}"


@dataclass(frozen=True)
class Layout:
    """Where one driver puts a chip's channels, and the file names of channel ``n`` in its own numbering."""

    name: str
    driver: str
    pattern: str  # directories of a chip that hold the channel files
    first: int  # the driver's number of the INA3221's channel 1
    label: str
    volts: str
    amps: str


LAYOUTS = (
    Layout("hwmon", HWMON_DRIVER, "hwmon/hwmon*", 1, "in{n}_label", "in{n}_input", "curr{n}_input"),
    Layout("iio", IIO_DRIVER, "iio:device*", 0, "rail_name_{n}", "in_voltage{n}_input", "in_current{n}_input"),
)


def _label(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def find_rails(root: Path) -> list[Rail]:
    """Every connected rail under ``root`` (a sysfs root such as /sys), hwmon chips first, in name order."""
    rails: list[Rail] = []
    for layout in LAYOUTS:
        for chip_dir in sorted((root / "bus" / "i2c" / "drivers" / layout.driver).glob("*-*")):
            for directory in sorted(chip_dir.glob(layout.pattern)):
                for channel in (1, 2, 3):
                    n = channel - 1 + layout.first
                    label = _label(directory / layout.label.format(n=n))
                    volts = directory / layout.volts.format(n=n)
                    amps = directory / layout.amps.format(n=n)
                    if (label is not None and label.upper() == NOT_CONNECTED) or not (volts.exists() and amps.exists()):
                        continue
                    rails.append(Rail(label or f"channel{channel}", chip_dir.name, channel, volts, amps, layout.name))
    return rails


def no_rails(root: Path) -> EnvironmentProblem:
    """Nothing found: not a Jetson, a kernel without the driver, or the wrong root."""
    return EnvironmentProblem(
        f"No INA3221 power monitor found under {root}/bus/i2c/drivers/{HWMON_DRIVER}/*/hwmon/hwmon* (JetPack 5/6)"
        f" or {root}/bus/i2c/drivers/{IIO_DRIVER}/*/iio:device* (JetPack 4). This client reads the power rails of"
        " NVIDIA Jetson boards (Orin, Xavier, Nano, TX2); other machines have none. On a Jetson, check that the"
        " ina3221 driver is loaded (`ls /sys/bus/i2c/drivers`). In Docker, /sys is visible read-only by default;"
        " if the host's /sys is mounted elsewhere, set JETSON_SYSFS_ROOT to that path. To try the client without"
        " a Jetson, run `python -m jetson_ina3221.fake_sysfs build DIR --board orin-nx` and set"
        " JETSON_SYSFS_ROOT=DIR."
    )


def unreadable(path: Path, error: BaseException) -> EnvironmentProblem:
    """A rail's file exists but cannot be read as a number."""
    reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return EnvironmentProblem(
        f"Cannot read the INA3221 value {path}: {reason}. The hwmon and iio files are world-readable on a"
        " Jetson: check that JETSON_SYSFS_ROOT points at a sysfs (or a fake tree), and, in Docker, that /sys is"
        " not hidden from the container."
    )
