"""The fake powercap tree: sysfs layout, exact counters, wraps, in-place writes, the thread and the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cpu_pyjoules.fake_powercap import IDLE_SHARE, FakePowercap
from cpu_pyjoules.fake_zones import DEFAULT_MAX_RANGE_UJ, parse_watts
from testkit.fake_rapl import FakeRaplTree
from testkit.wait import wait_until


class ManualClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def read_counter(path: Path) -> int:
    return int(path.read_text())


def test_layout_matches_sysfs(make_tree):
    fake = make_tree("package-0=25,core=15,uncore=2,dram=4")
    api = fake.root / "intel-rapl"
    assert (api / "intel-rapl:0" / "name").read_text() == "package-0\n"
    subzones = {p.name: (p / "name").read_text() for p in sorted((api / "intel-rapl:0").glob("intel-rapl:0:*"))}
    assert subzones == {"intel-rapl:0:0": "core\n", "intel-rapl:0:1": "uncore\n", "intel-rapl:0:2": "dram\n"}
    for zone in fake.zones.values():
        assert (zone.directory / "max_energy_range_uj").read_text() == f"{DEFAULT_MAX_RANGE_UJ}\n"
        assert read_counter(zone.directory / "energy_uj") == DEFAULT_MAX_RANGE_UJ // 2
        # the class directory's symlinks lead to the same zone directory
        assert (fake.root / zone.zone_id).resolve() == zone.directory.resolve()


def test_multi_socket_and_psys(make_tree):
    fake = make_tree("package-0=30,package-1=20,core=10,dram=3", sockets=3, psys_watts=45)
    layout = {z.zone_id: (z.name, z.watts) for z in fake.zones.values()}
    assert layout == {
        "intel-rapl:0": ("package-0", 30),
        "intel-rapl:0:0": ("core", 10),
        "intel-rapl:0:1": ("dram", 3),
        "intel-rapl:1": ("package-1", 20),
        "intel-rapl:1:0": ("core", 10),
        "intel-rapl:1:1": ("dram", 3),
        "intel-rapl:2": ("package-2", 30),  # no package-2 given: package-0's value
        "intel-rapl:2:0": ("core", 10),
        "intel-rapl:2:1": ("dram", 3),
        "intel-rapl:3": ("psys", 45),
    }
    assert (fake.root / "intel-rapl" / "intel-rapl:3" / "name").read_text() == "psys\n"


def test_advance_is_exact_and_wraps(make_tree):
    fake = make_tree("package-0=25,core=15", wrap_joules=10, start_fraction=0.0)
    package = fake.zone("package-0")
    fake.advance(0.2)  # 5 J
    assert read_counter(package.directory / "energy_uj") == 5_000_000
    fake.advance(0.3)  # 12.5 J drawn in all: wrapped once
    assert read_counter(package.directory / "energy_uj") == 2_500_000
    assert package.joules == pytest.approx(12.5)
    core = fake.zone("core")
    assert read_counter(core.directory / "energy_uj") == 7_500_000


def test_counters_are_rewritten_in_place_with_a_fixed_width(make_tree):
    fake = make_tree("package-0=25", wrap_joules=10, start_fraction=0.95)
    path = fake.zone("package-0").directory / "energy_uj"
    inode, size = path.stat().st_ino, path.stat().st_size
    fd = os.open(path, os.O_RDONLY)
    try:
        seen = []
        for _ in range(5):
            fake.advance(0.1)  # 2.5 J per step: wraps on the first step
            seen.append(int(os.pread(fd, 32, 0)))
            assert path.stat().st_ino == inode
            assert path.stat().st_size == size
    finally:
        os.close(fd)
    assert seen == [2_000_000, 4_500_000, 7_000_000, 9_500_000, 2_000_000]


def test_thread_advances_at_the_given_watts(make_tree):
    calls = []

    def clock() -> float:
        calls.append(time.monotonic())
        return calls[-1]

    fake = make_tree("package-0=25,dram=4", wrap_joules=1, clock=clock)
    with fake:
        wait_until(lambda: fake.zone("package-0").joules > 2, timeout=10, message="package drew 2 J")
    elapsed = calls[-1] - calls[0]
    assert fake.zone("package-0").joules == pytest.approx(25 * elapsed, rel=1e-9)
    assert fake.zone("dram").joules == pytest.approx(4 * elapsed, rel=1e-9)


def test_follow_cpu_load_scales_power(make_tree, tmp_path):
    stat = tmp_path / "stat"
    clock = ManualClock()

    def write_stat(busy: int, idle: int) -> None:
        stat.write_text(f"cpu  {busy} 0 0 {idle} 0 0 0 0 0 0\ncpu0 1 2 3 4\n")

    write_stat(0, 0)
    fake = make_tree("package-0=100", follow_cpu_load=True, proc_stat=stat, clock=clock, start_fraction=0.0)
    fake.advance(0)  # first /proc/stat sample
    write_stat(500, 500)  # 50 % busy since then
    clock.now += 1
    fake.advance(1.0)
    assert fake.load_factor == pytest.approx(IDLE_SHARE + (1 - IDLE_SHARE) * 0.5)
    assert fake.zone("package-0").joules == pytest.approx(100 * fake.load_factor)


@pytest.mark.parametrize(
    "spec, reason",
    [
        ("core=15", "needs a package"),
        ("package-0=25,gpu=3", "unknown zone"),
        ("package-0=lots", "must be a number"),
        ("package-0=-1", "between 0"),
        ("package-0", "NAME=WATTS"),
    ],
)
def test_parse_watts_rejects_bad_specs(spec, reason):
    with pytest.raises(ValueError, match=reason):
        parse_watts(spec)


def test_parse_watts_keeps_order():
    assert list(parse_watts("package-0=25, dram=4,core=15")) == ["package-0", "dram", "core"]


def test_one_writer_per_tree(make_tree, tmp_path):
    first = make_tree("package-0=25", root=tmp_path / "shared")
    with pytest.raises(ValueError, match=f"another fake powercap \\(pid {os.getpid()}\\) is already advancing"):
        FakePowercap(tmp_path / "shared", "package-0=30").build()
    first.close()  # released: the tree can be taken over (as a CLI run after an in-process build does)
    second = make_tree("package-0=30", root=tmp_path / "shared")
    assert second.zone("package-0").watts == 30


def test_refuses_to_write_into_sys():
    with pytest.raises(ValueError, match="/sys"):
        FakePowercap("/sys/class/powercap", "package-0=1").build()


def _cli(*args: str) -> list:
    return [sys.executable, "-m", "cpu_pyjoules.fake_powercap", *args]


def test_cli_builds_runs_and_stops_on_sigterm(tmp_path):
    fake = FakeRaplTree(tmp_path / "tree", "package-0=25,core=15,dram=4", tmp_path / "tree.log", wrap_joules=5)
    with fake:  # start() returns once the counters advance
        assert fake.stop(20, must_exit=True) == 0
    err = fake.log_text()
    assert "intel-rapl:0:1   dram" in err
    assert "received SIGTERM" in err and "energy drawn" in err


def test_cli_build_only_and_bad_arguments(tmp_path):
    done = subprocess.run(
        _cli(str(tmp_path / "t"), "--build-only", "--psys", "12"), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "t" / "intel-rapl" / "intel-rapl:1" / "name").read_text() == "psys\n"
    bad = subprocess.run(_cli(str(tmp_path / "u"), "--watts", "gpu=3"), capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    assert "unknown zone 'gpu'" in bad.stderr
