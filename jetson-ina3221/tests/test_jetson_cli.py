"""jetson-ina3221 through the real ``monitoring-client`` command: settings, exit statuses and messages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from jetson_ina3221.settings import DEFAULT_TOTAL_RAILS, Settings, load_settings
from monitoring_client import settings_table
from monitoring_client.errors import ConfigError
from monitoring_client.settings_table import refusals

IMPL = Path(__file__).resolve().parents[1] / "monitor_impl.py"
OWN_VARIABLES = ("JETSON_SYSFS_ROOT", "METRIC_PREFIX", "JETSON_TOTAL_RAILS")
README = IMPL.with_name("README.md")


def run_client(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in OWN_VARIABLES}
    environ.update(MONITOR_IMPL=str(IMPL), REMOTE_WRITE_URL="http://127.0.0.1:9/api/v1/write", HOST_LABEL="test-host")
    environ.update(env)
    command = [sys.executable, "-m", "monitoring_client", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env=environ, cwd=cwd)


def test_settings() -> None:
    assert load_settings({}) == Settings(Path("/sys"), "jetson", DEFAULT_TOTAL_RAILS)
    got = load_settings({"JETSON_SYSFS_ROOT": "/host/sys", "JETSON_TOTAL_RAILS": " VIN , VDD_IN"})
    assert got.sysfs_root == Path("/host/sys") and got.total_rails == ("VIN", "VDD_IN")
    with pytest.raises(ConfigError) as info:
        load_settings({"JETSON_TOTAL_RAILS": "VDD IN", "METRIC_PREFIX": "9"})
    assert [line.split("=")[0] for line in str(info.value).splitlines()] == ["METRIC_PREFIX", "JETSON_TOTAL_RAILS"]
    assert str(info.value).splitlines()[1].startswith("JETSON_TOTAL_RAILS='VDD IN' is invalid: expected rail names")


def test_readme_table_is_the_settings_table() -> None:
    text = README.read_text()
    assert settings_table.update_readme(text, Settings) == text, (
        "README.md's settings table is out of date: run"
        " python -m monitoring_client.settings_table jetson_ina3221.settings:Settings jetson-ina3221/README.md"
    )


@pytest.mark.parametrize("variable, bad, at_start", refusals(Settings))
def test_every_value_the_settings_table_refuses_stops_the_client(tmp_path: Path, make_jetson, variable, bad, at_start):
    done = run_client(tmp_path, **{"JETSON_SYSFS_ROOT": str(make_jetson("orin-nx").root), variable: bad.value})
    message = done.stderr.strip()
    assert "Traceback" not in message and len(message.splitlines()) == 1, message
    if at_start:  # a root without rails is the environment's problem, not a malformed value
        assert done.returncode == 3 and bad.value in message, message
    else:
        assert done.returncode == 2 and message.startswith(f"{variable}={bad.value!r} is invalid: expected "), message


def test_no_jetson_exits_3_with_the_paths_and_fixes(tmp_path: Path) -> None:
    done = run_client(tmp_path, JETSON_SYSFS_ROOT=str(tmp_path / "sys"))
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    paragraph = done.stderr.strip().splitlines()[-1]
    for needle in (f"{tmp_path}/sys/bus/i2c/drivers/ina3221", "Jetson", "JETSON_SYSFS_ROOT", "fake_sysfs build"):
        assert needle in paragraph


def test_an_unreadable_rail_exits_3_naming_the_file(tmp_path: Path, make_jetson) -> None:
    fake = make_jetson("xavier-nx")
    target = fake.rails["VDD_SOC"].directory / "in_voltage2_input"
    target.unlink()
    target.mkdir()
    done = run_client(tmp_path, JETSON_SYSFS_ROOT=str(fake.root))
    assert done.returncode == 3, done.stderr
    assert "Cannot read the INA3221 value" in done.stderr and "in_voltage2_input" in done.stderr


def test_a_bad_prefix_exits_2_with_one_line(tmp_path: Path, make_jetson) -> None:
    done = run_client(tmp_path, JETSON_SYSFS_ROOT=str(make_jetson("nano").root), METRIC_PREFIX="jetson-power")
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().startswith("METRIC_PREFIX='jetson-power' is invalid")
    assert len(done.stderr.strip().splitlines()) == 1


def test_check_passes_on_every_board(tmp_path: Path, make_jetson) -> None:
    for board in ("orin-nx", "agx-orin", "xavier-nx", "nano"):
        done = run_client(tmp_path, "--check", JETSON_SYSFS_ROOT=str(make_jetson(board).root))
        assert done.returncode == 0, (board, done.stderr)
