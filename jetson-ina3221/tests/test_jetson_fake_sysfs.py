"""The fake Jetson trees: each board's layout, symlinks from bus/ and class/ into devices/, values set in place."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from jetson_ina3221.fake_sysfs import BOARDS, FakeJetson, parse_rail


@pytest.mark.parametrize(
    "board, entry",
    [
        ("orin-nx", "bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon1/in1_label"),
        ("agx-orin", "bus/i2c/drivers/ina3221/1-0041/hwmon/hwmon2/in2_label"),
        ("xavier-nx", "bus/i2c/drivers/ina3221x/7-0040/iio:device0/rail_name_0"),
        ("nano", "bus/i2c/drivers/ina3221x/6-0040/iio:device0/rail_name_0"),
    ],
)
def test_bus_entries_are_symlinks_into_devices(make_jetson, board: str, entry: str) -> None:
    fake = make_jetson(board)
    chip_link = fake.root / Path(entry).parents[2 if "hwmon" in entry else 1]
    assert chip_link.is_symlink()
    resolved = (fake.root / entry).resolve()
    assert (fake.root / "devices").resolve() in resolved.parents
    assert (chip_link.resolve() / "driver").resolve() == chip_link.parent.resolve()
    if BOARDS[board].layout == "hwmon":
        hwmon = resolved.parent
        assert (fake.root / "class" / "hwmon" / hwmon.name).resolve() == hwmon
    else:
        assert (fake.root / "bus" / "iio" / "devices" / "iio:device0").resolve() == resolved.parent


def test_unused_channels_are_labelled_nc(make_jetson) -> None:
    fake = make_jetson("agx-orin")
    hwmon = fake.root / "bus/i2c/drivers/ina3221/1-0041/hwmon/hwmon2"
    assert [(hwmon / f"in{n}_label").read_text() for n in (1, 2, 3)] == ["NC\n", "VDDQ_VDD2_1V8AO\n", "NC\n"]
    assert set(fake.rails) == {"VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0", "VDDQ_VDD2_1V8AO"}


def test_set_rewrites_the_same_files_in_the_drivers_units(make_jetson) -> None:
    fake = make_jetson("xavier-nx", {"VDD_SOC": (5.05, 0.27)})
    iio = fake.root / "bus/i2c/drivers/ina3221x/7-0040/iio:device0"
    inode = (iio / "in_current2_input").stat().st_ino
    fd = os.open(iio / "in_current2_input", os.O_RDONLY)
    try:
        assert int(os.pread(fd, 32, 0)) == 270
        rail = fake.set("VDD_SOC", amps=1.234)
        assert int(os.pread(fd, 32, 0)) == 1234  # a reader keeping the file open sees the change
    finally:
        os.close(fd)
    assert (iio / "in_current2_input").stat().st_ino == inode
    assert int((iio / "in_voltage2_input").read_text()) == 5050
    assert int((iio / "in_power2_input").read_text()) == 5050 * 1234 // 1000
    assert rail.watts == pytest.approx(5.05 * 1.234)
    fake.set("VDD_SOC", volts=4.9, amps=-0.003)  # a current sensor's offset can read below zero
    assert int((iio / "in_current2_input").read_text()) == -3


def test_load_finds_the_values_a_build_left(make_jetson) -> None:
    fake = make_jetson("orin-nx", {"VDD_IN": (5.1, 2.0)})
    again = FakeJetson.load(fake.root)
    assert {n: (r.millivolts, r.milliamps, r.zone) for n, r in again.rails.items()} == {
        "VDD_IN": (5100, 2000, "1-0040:1"),
        "VDD_CPU_GPU_CV": (5080, 410, "1-0040:2"),
        "VDD_SOC": (5080, 330, "1-0040:3"),
    }


def test_bad_requests_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown board"):
        FakeJetson(tmp_path, "tx9")
    with pytest.raises(ValueError, match="has no rail 'VDD_GPU'"):
        FakeJetson(tmp_path, "orin-nx", {"VDD_GPU": (5, 1)})
    with pytest.raises(ValueError, match="inside /sys"):
        FakeJetson("/sys/fake", "orin-nx").build()
    assert parse_rail("VDD_IN=5.08V, 1.6A") == ("VDD_IN", 5.08, 1.6)
    for spec in ("VDD_IN", "VDD_IN=5", "VDD_IN=x,1", "=5,1", "VDD_IN=500,1"):
        with pytest.raises(ValueError):
            parse_rail(spec)


def test_command_line(tmp_path: Path) -> None:
    def tool(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "jetson_ina3221.fake_sysfs", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=60)

    built = tool("build", str(tmp_path), "--board", "nano", "--rail", "POM_5V_GPU=5,1.5")
    assert built.returncode == 0, built.stderr
    assert "6-0040:2  POM_5V_GPU        5.000 V  1.500 A   7.500 W" in built.stdout
    changed = tool("set", str(tmp_path), "--rail", "POM_5V_IN=5.1,2")
    assert changed.returncode == 0 and "POM_5V_IN         5.100 V  2.000 A  10.200 W" in changed.stdout
    assert "agx-orin" in tool("boards").stdout
    missing = tool("set", str(tmp_path / "none"), "--rail", "VDD_IN=5,1")
    assert missing.returncode == 2 and "holds no fake Jetson tree" in missing.stderr
