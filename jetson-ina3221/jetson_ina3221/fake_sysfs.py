"""Fake Jetson sysfs trees of real files: INA3221 power monitors whose rails draw the volts and amps you set.

Machines without a Jetson (CI, a laptop) can then run the real client and the whole stack. A tree has the
layout of the board's ``/sys``: the device directories under ``devices/``, with the driver's files, and
the symlinks into them that the kernel makes under ``bus/`` and ``class/``::

    DIR/devices/platform/bus@0/c240000.i2c/i2c-1/1-0040/            the chip (name, driver -> ...)
        hwmon/hwmon1/{name,in1_label,in1_input,curr1_input,...}       JetPack 5/6: hwmon driver "ina3221"
    DIR/devices/c250000.i2c/i2c-7/7-0040/iio:device0/
        {name,rail_name_0,in_voltage0_input,in_current0_input,in_power0_input,...}   JetPack 4: "ina3221x"
    DIR/bus/i2c/drivers/<driver>/<chip> -> ../../../../devices/.../<chip>
    DIR/bus/i2c/devices/<chip>, DIR/class/hwmon/hwmonN, DIR/bus/iio/devices/iio:deviceN -> into devices/

Boards: ``orin-nx`` (Orin NX/Nano, JetPack 6), ``agx-orin`` (two chips, no VDD_IN, JetPack 5/6),
``xavier-nx`` (JetPack 4), ``nano`` (JetPack 4). Unused channels are labelled ``NC``. Values are in the
driver's units (mV, mA; mW for the iio power file), rewritten in place (same inode, one fixed-width write)
so that a reader keeping the file open sees each change.

Command line::

    python -m jetson_ina3221.fake_sysfs build DIR --board orin-nx [--rail VDD_IN=5.08,1.6] ...
    python -m jetson_ina3221.fake_sysfs set DIR --rail VDD_IN=5.08,2.2
    python -m jetson_ina3221.fake_sysfs boards

From Python: ``FakeJetson(root, "orin-nx").build()``, then ``set("VDD_IN", volts=5.0, amps=2.0)``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

BOARD_FILE = ".fake-jetson-board"
NC = "NC"
# Fixed width of every value written (sign and zero padding): rewrites never leave stale digits behind.
WIDTH = 8


@dataclass(frozen=True)
class Chip:
    """One INA3221: its I2C device name, where it sits under devices/, and its three rails (NC = unused)."""

    name: str  # "1-0040": bus 1, address 0x40
    parent: str  # its I2C adapter's directory, relative to devices/
    rails: tuple[str, str, str]


@dataclass(frozen=True)
class Board:
    title: str
    driver: str  # "ina3221" (hwmon, JetPack 5/6) or "ina3221x" (iio, JetPack 4)
    chips: tuple[Chip, ...]
    defaults: Mapping[str, tuple[float, float]]  # rail -> (volts, amps)

    @property
    def layout(self) -> str:
        return "hwmon" if self.driver == "ina3221" else "iio"


_ORIN_I2C = "platform/bus@0/c240000.i2c/i2c-1"
BOARDS: dict[str, Board] = {
    "orin-nx": Board(
        "Jetson Orin NX / Orin Nano, JetPack 6 (hwmon)",
        "ina3221",
        (Chip("1-0040", _ORIN_I2C, ("VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC")),),
        {"VDD_IN": (5.08, 1.52), "VDD_CPU_GPU_CV": (5.08, 0.41), "VDD_SOC": (5.08, 0.33)},
    ),
    "agx-orin": Board(
        "Jetson AGX Orin, JetPack 5/6 (hwmon, two chips, no VDD_IN)",
        "ina3221",
        (
            Chip("1-0040", _ORIN_I2C, ("VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0")),
            Chip("1-0041", _ORIN_I2C, (NC, "VDDQ_VDD2_1V8AO", NC)),
        ),
        {
            "VDD_GPU_SOC": (5.04, 0.92),
            "VDD_CPU_CV": (5.04, 0.31),
            "VIN_SYS_5V0": (5.0, 0.78),
            "VDDQ_VDD2_1V8AO": (5.0, 0.12),
        },
    ),
    "xavier-nx": Board(
        "Jetson Xavier NX, JetPack 4 (iio)",
        "ina3221x",
        (Chip("7-0040", "c250000.i2c/i2c-7", ("VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC")),),
        {"VDD_IN": (5.05, 0.96), "VDD_CPU_GPU_CV": (5.05, 0.22), "VDD_SOC": (5.05, 0.27)},
    ),
    "nano": Board(
        "Jetson Nano, JetPack 4 (iio)",
        "ina3221x",
        (Chip("6-0040", "7000c400.i2c/i2c-6", ("POM_5V_IN", "POM_5V_GPU", "POM_5V_CPU")),),
        {"POM_5V_IN": (5.0, 0.62), "POM_5V_GPU": (5.0, 0.04), "POM_5V_CPU": (5.0, 0.17)},
    ),
}


@dataclass
class FakeRail:
    """One connected channel and the values its files hold."""

    name: str
    chip: str
    channel: int  # 1..3, the INA3221's own numbering
    directory: Path  # the hwmon or iio directory
    millivolts: int
    milliamps: int

    @property
    def zone(self) -> str:
        return f"{self.chip}:{self.channel}"

    @property
    def watts(self) -> float:
        return self.millivolts * self.milliamps / 1e6


def _relative_link(link: Path, target: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(os.path.relpath(target, link.parent), link)


def _write(path: Path, value: int) -> None:
    """Rewrite a value file in place: same inode, one write of the same width."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        os.pwrite(fd, b"%0*d\n" % (WIDTH, value), 0)
    finally:
        os.close(fd)


