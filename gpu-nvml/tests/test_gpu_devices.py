"""Discovery through the real pynvml on the stand-in library: selection, capabilities, what cannot start."""

from __future__ import annotations

import pytest

from gpu_nvml.devices import POWER_INSTANT, POWER_USAGE, open_gpus
from gpu_nvml.fake_nvml import FakeGpu, default_uuid
from gpu_nvml.settings import Settings
from monitoring_client.errors import ConfigError, EnvironmentProblem

THREE = [
    FakeGpu("NVIDIA A100-SXM4-80GB", 250),
    FakeGpu("Tesla P4", 60, energy=False),
    FakeGpu("Tesla T4", 70, instant=False),
]


def test_every_gpu_with_its_energy_and_power_source(make_fake_nvml, nvml_in_process) -> None:
    nvml_in_process(make_fake_nvml(THREE))
    gpus = open_gpus(Settings())
    assert [(g.index, g.uuid, g.name, g.counter, g.power) for g in gpus] == [
        (0, default_uuid(0), "NVIDIA A100-SXM4-80GB", True, POWER_INSTANT),
        (1, default_uuid(1), "Tesla P4", False, POWER_INSTANT),
        (2, default_uuid(2), "Tesla T4", True, POWER_USAGE),
    ]
    assert "power usage (a 1 s average on recent GPUs)" in gpus[2].describe()


@pytest.mark.parametrize(
    "devices, indexes",
    [(("2",), [2]), ((default_uuid(1),), [1]), (("2", default_uuid(0), "0"), [0, 2])],
)
def test_nvml_devices_selects_by_index_or_uuid(make_fake_nvml, nvml_in_process, devices, indexes) -> None:
    nvml_in_process(make_fake_nvml(THREE))
    assert [g.index for g in open_gpus(Settings(devices=devices))] == indexes


@pytest.mark.parametrize("token", ["3", "GPU-not-here"])
def test_a_gpu_this_machine_lacks_is_a_config_error_listing_what_it_has(make_fake_nvml, nvml_in_process, token) -> None:
    nvml_in_process(make_fake_nvml(THREE))
    with pytest.raises(ConfigError) as info:
        open_gpus(Settings(devices=("0", token)))
    message = str(info.value)
    assert message.startswith(f"NVML_DEVICES='0,{token}' is invalid: no GPU '{token}' on this machine")
    assert f"2 {default_uuid(2)} (Tesla T4)" in message


def test_no_gpu_is_an_environment_problem(make_fake_nvml, nvml_in_process) -> None:
    nvml_in_process(make_fake_nvml([]))
    with pytest.raises(EnvironmentProblem, match="reports no GPU.*NVIDIA Container Toolkit.*--gpus"):
        open_gpus(Settings())


def test_a_gpu_lost_before_start_is_left_out_and_all_lost_is_an_environment_problem(
    make_fake_nvml, nvml_in_process, caplog
) -> None:
    fake = make_fake_nvml(THREE)
    fake.lose(1)
    nvml_in_process(fake)
    assert [g.index for g in open_gpus(Settings())] == [0, 2]
    assert "GPU 1 cannot be read and is left out: GPU is lost" in caplog.text
    with pytest.raises(EnvironmentProblem, match="GPU 1: GPU is lost"):
        open_gpus(Settings(devices=("1",)))
