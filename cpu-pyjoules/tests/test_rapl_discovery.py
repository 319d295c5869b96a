"""Zone discovery through pyJoules's RAPL device, pointed at fake trees of real files."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys

import pytest
from pyJoules.device import rapl_device

from cpu_pyjoules.rapl_discovery import PowercapRaplDevice, RaplPsysDomain, discover_zones, pyjoules_api_dir
from monitoring_client.errors import EnvironmentProblem


def summary(zones):
    return [(z.zone_id, z.component, z.energy_path.name, z.max_energy_range_uj) for z in zones]


def test_single_socket_with_every_subzone(make_tree):
    fake = make_tree("package-0=25,core=15,uncore=3,dram=4", wrap_joules=100)
    zones = discover_zones(fake.root)
    assert summary(zones) == [
        ("intel-rapl:0", "package-0", "energy_uj", 100_000_000),
        ("intel-rapl:0:0", "core", "energy_uj", 100_000_000),
        ("intel-rapl:0:1", "uncore", "energy_uj", 100_000_000),
        ("intel-rapl:0:2", "dram", "energy_uj", 100_000_000),
    ]
    for zone in zones:
        assert zone.energy_path == fake.zones[zone.zone_id].directory / "energy_uj"


def test_every_socket_is_found(make_tree):
    fake = make_tree("package-0=25,core=15,dram=4", sockets=4)
    zones = discover_zones(fake.root)
    assert [z.zone_id for z in zones] == [z for z in fake.zones]  # same set and order as the tree
    assert [z.component for z in zones if z.zone_id.count(":") == 1] == [f"package-{s}" for s in range(4)]
    assert sorted(repr(z.domain) for z in zones) == sorted(
        [f"package_{s}" for s in range(4)] + [f"core_{s}" for s in range(4)] + [f"dram_{s}" for s in range(4)]
    )


def test_missing_subzones_are_fine(make_tree):
    fake = make_tree("package-0=25")
    assert summary(discover_zones(fake.root)) == [("intel-rapl:0", "package-0", "energy_uj", fake.max_range_uj)]


def test_psys_is_added_to_what_pyjoules_finds(make_tree):
    fake = make_tree("package-0=25,core=15", sockets=2, psys_watts=40)
    zones = discover_zones(fake.root)
    psys = [z for z in zones if z.component == "psys"]
    assert len(psys) == 1
    assert psys[0].zone_id == "intel-rapl:2"
    assert isinstance(psys[0].domain, RaplPsysDomain)
    assert repr(psys[0].domain) == "psys_2"
    # pyJoules alone (its own RaplDevice on the same tree) sees everything except psys
    with pyjoules_api_dir(fake.root / "intel-rapl"):
        theirs = sorted(repr(d) for d in rapl_device.RaplDevice.available_domains())
    assert theirs == sorted(repr(z.domain) for z in zones if z.component != "psys")


def test_psys_works_with_pyjoules_meters(make_tree):
    """A psys domain can be measured like any pyJoules domain (device configured for it, energy read)."""
    fake = make_tree("package-0=25", psys_watts=40, start_fraction=0.0)
    domain = RaplPsysDomain(1)
    assert domain.get_device_type() is PowercapRaplDevice
    device = PowercapRaplDevice(fake.root)
    device.configure([domain])
    fake.advance(0.5)
    assert device.get_energy() == [20_000_000]


def test_same_files_as_pyjoules(make_tree):
    fake = make_tree("package-0=25,core=15,uncore=1,dram=4", sockets=2)
    with pyjoules_api_dir(fake.root / "intel-rapl"):
        device = rapl_device.RaplDevice()
        device.configure()
        theirs = dict(zip(map(repr, device.get_configured_domains()), device._api_file_names, strict=True))
    ours = {repr(z.domain): str(z.energy_path) for z in discover_zones(fake.root)}
    assert ours == theirs


def test_pyjoules_constant_is_restored(make_tree):
    fake = make_tree()
    before = rapl_device.RAPL_API_DIR
    device = PowercapRaplDevice(fake.root)
    device.configure()
    assert rapl_device.RAPL_API_DIR == before == "/sys/class/powercap/intel-rapl"
    assert len(device.get_energy()) == 3  # still a working pyJoules device


def test_absent_tree_is_an_environment_problem(tmp_path):
    with pytest.raises(EnvironmentProblem) as info:
        discover_zones(tmp_path / "nowhere")
    message = str(info.value)
    assert f"{tmp_path / 'nowhere' / 'intel-rapl'}" in message
    assert "does not exist" in message
    assert "Virtual machines" in message and "POWERCAP_ROOT" in message and "AppArmor" in message


def test_empty_control_directory_is_an_environment_problem(tmp_path):
    # what a container sees when Docker masks the powercap tree with an empty directory
    (tmp_path / "intel-rapl").mkdir()
    with pytest.raises(EnvironmentProblem, match="holds no RAPL zone"):
        discover_zones(tmp_path)


def test_unreadable_max_range_is_tolerated_and_logged(make_tree, caplog):
    fake = make_tree("package-0=25,core=15")
    (fake.zone("core").directory / "max_energy_range_uj").unlink()
    with caplog.at_level(logging.WARNING):
        zones = discover_zones(fake.root)
    assert [z.max_energy_range_uj for z in zones] == [fake.max_range_uj, None]
    assert "cannot be corrected" in caplog.text


def test_zones_pyjoules_cannot_reach_are_reported(make_tree, caplog):
    fake = make_tree("package-0=25,core=15,dram=4")
    # a gap in the sub-zone numbering: pyJoules stops at the first missing index
    shutil.move(str(fake.zone("dram").directory), str(fake.root / "intel-rapl" / "intel-rapl:0" / "intel-rapl:0:5"))
    with caplog.at_level(logging.WARNING):
        zones = discover_zones(fake.root)
    assert [z.zone_id for z in zones] == ["intel-rapl:0", "intel-rapl:0:0"]
    assert "intel-rapl:0:5" in caplog.text and "not monitored" in caplog.text


def test_import_does_not_log_the_pynvml_warning():
    code = "import cpu_pyjoules.rapl_discovery, logging; print(len(logging.getLogger().handlers))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "pynvml" not in done.stderr
    assert done.stdout.strip() == "0"  # and no handler was installed on the root logger