class FakeJetson:
    """A fake ``/sys`` of one board under ``root``; ``values`` overrides the board's (volts, amps) per rail."""

    def __init__(self, root: str | Path, board: str, values: Mapping[str, tuple[float, float]] | None = None) -> None:
        if board not in BOARDS:
            raise ValueError(f"unknown board {board!r}: choose one of {', '.join(BOARDS)}")
        self.root = Path(root)
        self.board_name = board
        self.board = BOARDS[board]
        self.initial = dict(self.board.defaults)
        for rail, pair in (values or {}).items():
            if rail not in self.initial:
                raise ValueError(f"board {board} has no rail {rail!r} (it has {', '.join(self.initial)})")
            self.initial[rail] = pair
        self.rails: dict[str, FakeRail] = {}

    def build(self) -> FakeJetson:
        """Create (or re-create) the tree with every rail at its initial values; returns self."""
        resolved = self.root.resolve()
        if resolved == Path("/sys") or Path("/sys") in resolved.parents:
            raise ValueError(f"refusing to build a fake tree inside /sys ({resolved})")
        for top in ("devices", "bus", "class"):
            shutil.rmtree(self.root / top, ignore_errors=True)
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / BOARD_FILE).write_text(self.board_name + "\n")
        driver_dir = self.root / "bus" / "i2c" / "drivers" / self.board.driver
        driver_dir.mkdir(parents=True)
        self.rails = {}
        for number, chip in enumerate(self.board.chips):
            device = self.root / "devices" / chip.parent / chip.name
            device.mkdir(parents=True)
            (device / "name").write_text(self.board.driver + "\n")
            _relative_link(device / "driver", driver_dir)
            _relative_link(driver_dir / chip.name, device)
            _relative_link(self.root / "bus" / "i2c" / "devices" / chip.name, device)
            directory = self.channel_directory(number, chip)
            directory.mkdir(parents=True)
            if self.board.layout == "hwmon":
                _relative_link(self.root / "class" / "hwmon" / directory.name, directory)
                for name, content in (("name", "ina3221"), ("update_interval", "1100"), ("samples", "512")):
                    (directory / name).write_text(content + "\n")
            else:
                _relative_link(self.root / "bus" / "iio" / "devices" / directory.name, directory)
                (directory / "name").write_text("ina3221x\n")
            for channel, rail in enumerate(chip.rails, start=1):
                self._channel_files(directory, channel, rail)
                if rail != NC:
                    volts, amps = self.initial[rail]
                    self.rails[rail] = FakeRail(rail, chip.name, channel, directory, 0, 0)
                    self.set(rail, volts=volts, amps=amps)
                else:
                    self._write_values(directory, channel, 0, 0)
        return self

    def channel_directory(self, number: int, chip: Chip) -> Path:
        """The hwmon or iio directory of the ``number``-th chip (hwmon numbers start at 1, iio at 0)."""
        device = self.root / "devices" / chip.parent / chip.name
        if self.board.layout == "hwmon":
            return device / "hwmon" / f"hwmon{number + 1}"
        return device / f"iio:device{number}"

    def _channel_files(self, directory: Path, channel: int, rail: str) -> None:
        if self.board.layout == "hwmon":
            (directory / f"in{channel}_label").write_text(rail + "\n")
            (directory / f"curr{channel}_crit").write_text("10000\n")
            (directory / f"curr{channel}_max").write_text("8000\n")
        else:
            (directory / f"rail_name_{channel - 1}").write_text(rail + "\n")
            (directory / f"crit_current_limit_{channel - 1}").write_text("10000\n")

    def _write_values(self, directory: Path, channel: int, millivolts: int, milliamps: int) -> None:
        if self.board.layout == "hwmon":
            _write(directory / f"in{channel}_input", millivolts)
            _write(directory / f"curr{channel}_input", milliamps)
            _write(directory / f"in{channel + 3}_input", milliamps * 5 // 1000)  # shunt mV across 5 mΩ
        else:
            n = channel - 1
            _write(directory / f"in_voltage{n}_input", millivolts)
            _write(directory / f"in_current{n}_input", milliamps)
            _write(directory / f"in_power{n}_input", millivolts * milliamps // 1000)

    def set(self, rail: str, *, volts: float | None = None, amps: float | None = None) -> FakeRail:
        """Rewrite ``rail``'s files: its voltage (V) and/or current (A), stored as the driver's mV and mA."""
        if rail not in self.rails:
            raise ValueError(f"no rail {rail!r} in this tree (it has {', '.join(self.rails)})")
        state = self.rails[rail]
        if volts is not None:
            state.millivolts = round(volts * 1000)
        if amps is not None:
            state.milliamps = round(amps * 1000)
        self._write_values(state.directory, state.channel, state.millivolts, state.milliamps)
        return state

    @classmethod
    def load(cls, root: str | Path) -> FakeJetson:
        """A tree a previous ``build`` made, with the values its files hold (for the command line's ``set``)."""
        root = Path(root)
        try:
            board = (root / BOARD_FILE).read_text().strip()
        except OSError:
            raise ValueError(f"{root} holds no fake Jetson tree: run `build` first") from None
        fake = cls(root, board)
        for number, chip in enumerate(fake.board.chips):
            directory = fake.channel_directory(number, chip)
            for channel, rail in enumerate(chip.rails, start=1):
                if rail == NC:
                    continue
                if fake.board.layout == "hwmon":
                    files = (f"in{channel}_input", f"curr{channel}_input")
                else:
                    files = (f"in_voltage{channel - 1}_input", f"in_current{channel - 1}_input")
                mv, ma = (int((directory / name).read_text()) for name in files)
                fake.rails[rail] = FakeRail(rail, chip.name, channel, directory, mv, ma)
        return fake

    def describe(self) -> str:
        return "\n".join(
            f"  {r.zone:<9} {r.name:<16} {r.millivolts / 1000:6.3f} V {r.milliamps / 1000:6.3f} A {r.watts:7.3f} W"
            for r in self.rails.values()
        )


def parse_rail(spec: str) -> tuple[str, float, float]:
    """``VDD_IN=5.08,1.6`` -> ("VDD_IN", 5.08, 1.6): volts and amps. Raises ValueError with the reason."""
    name, sep, rest = spec.partition("=")
    parts = rest.split(",")
    try:
        if not sep or not name.strip() or len(parts) != 2:
            raise ValueError
        volts, amps = (float(p.strip().rstrip("VAva")) for p in parts)
    except ValueError:
        raise ValueError(f"expected RAIL=VOLTS,AMPS (e.g. VDD_IN=5.08,1.6), got {spec!r}") from None
    if not (0 <= volts < 100 and -100 < amps < 100):
        raise ValueError(f"volts must be in [0, 100) and amps in (-100, 100), got {spec!r}")
    return name.strip(), volts, amps


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m jetson_ina3221.fake_sysfs",
        description="Build a fake Jetson /sys with INA3221 rails, or set the volts and amps of its rails.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="build the tree of a board in DIR (point JETSON_SYSFS_ROOT at it)")
    build.add_argument("dir", type=Path)
    build.add_argument("--board", default="orin-nx", choices=sorted(BOARDS))
    build.add_argument("--rail", action="append", default=[], metavar="RAIL=VOLTS,AMPS")
    change = commands.add_parser("set", help="set rails of an existing tree")
    change.add_argument("dir", type=Path)
    change.add_argument("--rail", action="append", required=True, metavar="RAIL=VOLTS,AMPS")
    commands.add_parser("boards", help="list the boards")
    args = parser.parse_args(argv)
    try:
        if args.command == "boards":
            for name, board in BOARDS.items():
                print(f"{name:<10} {board.title}: {', '.join(board.defaults)}")
            return 0
        rails = [parse_rail(spec) for spec in args.rail]
        if args.command == "build":
            fake = FakeJetson(args.dir, args.board, {name: (v, a) for name, v, a in rails}).build()
            print(f"fake {fake.board.title} under {args.dir} (JETSON_SYSFS_ROOT={args.dir}):")
        else:
            fake = FakeJetson.load(args.dir)
            for name, volts, amps in rails:
                fake.set(name, volts=volts, amps=amps)
        print(fake.describe())
        return 0
    except (ValueError, OSError) as exc:
        print(f"fake_sysfs: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
