"""docker-compose_helper.sh without Docker: configuration parsing, mode files, checks and pass-through.

The real helper runs from a copy of the stack files in a temporary directory (it works relative to its own
location), with fake `docker` / `docker-compose` programs first on PATH that record how they were called and
which environment they saw. Nothing here needs a daemon; the end-to-end test runs the same helper for real.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from jetson_ina3221.fake_sysfs import FakeJetson

ROOT = Path(__file__).resolve().parents[2]
HELPER = "docker-compose_helper.sh"
STACK_FILES = [HELPER, ".env", "docker-compose.yml", "docker-compose.privileged.yml", "docker-compose.apparmor.yml"]

# A stand-in for the docker CLI and docker-compose: appends one JSON line per call to $FAKE_LOG with its
# argv and the variables the stack cares about. `docker info` fails when FAKE_DOCKER_DOWN=1 and lists the
# nvidia runtime when FAKE_NVIDIA_RUNTIME=1; `docker compose` exists only when FAKE_COMPOSE_V2=1;
# `docker image inspect` succeeds only when FAKE_BASE_IMAGE_PRESENT=1.
FAKE_TOOL = r"""#!/usr/bin/env python3
import json, os, sys
name = os.path.basename(sys.argv[0])
args = sys.argv[1:]
keys = ["UID", "GID", "HOST_LABEL", "GF_SECURITY_ADMIN_PASSWORD", "POWERCAP_HOST_DIR", "SPACED", "DQ", "SQ",
        "EXPORTED", "EMPTY", "CRLF", "HASHED", "ESCAPED", "FROM_LOCAL", "FROM_ENV", "PRIVILEGED", "RAPL_ACCESS",
        "COMPOSE_PROFILES", "JETSON_SYSFS_HOST_DIR"]
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps({"tool": name, "args": args, "env": {k: os.environ.get(k) for k in keys}}) + "\n")
if args[-2:] == ["version", "--short"]:
    print(os.environ.get("FAKE_COMPOSE_VERSION", "2.40.3" if name == "docker" else "1.29.2"))
if name == "docker":
    if args[:1] == ["info"]:
        if "{{json .Runtimes}}" in args:
            runc = {"runc": {"path": "runc"}}
            print(json.dumps({**runc, "nvidia": {"path": "nvidia-container-runtime"}}
                             if os.environ.get("FAKE_NVIDIA_RUNTIME") == "1" else runc))
        sys.exit(1 if os.environ.get("FAKE_DOCKER_DOWN") == "1" else 0)
    if args[:1] == ["compose"]:
        sys.exit(0 if os.environ.get("FAKE_COMPOSE_V2") == "1" else 1)
    if args[:2] == ["image", "inspect"]:
        sys.exit(0 if os.environ.get("FAKE_BASE_IMAGE_PRESENT") == "1" else 1)
