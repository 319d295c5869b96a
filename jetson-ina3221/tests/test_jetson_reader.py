"""Reading the rail files on kept-open descriptors: values, changes in place, torn and unreadable files."""

from __future__ import annotations

import pytest

from jetson_ina3221.discovery import find_rails
from jetson_ina3221.reader import RailReader
from monitoring_client.device_loop import SkipTick
from monitoring_client.errors import EnvironmentProblem


def test_reads_volts_and_amps_and_sees_changes(make_jetson) -> None:
    fake = make_jetson("agx-orin")
    reader = RailReader(find_rails(fake.root))
    try:
        assert reader.read() == [5040, 920, 5040, 310, 5000, 780, 5000, 120]
        fake.set("VDDQ_VDD2_1V8AO", volts=1.1, amps=2.5)
        assert reader.read()[-2:] == [1100, 2500]
    finally:
        reader.close()


def test_a_torn_value_skips_the_tick(make_jetson) -> None:
    fake = make_jetson("orin-nx")
    reader = RailReader(find_rails(fake.root))
    try:
        (fake.rails["VDD_SOC"].directory / "curr3_input").write_text("12a\n")
        with pytest.raises(SkipTick, match="unparsable INA3221 value"):
            reader.read()
    finally:
        reader.close()


def test_an_unreadable_file_is_an_environment_problem_naming_it(make_jetson) -> None:
    fake = make_jetson("orin-nx")
    rails = find_rails(fake.root)
    target = fake.rails["VDD_IN"].directory / "curr1_input"
    target.unlink()
    target.mkdir()  # opens, but reading it fails
    with pytest.raises(EnvironmentProblem, match=f"Cannot read the INA3221 value {rails[0].amps_path}"):
        RailReader(rails)
