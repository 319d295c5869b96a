"""Finding rails on every board layout, and what a person reads when there are none."""

from __future__ import annotations

from pathlib import Path

import pytest

from jetson_ina3221.discovery import find_rails, no_rails


@pytest.mark.parametrize(
    "board, expected",
    [
        ("orin-nx", [("1-0040:1", "VDD_IN"), ("1-0040:2", "VDD_CPU_GPU_CV"), ("1-0040:3", "VDD_SOC")]),
        (
            "agx-orin",
            [
                ("1-0040:1", "VDD_GPU_SOC"),
                ("1-0040:2", "VDD_CPU_CV"),
                ("1-0040:3", "VIN_SYS_5V0"),
                ("1-0041:2", "VDDQ_VDD2_1V8AO"),
            ],
        ),
        ("xavier-nx", [("7-0040:1", "VDD_IN"), ("7-0040:2", "VDD_CPU_GPU_CV"), ("7-0040:3", "VDD_SOC")]),
        ("nano", [("6-0040:1", "POM_5V_IN"), ("6-0040:2", "POM_5V_GPU"), ("6-0040:3", "POM_5V_CPU")]),
    ],
)
def test_every_connected_rail_of_every_chip(make_jetson, board: str, expected: list[tuple[str, str]]) -> None:
    fake = make_jetson(board)
    rails = find_rails(fake.root)
    assert [(r.zone, r.name) for r in rails] == expected
    for rail in rails:
        assert int(rail.volts_path.read_text()) == fake.rails[rail.name].millivolts
        assert int(rail.amps_path.read_text()) == fake.rails[rail.name].milliamps
        assert rail.layout == ("hwmon" if board in ("orin-nx", "agx-orin") else "iio")


def test_a_channel_without_label_is_named_by_its_number(make_jetson) -> None:
    fake = make_jetson("orin-nx")
    (fake.rails["VDD_SOC"].directory / "in3_label").unlink()  # the upstream driver's unlabelled channel
    assert [r.name for r in find_rails(fake.root)] == ["VDD_IN", "VDD_CPU_GPU_CV", "channel3"]


def test_no_rails_names_the_paths_and_the_fixes(tmp_path: Path) -> None:
    assert find_rails(tmp_path) == []
    message = str(no_rails(tmp_path))
    for needle in (f"{tmp_path}/bus/i2c/drivers/ina3221/*/hwmon/hwmon*", "ina3221x", "JETSON_SYSFS_ROOT", "fake_sysfs"):
        assert needle in message