sys.exit(0)
"""


# `uname -m` answers $FAKE_ARCH when set (an arm64 host), the real machine's otherwise.
FAKE_UNAME = """#!/bin/sh
if [ "$1" = -m ] && [ -n "$FAKE_ARCH" ]; then echo "$FAKE_ARCH"; else exec /bin/uname "$@"; fi
"""


class Stack:
    """A copy of the stack files plus fake tools; ``run()`` invokes the copied helper.

    The host it shows the helper has RAPL (a one-zone powercap tree), no NVIDIA GPU (an empty driver list)
    and no Jetson rails (an empty sysfs); tests add hardware with ``gpu()`` and ``jetson()``.
    """

    def __init__(self, root: Path) -> None:
        self.dir = root / "stack"
        self.dir.mkdir()
        for name in STACK_FILES:
            shutil.copy2(ROOT / name, self.dir / name)
        bin_dir = root / "bin"
        bin_dir.mkdir()
        for tool, text in (("docker", FAKE_TOOL), ("docker-compose", FAKE_TOOL), ("uname", FAKE_UNAME)):
            path = bin_dir / tool
            path.write_text(text)
            path.chmod(0o755)
        self.log = root / "calls.jsonl"
        self.rapl = root / "powercap"
        zone = self.rapl / "intel-rapl" / "intel-rapl:0"
        zone.mkdir(parents=True)
        (zone / "name").write_text("package-0\n")
        (zone / "energy_uj").write_text("0\n")
        self.gpus = root / "nvidia-gpus"
        self.gpus.mkdir()
        self.sysfs = root / "sys"
        self.sysfs.mkdir()
        self.env = {
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "HOME": str(root),
            "FAKE_LOG": str(self.log),
            "POWERCAP_HOST_DIR": str(self.rapl),
            "HELPER_NVIDIA_GPUS": str(self.gpus),
            "JETSON_SYSFS_HOST_DIR": str(self.sysfs),
            "GF_SECURITY_ADMIN_PASSWORD": "test-password-not-secret",
        }

    def gpu(self) -> None:
        """An NVIDIA GPU as the driver lists it (one directory per PCI address)."""
        (self.gpus / "0000:01:00.0").mkdir()

    def jetson(self, board: str = "orin-nx") -> None:
        """The INA3221 rails of a Jetson board in the sysfs the helper looks at (a real fake tree)."""
        FakeJetson(self.sysfs, board).build()

    def run(
        self, *args: str, env: dict[str, str] | None = None, unset: tuple[str, ...] = ()
    ) -> subprocess.CompletedProcess[str]:
        full_env = {**self.env, **(env or {})}
        for key in unset:
            full_env.pop(key, None)
        return subprocess.run(
            ["bash", str(self.dir / HELPER), *args], env=full_env, capture_output=True, text=True, timeout=60
        )

    def calls(self, tool: str | None = None) -> list[dict]:
        if not self.log.exists():
            return []
        entries = [json.loads(line) for line in self.log.read_text().splitlines()]
        return [e for e in entries if tool is None or e["tool"] == tool]

    def compose_calls(self) -> list[dict]:
        """Compose invocations that do work (not the helper's own version probes)."""
        calls = [c for c in self.calls() if c["tool"] == "docker-compose" or c["args"][:1] == ["compose"]]
        return [c for c in calls if "version" not in c["args"][:2]]


@pytest.fixture
def stack(tmp_path: Path) -> Stack:
    return Stack(tmp_path)


def test_help_explains_usage_modes_and_checks(stack: Stack) -> None:
    for flag in ("--help", "-h"):
        proc = stack.run(flag)
        assert proc.returncode == 0, proc.stderr
        for words in ("up -d --build", "RAPL_ACCESS", "PRIVILEGED", "apparmor", "privileged", "Grafana admin password"):
            assert words in proc.stdout
    assert stack.calls() == []  # --help runs nothing


def test_no_command_prints_usage_and_fails(stack: Stack) -> None:
    proc = stack.run()
    assert proc.returncode == 2
    assert "Usage:" in proc.stderr


def test_env_file_parsing_handles_comments_quotes_spaces_and_readonly_uid(stack: Stack) -> None:
    (stack.dir / ".env").write_text(
        "# a comment line\n"
        "\n"
        "   # an indented comment\n"
        "UID=1234\n"
        "GID = 5678\n"
        "SPACED =  value with spaces   \n"
        'DQ="double # not a comment"  # trailing comment\n'
        "SQ='single $HOME \"kept\"'\n"
        "export EXPORTED=yes\n"
        "EMPTY=\n"
        "CRLF=windows\r\n"
        "HASHED=abc # comment after a space\n"
        'ESCAPED="say \\"hi\\""\n'
        "POWERCAP_HOST_DIR=/from/env/file\n"
    )
    proc = stack.run("config", unset=("POWERCAP_HOST_DIR",))
    assert proc.returncode == 0, proc.stderr
    (call,) = stack.compose_calls()
    env = call["env"]
    assert env["UID"] == "1234" and env["GID"] == "5678"
    assert env["SPACED"] == "value with spaces"
    assert env["DQ"] == "double # not a comment"
    assert env["SQ"] == 'single $HOME "kept"'
    assert env["EXPORTED"] == "yes"
    assert env["EMPTY"] == ""
    assert env["CRLF"] == "windows"
    assert env["HASHED"] == "abc"
    assert env["ESCAPED"] == 'say "hi"'
    assert env["POWERCAP_HOST_DIR"] == "/from/env/file"


def test_env_file_errors_name_file_and_line(stack: Stack) -> None:
    (stack.dir / ".env").write_text("GOOD=1\nthis line has no equals sign\n")
    proc = stack.run("config")
    assert proc.returncode == 2
    assert ".env:2" in proc.stderr and "KEY=VALUE" in proc.stderr
    (stack.dir / ".env").write_text('BROKEN="no closing quote\n')
    proc = stack.run("config")
    assert proc.returncode == 2 and "unterminated double quote" in proc.stderr
    assert stack.compose_calls() == []


def test_precedence_env_over_env_local_over_env_file(stack: Stack) -> None:
    (stack.dir / ".env").write_text("FROM_LOCAL=file\nFROM_ENV=file\nSPACED=file\n")
    (stack.dir / ".env.local").write_text("FROM_LOCAL=local\nFROM_ENV=local\n")
    proc = stack.run("config", env={"FROM_ENV": "environment"})
    assert proc.returncode == 0, proc.stderr
    env = stack.compose_calls()[0]["env"]
    assert (env["SPACED"], env["FROM_LOCAL"], env["FROM_ENV"]) == ("file", "local", "environment")


@pytest.mark.parametrize(
    "settings, extra_file",
    [
        ({}, None),
        ({"PRIVILEGED": "False"}, None),
        ({"PRIVILEGED": "0"}, None),
        ({"PRIVILEGED": "True"}, "docker-compose.privileged.yml"),
        ({"PRIVILEGED": "true"}, "docker-compose.privileged.yml"),
        ({"PRIVILEGED": "1"}, "docker-compose.privileged.yml"),
        ({"PRIVILEGED": "yes"}, "docker-compose.privileged.yml"),
        ({"RAPL_ACCESS": "privileged"}, "docker-compose.privileged.yml"),
        ({"RAPL_ACCESS": "apparmor"}, "docker-compose.apparmor.yml"),
        ({"RAPL_ACCESS": "apparmor", "PRIVILEGED": "TRUE"}, "docker-compose.privileged.yml"),
    ],
)
def test_mode_selects_compose_files(stack: Stack, settings: dict[str, str], extra_file: str | None) -> None:
    proc = stack.run("config", "-q", env=settings)
    assert proc.returncode == 0, proc.stderr
    (call,) = stack.compose_calls()
    expected = ["-f", "docker-compose.yml"] + (["-f", extra_file] if extra_file else []) + ["config", "-q"]
    assert call["args"] == expected


def test_invalid_mode_is_refused(stack: Stack) -> None:
    proc = stack.run("config", env={"RAPL_ACCESS": "sideways"})
    assert proc.returncode == 2
    assert "RAPL_ACCESS='sideways' is invalid" in proc.stderr
    assert stack.compose_calls() == []


def test_other_commands_pass_through_unchanged_and_see_every_client(stack: Stack) -> None:
    args = ["logs", "-f", "--tail", "10", "cpu-pyjoules", "--weird arg"]
    proc = stack.run(*args)
    assert proc.returncode == 0, proc.stderr
    (call,) = stack.compose_calls()
    assert call["args"] == ["-f", "docker-compose.yml", *args]
    assert call["env"]["COMPOSE_PROFILES"] == "cpu,gpu,jetson"  # so that down, ps and logs cover them all
    assert not any(c["args"][:1] == ["info"] for c in stack.calls("docker"))  # checks only before `up`


def test_compose_v2_preferred_when_available(stack: Stack) -> None:
    proc = stack.run("ps", env={"FAKE_COMPOSE_V2": "1"})
    assert proc.returncode == 0, proc.stderr
    assert stack.calls("docker-compose") == []
    assert ["compose", "-f", "docker-compose.yml", "ps"] in [c["args"] for c in stack.calls("docker")]


def test_extra_compose_files_are_appended(stack: Stack, tmp_path: Path) -> None:
    extra = tmp_path / "override.yml"
    extra.write_text("services: {}\n")
    proc = stack.run("config", env={"EXTRA_COMPOSE_FILES": str(extra), "PRIVILEGED": "true"})
    assert proc.returncode == 0, proc.stderr
    assert stack.compose_calls()[0]["args"] == [
        "-f",
        "docker-compose.yml",
        "-f",
        "docker-compose.privileged.yml",
        "-f",
        str(extra),
        "config",
    ]
    proc = stack.run("config", env={"EXTRA_COMPOSE_FILES": str(tmp_path / "missing.yml")})
    assert proc.returncode == 2 and "missing.yml" in proc.stderr


def test_up_builds_the_base_image_first_and_passes_hostname(stack: Stack) -> None:
    proc = stack.run("up", "-d", "--build")
    assert proc.returncode == 0, proc.stderr
    calls = stack.compose_calls()
    assert [c["args"] for c in calls] == [
        ["-f", "docker-compose.yml", "build", "base-monitoring-client"],
        ["-f", "docker-compose.yml", "up", "-d", "--build"],
    ]
    hostname = subprocess.run(["hostname"], capture_output=True, text=True, check=True).stdout.strip()
    assert calls[-1]["env"]["HOST_LABEL"] == hostname
    assert calls[-1]["env"]["COMPOSE_PROFILES"] == "cpu"  # this host has RAPL only
    assert calls[-1]["env"]["GF_SECURITY_ADMIN_PASSWORD"] == "test-password-not-secret"


def test_up_without_build_skips_prebuild_when_base_image_exists(stack: Stack) -> None:
    proc = stack.run("up", "-d", env={"FAKE_BASE_IMAGE_PRESENT": "1", "HOST_LABEL": "lab-node-7"})
    assert proc.returncode == 0, proc.stderr
    (call,) = stack.compose_calls()
    assert call["args"] == ["-f", "docker-compose.yml", "up", "-d"]
    assert call["env"]["HOST_LABEL"] == "lab-node-7"


def test_up_refuses_when_docker_is_unreachable(stack: Stack) -> None:
    proc = stack.run("up", "-d", env={"FAKE_DOCKER_DOWN": "1"})
    assert proc.returncode == 3
    assert "Docker daemon not reachable" in proc.stderr
    assert stack.compose_calls() == []


@pytest.mark.parametrize("board", ["orin-nx", "xavier-nx"])  # hwmon (JetPack 6) and iio (JetPack 4) layouts
def test_up_starts_every_client_whose_hardware_the_host_has(stack: Stack, board: str) -> None:
    stack.gpu()
    stack.jetson(board)
    proc = stack.run("up", "-d", env={"FAKE_NVIDIA_RUNTIME": "1", "FAKE_BASE_IMAGE_PRESENT": "1"})
    assert proc.returncode == 0, proc.stderr
    assert "not starting" not in proc.stderr
    assert "device clients for this host: cpu-pyjoules gpu-nvml jetson-ina3221" in proc.stderr
    (call,) = stack.compose_calls()
    assert call["args"] == ["-f", "docker-compose.yml", "up", "-d"]
    assert call["env"]["COMPOSE_PROFILES"] == "cpu,gpu,jetson"


def skipped(proc: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """The helper's "not starting" lines: client -> why."""
    prefix = f"{HELPER}: not starting "
    lines = [line[len(prefix) :] for line in proc.stderr.splitlines() if line.startswith(prefix)]
    return dict(line.split(": ", 1) for line in lines)


def test_up_on_a_host_without_any_device_starts_the_server_side_and_says_why_once_each(
    stack: Stack, tmp_path: Path
) -> None:
    empty = tmp_path / "no-rapl"
    empty.mkdir()
    proc = stack.run("up", "-d", "--build", env={"POWERCAP_HOST_DIR": str(empty)})
    assert proc.returncode == 0, proc.stderr  # no longer refused: it starts what it can
    why = skipped(proc)
    assert list(why) == ["cpu-pyjoules", "gpu-nvml", "jetson-ina3221"]
    assert (
        why["cpu-pyjoules"].startswith(f"No RAPL zones under {empty}")
        and "modprobe intel_rapl_msr" in why["cpu-pyjoules"]
    )
    assert why["gpu-nvml"] == f"no NVIDIA GPU: the NVIDIA driver lists none ({stack.gpus})"
    assert why["jetson-ina3221"].startswith(f"no INA3221 power monitor under {stack.sysfs}/bus/i2c/drivers/")
    (call,) = stack.compose_calls()  # no base image build: no client to build
    assert call["args"][-3:] == ["up", "-d", "--build"] and call["env"]["COMPOSE_PROFILES"] == ""


def test_a_gpu_without_the_container_toolkit_is_skipped_naming_the_toolkit(stack: Stack) -> None:
    stack.gpu()
    proc = stack.run("up", "-d")
    assert proc.returncode == 0, proc.stderr
    assert "NVIDIA Container Toolkit" in skipped(proc)["gpu-nvml"]
    assert stack.compose_calls()[-1]["env"]["COMPOSE_PROFILES"] == "cpu"


def test_cpu_client_is_skipped_on_arm64_even_with_a_powercap_tree(stack: Stack) -> None:
    stack.jetson("agx-orin")
    proc = stack.run("up", "-d", env={"FAKE_ARCH": "aarch64"})
    assert proc.returncode == 0, proc.stderr
    assert skipped(proc)["cpu-pyjoules"] == "RAPL energy counters exist on x86 CPUs only, and this host is aarch64"
    assert stack.compose_calls()[-1]["env"]["COMPOSE_PROFILES"] == "jetson"


def test_a_client_named_without_its_hardware_is_refused_and_says_why(stack: Stack, tmp_path: Path) -> None:
    empty = tmp_path / "no-rapl"
    empty.mkdir()
    proc = stack.run("up", "-d", "cpu-pyjoules", "gpu-nvml", env={"POWERCAP_HOST_DIR": str(empty)})
    assert proc.returncode == 3
    assert f"cpu-pyjoules cannot run on this host: No RAPL zones under {empty}" in proc.stderr
    assert "modprobe intel_rapl_msr" in proc.stderr and "gpu-nvml cannot run on this host: no NVIDIA GPU" in proc.stderr
    assert stack.compose_calls() == []
    stack.jetson()
    proc = stack.run("up", "-d", "jetson-ina3221", env={"POWERCAP_HOST_DIR": str(empty)})
    assert proc.returncode == 0, proc.stderr
    assert stack.compose_calls()[-1]["args"][-3:] == ["up", "-d", "jetson-ina3221"]


def test_profiles_of_the_users_own_choice_are_kept(stack: Stack) -> None:
    proc = stack.run("up", "-d", env={"COMPOSE_PROFILES": "gpu"})
    assert proc.returncode == 0, proc.stderr
    assert "COMPOSE_PROFILES=gpu is set: starting what it names, hardware not checked" in proc.stderr
    assert stack.compose_calls()[-1]["env"]["COMPOSE_PROFILES"] == "gpu"


def test_server_only_up_does_not_need_rapl(stack: Stack, tmp_path: Path) -> None:
    empty = tmp_path / "no-rapl"
    empty.mkdir()
    proc = stack.run("up", "-d", "prometheus", "grafana", env={"POWERCAP_HOST_DIR": str(empty)})
    assert proc.returncode == 0, proc.stderr
    assert "not starting" not in proc.stderr
    (call,) = stack.compose_calls()  # and no base build: the client is not started
    assert call["args"][-4:] == ["up", "-d", "prometheus", "grafana"]


def test_all_problems_are_reported_together(stack: Stack, tmp_path: Path) -> None:
    empty = tmp_path / "no-rapl"
    empty.mkdir()
    proc = stack.run("up", "-d", "cpu-pyjoules", env={"POWERCAP_HOST_DIR": str(empty), "FAKE_DOCKER_DOWN": "1"})
    assert proc.returncode == 3
    assert "Docker daemon not reachable" in proc.stderr and "No RAPL zones" in proc.stderr


def test_apparmor_mode_checks_apparmor_and_compose_version(stack: Stack) -> None:
    proc = stack.run("up", "-d", "cpu-pyjoules", env={"RAPL_ACCESS": "apparmor"})
    # Outside mount mode the client reads the host's /sys/class/powercap; this machine's real state decides.
    enabled = Path("/sys/module/apparmor/parameters/enabled")
    apparmor_on = enabled.exists() and enabled.read_text().strip() == "Y"
    host_rapl = any(Path("/sys/class/powercap/intel-rapl").glob("intel-rapl:*/energy_uj"))
    assert proc.returncode == 3
    if not host_rapl:
        assert "No RAPL zones under /sys/class/powercap" in proc.stderr
    if apparmor_on:
        assert "docker-compose v1 rejects" in proc.stderr  # the fake offers only v1 here
    else:
        assert "AppArmor is not enabled" in proc.stderr and "RAPL_ACCESS=mount" in proc.stderr


def test_missing_grafana_password_is_generated_once_into_private_file(stack: Stack) -> None:
    proc = stack.run("up", "-d", unset=("GF_SECURITY_ADMIN_PASSWORD",))
    assert proc.returncode == 0, proc.stderr
    local = stack.dir / ".env.local"
    assert str(local) in proc.stderr and "mode 600" in proc.stderr
    assert stat.S_IMODE(local.stat().st_mode) == 0o600
    lines = [line for line in local.read_text().splitlines() if line.startswith("GF_SECURITY_ADMIN_PASSWORD=")]
    assert len(lines) == 1
    password = lines[0].split("=", 1)[1]
    assert len(password) >= 20 and password.isalnum()
    assert stack.compose_calls()[-1]["env"]["GF_SECURITY_ADMIN_PASSWORD"] == password

    # The next start reuses it and writes nothing new.
    before = local.read_text()
    proc = stack.run("up", "-d", unset=("GF_SECURITY_ADMIN_PASSWORD",))
    assert proc.returncode == 0, proc.stderr
    assert "generated" not in proc.stderr
    assert local.read_text() == before
    assert stack.compose_calls()[-1]["env"]["GF_SECURITY_ADMIN_PASSWORD"] == password


def test_print_command_shows_the_plan_and_writes_nothing(stack: Stack) -> None:
    proc = stack.run("--print-command", "up", "-d", "--build", unset=("GF_SECURITY_ADMIN_PASSWORD",))
    assert proc.returncode == 0, proc.stderr
    assert "would generate a Grafana password" in proc.stdout
    assert "# mode: mount" in proc.stdout
    assert "# profiles: COMPOSE_PROFILES=cpu" in proc.stdout
    assert "docker-compose -f docker-compose.yml up -d --build" in proc.stdout
    assert "build base-monitoring-client" in proc.stdout
    assert not (stack.dir / ".env.local").exists()
    assert stack.compose_calls() == []


def test_helper_is_executable_and_bash_syntax_is_valid() -> None:
    assert os.access(ROOT / HELPER, os.X_OK)
    subprocess.run(["bash", "-n", str(ROOT / HELPER)], check=True)
