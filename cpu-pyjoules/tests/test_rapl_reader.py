"""The open-file reader: same values as pyJoules on the same tree, and clear errors when it cannot read.

Tests run as root, for whom ``chmod 000`` changes nothing, so "unreadable" is simulated the two ways a
real unreadable counter shows up to the reader: a path that opens but cannot be read (a directory where
``energy_uj`` should be: ``open`` succeeds, ``pread`` fails with EISDIR) and an ``open`` that fails with
EACCES (an injected opener raising the PermissionError a non-root process gets since the PLATYPUS fix).
"""

from __future__ import annotations

import errno
import os

import pytest
from pyJoules.device import rapl_device

from cpu_pyjoules.rapl_discovery import discover_zones, pyjoules_api_dir
from cpu_pyjoules.rapl_reader import CounterGlitch, RaplReader
from monitoring_client.errors import EnvironmentProblem


def pyjoules_reading(root):
    """What pyJoules's own, unmodified RaplDevice reads from the tree, keyed by energy_uj path."""
    with pyjoules_api_dir(root / "intel-rapl"):
        device = rapl_device.RaplDevice()
        device.configure()
        paths = list(device._api_file_names)
    return dict(zip(paths, device.get_energy(), strict=True))  # get_energy opens the same absolute paths


@pytest.mark.parametrize("sockets", [1, 2])
def test_reads_what_pyjoules_reads(make_tree, sockets):
    fake = make_tree("package-0=25,core=15,uncore=2,dram=4", sockets=sockets, wrap_joules=7)
    zones = discover_zones(fake.root)
    with RaplReader([z.energy_path for z in zones]) as reader:
        for _ in range(12):  # 0.37 s steps at 25 W: the package wraps several times on the way
            ours = dict(zip((str(z.energy_path) for z in zones), reader.read(), strict=True))
            assert ours == pyjoules_reading(fake.root)
            assert all(isinstance(v, int) for v in ours.values())
            fake.advance(0.37)
    assert fake.zone("package-0" if sockets == 1 else "intel-rapl:0").joules > 7 * 10


def test_open_descriptor_follows_in_place_updates(make_tree):
    fake = make_tree("package-0=25", start_fraction=0.0)
    with RaplReader([fake.zone("package-0").directory / "energy_uj"]) as reader:
        assert reader.read() == [0]
        fake.advance(1.0)
        assert reader.read() == [25_000_000]


def test_directory_instead_of_counter_is_reported_with_its_path(make_tree):
    fake = make_tree("package-0=25,core=15")
    counter = fake.zone("core").directory / "energy_uj"
    counter.unlink()
    counter.mkdir()
    with pytest.raises(EnvironmentProblem) as info:
        RaplReader([z.directory / "energy_uj" for z in fake.zones.values()])
    message = str(info.value)
    assert str(counter) in message
    assert "Is a directory" in message


def test_permission_denied_explains_platypus(make_tree):
    fake = make_tree("package-0=25")
    path = fake.zone("package-0").directory / "energy_uj"

    def denied(p, flags):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), p)

    with pytest.raises(EnvironmentProblem) as info:
        RaplReader([path], opener=denied)
    message = str(info.value)
    assert str(path) in message and "Permission denied" in message
    assert "PLATYPUS" in message and "root" in message and "AppArmor" in message and "privileged" in message
    assert "\n" not in message  # one paragraph


def test_missing_counter_file(make_tree):
    fake = make_tree("package-0=25")
    path = fake.zone("package-0").directory / "energy_uj"
    path.unlink()
    with pytest.raises(EnvironmentProblem, match="No such file"):
        RaplReader([path])


def test_counter_that_disappears_while_running_is_an_environment_problem(make_tree):
    fake = make_tree("package-0=25,dram=3")
    dram = fake.zone("dram").directory / "energy_uj"
    opened = []

    def opener(p, flags):
        fd = os.open(p, flags)
        opened.append(fd)
        return fd

    with RaplReader([z.directory / "energy_uj" for z in fake.zones.values()], opener=opener) as reader:
        # the dram descriptor now refers to a directory, as if the file had turned unreadable: EISDIR
        fd_dir = os.open(fake.root, os.O_RDONLY)
        os.dup2(fd_dir, opened[1])
        os.close(fd_dir)
        with pytest.raises(EnvironmentProblem) as info:
            reader.read()
    assert str(dram) in str(info.value)
    assert "Is a directory" in str(info.value)


def test_garbage_text_is_a_glitch_not_a_crash(make_tree):
    fake = make_tree("package-0=25")
    path = fake.zone("package-0").directory / "energy_uj"
    with RaplReader([path]) as reader:
        path.write_text("12x4\n")
        with pytest.raises(CounterGlitch):
            reader.read()


def test_non_numeric_counter_at_start_is_an_environment_problem(make_tree):
    fake = make_tree("package-0=25")
    path = fake.zone("package-0").directory / "energy_uj"
    path.write_text("not a counter\n")
    with pytest.raises(EnvironmentProblem, match="does not hold an energy counter"):
        RaplReader([path])


def test_close_releases_descriptors(make_tree):
    fake = make_tree("package-0=25,core=1")
    before = len(os.listdir("/proc/self/fd"))
    reader = RaplReader([z.directory / "energy_uj" for z in fake.zones.values()])
    assert len(os.listdir("/proc/self/fd")) == before + 2
    reader.close()
    assert len(os.listdir("/proc/self/fd")) == before
