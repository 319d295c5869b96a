"""cpu-pyjoules through the real ``monitoring-client`` command: exit statuses and messages people see.

Tests run as root, and root reads even a mode 0000 file, so "unreadable" is produced two ways: a directory
where ``energy_uj`` should be (it opens but cannot be read), and, where ``setpriv`` is available, the client
run as the unprivileged user ``nobody`` on a tree whose counters are mode 0400 root, exactly what a
non-root process meets on a real host since the PLATYPUS fix.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

IMPL = Path(__file__).resolve().parents[1] / "monitor_impl.py"


def run_client(tmp_path: Path, *args: str, prefix: tuple = (), **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("POWERCAP_ROOT", "METRIC_PREFIX", "MAX_ZONE_POWER_W")}
    environ.update(
        MONITOR_IMPL=str(IMPL),
        REMOTE_WRITE_URL="http://127.0.0.1:9/api/v1/write",  # never reached in these tests
        HOST_LABEL="test-host",
    )
    environ.update(env)
    return subprocess.run(
        [*prefix, sys.executable, "-m", "monitoring_client", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=environ,
        cwd=tmp_path,
    )


def assert_environment_problem(done: subprocess.CompletedProcess, *needles: str) -> None:
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    paragraph = done.stderr.strip().splitlines()[-1]  # the message is one paragraph on one line
    for needle in needles:
        assert needle in paragraph


def test_absent_tree_exits_3_with_the_path_and_fixes(tmp_path):
    root = tmp_path / "no-powercap"
    done = run_client(tmp_path, POWERCAP_ROOT=str(root))
    assert_environment_problem(
        done,
        f"{root}/intel-rapl",
        "Virtual machines",
        "modprobe intel_rapl_msr",
        "AppArmor",
        "privileged",
        "POWERCAP_ROOT",
    )


def test_masked_tree_exits_3(tmp_path):
    (tmp_path / "masked" / "intel-rapl").mkdir(parents=True)  # what Docker's masking leaves: an empty dir
    done = run_client(tmp_path, POWERCAP_ROOT=str(tmp_path / "masked"))
    assert_environment_problem(done, "holds no RAPL zone")


def test_unreadable_counter_exits_3_naming_the_file(make_tree, tmp_path):
    fake = make_tree("package-0=25,core=15")
    counter = fake.zone("core").directory / "energy_uj"
    counter.unlink()
    counter.mkdir()
    done = run_client(tmp_path, POWERCAP_ROOT=str(fake.root))
    assert_environment_problem(done, str(counter), "PLATYPUS", "root", "AppArmor", "privileged")


def test_bad_setting_exits_2_with_one_line(make_tree, tmp_path):
    fake = make_tree()
    done = run_client(tmp_path, POWERCAP_ROOT=str(fake.root), MAX_ZONE_POWER_W="a lot")
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().startswith("MAX_ZONE_POWER_W='a lot' is invalid: expected a number")
    assert len(done.stderr.strip().splitlines()) == 1


def test_check_passes_on_a_readable_tree(make_tree, tmp_path):
    fake = make_tree("package-0=25,core=15,dram=4", psys_watts=10)
    done = run_client(tmp_path, "--check", POWERCAP_ROOT=str(fake.root))
    assert done.returncode == 0, done.stderr
    assert "configuration OK" in done.stdout


NOBODY = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")


def test_root_only_counter_read_by_an_unprivileged_user_exits_3(make_tree, tmpfs_path):
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run the client as an unprivileged user")
    probe = subprocess.run([*NOBODY, sys.executable, "-c", "import cpu_pyjoules"], capture_output=True, timeout=60)
    if probe.returncode != 0:
        pytest.skip(f"the unprivileged user cannot run this interpreter: {probe.stderr[-200:]!r}")
    tmpfs_path.chmod(0o755)
    fake = make_tree("package-0=25,core=15", root=tmpfs_path / "powercap")
    for zone in fake.zones.values():
        (zone.directory / "energy_uj").chmod(0o400)  # as on a host since the PLATYPUS fix
    counter = fake.zone("package-0").directory / "energy_uj"
    done = run_client(tmpfs_path, prefix=NOBODY, POWERCAP_ROOT=str(fake.root))
    assert_environment_problem(done, str(counter), "Permission denied", "PLATYPUS", "uid 0")
