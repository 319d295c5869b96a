"""gpu-nvml through the real ``monitoring-client`` command: exit statuses and the messages people see."""

from __future__ import annotations

import ctypes.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gpu_nvml.fake_nvml import FakeGpu
from gpu_nvml.settings import Settings
from monitoring_client.settings_table import refusals

IMPL = Path(__file__).resolve().parents[1] / "monitor_impl.py"
OWN_VARIABLES = ("NVML_DEVICES", "METRIC_PREFIX", "MAX_GPU_POWER_W", "FAKE_NVML_CONTROL", "LD_LIBRARY_PATH")


def run_client(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in OWN_VARIABLES}
    environ.update(MONITOR_IMPL=str(IMPL), REMOTE_WRITE_URL="http://127.0.0.1:9/api/v1/write", HOST_LABEL="test-host")
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "monitoring_client", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=environ,
        cwd=cwd,
    )


def assert_no_gpu_paragraph(done: subprocess.CompletedProcess[str], cause: str) -> None:
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    paragraph = done.stderr.strip().splitlines()[-1]
    for needle in (cause, "NVIDIA driver", "NVIDIA Container Toolkit", "--gpus", "python -m gpu_nvml.fake_nvml"):
        assert needle in paragraph


def test_without_the_nvidia_library_exits_3_naming_driver_toolkit_and_gpus(tmp_path: Path) -> None:
    if ctypes.util.find_library("nvidia-ml") is not None:
        pytest.skip("this machine has a real libnvidia-ml: the library is not missing here")
    done = run_client(tmp_path, LD_LIBRARY_PATH=str(tmp_path))
    assert_no_gpu_paragraph(done, "libnvidia-ml.so.1 was not found")


def test_driver_not_loaded_exits_3(tmp_path: Path, fake_nvml_library: Path) -> None:
    done = run_client(tmp_path, LD_LIBRARY_PATH=str(fake_nvml_library.parent))  # no control file: no driver
    assert_no_gpu_paragraph(done, "kernel driver is not loaded")


def test_no_gpu_exits_3(tmp_path: Path, make_fake_nvml) -> None:
    done = run_client(tmp_path, **make_fake_nvml([]).env)
    assert_no_gpu_paragraph(done, "reports no GPU")


def test_a_gpu_the_machine_lacks_exits_2_with_one_line(tmp_path: Path, make_fake_nvml) -> None:
    done = run_client(tmp_path, NVML_DEVICES="0,5", **make_fake_nvml([FakeGpu("A", 100)]).env)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().startswith("NVML_DEVICES='0,5' is invalid: no GPU '5' on this machine, which has: 0 ")
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("variable, bad, at_start", refusals(Settings))
def test_every_value_the_settings_table_refuses_is_one_line_and_exit_2(
    tmp_path: Path, make_fake_nvml, variable, bad, at_start
):
    fake = make_fake_nvml([FakeGpu("A", 100)])  # NVML_DEVICES naming a GPU it lacks is refused once NVML answers
    done = run_client(tmp_path, **{**fake.env, **bad.also, variable: bad.value})
    assert (done.returncode, done.stderr.count("\n")) == (2, 1), done.stderr
    assert done.stderr.startswith(f"{variable}={bad.value!r} is invalid: ") and ("expected" in done.stderr or at_start)


def test_check_passes_with_gpus(tmp_path: Path, make_fake_nvml) -> None:
    done = run_client(tmp_path, "--check", **make_fake_nvml([FakeGpu("A", 100), FakeGpu("B", 1, energy=False)]).env)
    assert done.returncode == 0, done.stderr
    assert "configuration OK" in done.stdout


def test_fake_nvml_command_line(tmp_path: Path) -> None:
    def fake(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gpu_nvml.fake_nvml", *args], capture_output=True, text=True, timeout=120
        )

    built = fake("build", str(tmp_path), "--gpu", "NVIDIA H100 80GB HBM3=700", "--gpu", "Tesla K80=149,no-energy")
    if built.returncode != 0 and "no C compiler" in built.stderr:
        pytest.skip(built.stderr.strip())
    assert built.returncode == 0, built.stderr
    assert f"export LD_LIBRARY_PATH={tmp_path}/lib" in built.stdout
    assert (tmp_path / "lib" / "libnvidia-ml.so.1").is_file()
    assert "Tesla K80: 149 W, no energy counter, instant power" in fake("set", str(tmp_path), "1", "149").stdout
    assert "NVIDIA H100 80GB HBM3: 35.5 W" in fake("set", str(tmp_path), "0", "35.5").stdout
    assert fake("reset", str(tmp_path), "0").returncode == 0
    assert "LOST" in fake("lose", str(tmp_path), "1").stdout
    shown = fake("show", str(tmp_path))
    assert shown.returncode == 0 and "Tesla K80: 149 W, no energy counter, instant power, LOST" in shown.stdout
    missing = fake("set", str(tmp_path), "7", "10")
    assert missing.returncode == 2 and "no GPU 7: the stand-in has 2" in missing.stderr
    bad = fake("build", str(tmp_path / "x"), "--gpu", "A100")
    assert bad.returncode == 2 and "expected NAME=WATTS" in bad.stderr
