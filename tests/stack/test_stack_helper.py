"""docker-compose_helper.sh without Docker: configuration parsing, roles, mode files, the protected server's
secrets, client credentials, checks and pass-through (the helper runs with fake tools: stack_helper_fakes)."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from .stack_helper_fakes import HELPER
from .stack_helper_fakes import HelperStack as Stack
from .stack_yaml import load_yaml


@pytest.fixture
def stack(tmp_path: Path) -> Stack:
    return Stack(tmp_path)


ROOT = Path(__file__).resolve().parents[2]


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
    # So that down, ps and logs cover them all (and the server: all-in-one is the default role).
    assert call["env"]["COMPOSE_PROFILES"] == "server,cpu,gpu,jetson"
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
    assert calls[-1]["env"]["COMPOSE_PROFILES"] == "server,cpu"  # this host has RAPL only
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
    assert call["env"]["COMPOSE_PROFILES"] == "server,cpu,gpu,jetson"


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
    assert call["args"][-3:] == ["up", "-d", "--build"] and call["env"]["COMPOSE_PROFILES"] == "server"


def test_a_gpu_without_the_container_toolkit_is_skipped_naming_the_toolkit(stack: Stack) -> None:
    stack.gpu()
    proc = stack.run("up", "-d")
    assert proc.returncode == 0, proc.stderr
    assert "NVIDIA Container Toolkit" in skipped(proc)["gpu-nvml"]
    assert stack.compose_calls()[-1]["env"]["COMPOSE_PROFILES"] == "server,cpu"


def test_cpu_client_is_skipped_on_arm64_even_with_a_powercap_tree(stack: Stack) -> None:
    stack.jetson("agx-orin")
    proc = stack.run("up", "-d", env={"FAKE_ARCH": "aarch64"})
    assert proc.returncode == 0, proc.stderr
    assert skipped(proc)["cpu-pyjoules"] == "RAPL energy counters exist on x86 CPUs only, and this host is aarch64"
    assert stack.compose_calls()[-1]["env"]["COMPOSE_PROFILES"] == "server,jetson"


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
    assert stack.compose_calls()[-1]["env"]["COMPOSE_PROFILES"] == "server,gpu"  # the role adds its server


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
    assert "# profiles: COMPOSE_PROFILES=server,cpu" in proc.stdout
    assert "docker-compose -f docker-compose.yml up -d --build" in proc.stdout
    assert "build base-monitoring-client" in proc.stdout
    assert not (stack.dir / ".env.local").exists()
    assert stack.compose_calls() == []


def test_helper_is_executable_and_bash_syntax_is_valid() -> None:
    assert os.access(ROOT / HELPER, os.X_OK)
    subprocess.run(["bash", "-n", str(ROOT / HELPER)], check=True)


# --- .env parsing: hostile and odd files ------------------------------------------------------------------


def test_byte_order_mark_is_stripped(stack: Stack) -> None:
    (stack.dir / ".env.local").write_bytes("\ufeffFROM_LOCAL=bom-file\n".encode())
    proc = stack.run("config")
    assert proc.returncode == 0, proc.stderr
    assert stack.compose_calls()[0]["env"]["FROM_LOCAL"] == "bom-file"


@pytest.mark.parametrize(
    "line, words",
    [
        ("PASSWORD hunter2-secret", ['no "=" on this line', "KEY=VALUE"]),
        ("hunter2-secret", ['no "=" on this line']),
        ("MY PASSWORD=hunter2-secret", ['"MY PASSWORD" is not a valid variable name']),
        ('TOKEN="hunter2-secret', ["unterminated double quote in the value of TOKEN"]),
        ("TOKEN='hunter2-secret", ["unterminated single quote in the value of TOKEN"]),
    ],
)
def test_bad_lines_name_the_line_and_never_show_the_value(stack: Stack, line: str, words: list[str]) -> None:
    (stack.dir / ".env.local").write_text("# first\nGOOD=1\n" + line + "\n")
    proc = stack.run("config")
    assert proc.returncode == 2
    assert f"{stack.dir / '.env.local'}:3:" in proc.stderr
    for word in words:
        assert word in proc.stderr
    assert "hunter2" not in proc.stderr + proc.stdout
    assert len(proc.stderr.strip().splitlines()) == 1
    assert stack.compose_calls() == []


def test_megabyte_lines_are_parsed_and_an_oversized_value_is_refused_by_name(stack: Stack) -> None:
    """Parsing is one linear pass: lines of several MB go through (the timeout is only a hang guard: the
    quadratic parser took minutes here), and a value too long for the environment is named, not shown."""
    big = "x" * 4_000_000
    (stack.dir / ".env.local").write_text(f"# {big}\nFROM_LOCAL=after-the-comment\n")
    proc = stack.run("config")
    assert proc.returncode == 0, proc.stderr[:500]
    assert stack.compose_calls()[0]["env"]["FROM_LOCAL"] == "after-the-comment"
    (stack.dir / ".env.local").write_text(f'FIRST=1\nBIG="{big}"\n')
    proc = stack.run("config")
    assert proc.returncode == 2
    assert ".env.local:2: the value of BIG is 4000000 bytes long" in proc.stderr
    assert "xxxx" not in proc.stderr
    fits = "y" * 60_000 + " trailing spaces and a comment follow"
    (stack.dir / ".env.local").write_text(f"BIG =   {fits}{' ' * 200_000}# comment\r\n")
    proc = stack.run("config")
    assert proc.returncode == 0, proc.stderr[:500]
    assert stack.compose_calls()[-1]["env"]["BIG"] == fits


# --- roles ---------------------------------------------------------------------------------------------


def test_role_selects_the_compose_profiles(stack: Stack) -> None:
    for role, profiles in (("all-in-one", "server,cpu,gpu,jetson"), ("server", "server")):
        proc = stack.run("config", env={"STACK_ROLE": role})
        assert proc.returncode == 0, proc.stderr
        assert stack.compose_calls()[-1]["env"]["COMPOSE_PROFILES"] == profiles
    url = "https://metrics.example.org:9090/api/v1/write"
    proc = stack.run("config", env={"STACK_ROLE": "client", "REMOTE_WRITE_URL": url})
    assert proc.returncode == 0, proc.stderr
    env = stack.compose_calls()[-1]["env"]
    assert (env["COMPOSE_PROFILES"], env["CLIENT_CPU_PYJOULES_URL"]) == ("cpu,gpu,jetson", url)
    # `up` on a client machine: the device clients its hardware allows, no server.
    proc = stack.run("up", "-d", env={"STACK_ROLE": "client", "REMOTE_WRITE_URL": url})
    assert proc.returncode == 0, proc.stderr
    assert stack.compose_calls()[-1]["env"]["COMPOSE_PROFILES"] == "cpu"
    # A server machine detects no hardware at all (and builds no client image).
    proc = stack.run("up", "-d", "--build", env={"STACK_ROLE": "server"})
    assert proc.returncode == 0, proc.stderr
    assert "device clients" not in proc.stderr
    assert stack.compose_calls()[-1]["env"]["COMPOSE_PROFILES"] == "server"
    proc = stack.run("config", env={"STACK_ROLE": "desktop"})
    assert proc.returncode == 2 and "STACK_ROLE='desktop' is invalid" in proc.stderr


def test_client_role_needs_the_server_url(stack: Stack) -> None:
    proc = stack.run("up", "-d", env={"STACK_ROLE": "client"})
    assert proc.returncode == 2
    assert "STACK_ROLE=client needs the server's address: set REMOTE_WRITE_URL" in proc.stderr
    assert stack.compose_calls() == []
    proc = stack.run("down", env={"STACK_ROLE": "client"})  # taking a stack down needs no URL
    assert proc.returncode == 0, proc.stderr


def test_per_client_url_wins_over_the_shared_one(stack: Stack) -> None:
    env = {
        "STACK_ROLE": "client",
        "REMOTE_WRITE_URL": "https://shared.example.org/api/v1/write",
        "CLIENT_CPU_PYJOULES_URL": "https://own.example.org/api/v1/write",
    }
    proc = stack.run("config", env=env)
    assert proc.returncode == 0, proc.stderr
    assert stack.compose_calls()[-1]["env"]["CLIENT_CPU_PYJOULES_URL"] == env["CLIENT_CPU_PYJOULES_URL"]


def test_server_role_checks_no_rapl_and_builds_no_client(stack: Stack, tmp_path: Path) -> None:
    empty = tmp_path / "no-rapl"
    empty.mkdir()
    proc = stack.run("up", "-d", "--build", env={"STACK_ROLE": "server", "POWERCAP_HOST_DIR": str(empty)})
    assert proc.returncode == 0, proc.stderr
    (call,) = stack.compose_calls()
    assert call["args"] == ["-f", "docker-compose.yml", "up", "-d", "--build"]


# --- protected server ----------------------------------------------------------------------------------


def openssl(*args: str) -> str:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, check=True).stdout


def env_local(stack: Stack) -> dict[str, str]:
    out = {}
    for line in (stack.dir / ".env.local").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key] = value
    return out


def test_non_loopback_bind_protects_prometheus_with_generated_secrets(stack: Stack) -> None:
    bcrypt = pytest.importorskip("bcrypt", reason="bcrypt is a test requirement (./run-tests.sh installs it)")
    env = {"BIND_ADDRESS": "192.0.2.10", "PROMETHEUS_TLS_NAMES": "metrics.lab.example,198.51.100.7"}
    proc = stack.run("up", "-d", env=env)
    assert proc.returncode == 0, proc.stderr
    secrets = stack.dir / "secrets"
    password = env_local(stack)["PROMETHEUS_AUTH_PASSWORD"]
    assert len(password) >= 32 and password.isalnum()
    assert stat.S_IMODE((stack.dir / ".env.local").stat().st_mode) == 0o600
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o700
    assert stat.S_IMODE((secrets / "ca.key").stat().st_mode) == 0o600
    assert password not in proc.stdout + proc.stderr
    assert f"CA certificate to copy to client machines: {secrets / 'ca.crt'}" in proc.stderr

    # The server certificate chains to the CA and carries every name clients may use.
    openssl("verify", "-CAfile", str(secrets / "ca.crt"), str(secrets / "prometheus.crt"))
    text = openssl("x509", "-in", str(secrets / "prometheus.crt"), "-noout", "-text")
    for name in ("DNS:prometheus", "DNS:localhost", "IP Address:127.0.0.1", "IP Address:192.0.2.10"):
        assert name in text
    assert "DNS:metrics.lab.example" in text and "IP Address:198.51.100.7" in text

    # The web config holds a bcrypt hash of exactly that password (made by libcrypt, as in PYTHON_IMAGE).
    web = load_yaml((secrets / "prometheus-web.yml").read_text())
    (user, hashed), *_ = web["basic_auth_users"].items()
    assert user == "powermon" and hashed.startswith("$2b$")
    assert bcrypt.checkpw(password.encode(), hashed.encode())
    assert not bcrypt.checkpw(b"wrong", hashed.encode())
    assert web["tls_server_config"] == {"cert_file": "prometheus_tls_cert", "key_file": "prometheus_tls_key"}
    assert (secrets / "prometheus-password").read_text() == password

    # Compose gets file names, not values; this stack's client logs in with the server's user, password and CA.
    call = stack.compose_calls()[-1]["env"]
    assert call["PROMETHEUS_AUTH_PASSWORD"] is None
    assert call["HELPER_PROMETHEUS_SECURE"] == "true"
    assert call["HELPER_PROMETHEUS_URL"] == "https://prometheus:9090"
    assert call["HELPER_SECRET_PROMETHEUS_WEB_CONFIG"] == str(secrets / "prometheus-web.yml")
    assert call["CLIENT_CPU_PYJOULES_URL"] == "https://prometheus:9090/api/v1/write"
    assert call["HELPER_REMOTE_WRITE_USERNAME"] == "powermon"
    assert call["HELPER_SECRET_REMOTE_WRITE_PASSWORD"] == str(secrets / "prometheus-password")
    assert call["HELPER_REMOTE_WRITE_PASSWORD_FILE"] == "/run/secrets/remote_write_password"
    assert call["HELPER_SECRET_REMOTE_WRITE_CA"] == str(secrets / "ca.crt")
    assert call["HELPER_REMOTE_WRITE_CA_FILE"] == "/run/secrets/remote_write_ca"

    # Again: nothing is generated anew; a new password gets a new hash in the same file (same inode, so a
    # running container sees it), and the same CA.
    before = {p.name: p.read_bytes() for p in secrets.iterdir() if p.is_file()}
    web_inode = (secrets / "prometheus-web.yml").stat().st_ino
    proc = stack.run("up", "-d", env=env)
    assert proc.returncode == 0 and "generated" not in proc.stderr, proc.stderr
    assert {p.name: p.read_bytes() for p in secrets.iterdir() if p.is_file()} == before
    proc = stack.run("up", "-d", env={**env, "PROMETHEUS_AUTH_PASSWORD": "a-new-password-from-the-environment"})
    assert proc.returncode == 0, proc.stderr
    hashed = load_yaml((secrets / "prometheus-web.yml").read_text())["basic_auth_users"]["powermon"]
    assert bcrypt.checkpw(b"a-new-password-from-the-environment", hashed.encode())
    assert (secrets / "prometheus-web.yml").stat().st_ino == web_inode
    assert (secrets / "ca.crt").read_bytes() == before["ca.crt"]


def test_loopback_is_unprotected_unless_asked(stack: Stack) -> None:
    proc = stack.run("up", "-d")
    assert proc.returncode == 0, proc.stderr
    call = stack.compose_calls()[-1]["env"]
    assert call["HELPER_PROMETHEUS_URL"] == "http://prometheus:9090"
    assert call["CLIENT_CPU_PYJOULES_URL"] == "http://prometheus:9090/api/v1/write"
    assert not call["HELPER_SECRET_PROMETHEUS_WEB_CONFIG"]
    assert [p.name for p in (stack.dir / "secrets").iterdir()] == ["empty"]  # nothing generated
    proc = stack.run("up", "-d", env={"PROMETHEUS_SECURITY": "on"})
    assert proc.returncode == 0, proc.stderr
    assert stack.compose_calls()[-1]["env"]["HELPER_PROMETHEUS_URL"] == "https://prometheus:9090"
    proc = stack.run("config", env={"PROMETHEUS_SECURITY": "off", "BIND_ADDRESS": "192.0.2.10"})
    assert proc.returncode == 2 and "PROMETHEUS_SECURITY='off' is invalid" in proc.stderr


def test_the_local_servers_password_goes_to_the_local_server_only(stack: Stack) -> None:
    url = "https://elsewhere.example.org/api/v1/write"
    proc = stack.run("up", "-d", env={"PROMETHEUS_SECURITY": "on", "CLIENT_CPU_PYJOULES_URL": url})
    assert proc.returncode == 0, proc.stderr
    call = stack.compose_calls()[-1]["env"]
    assert call["CLIENT_CPU_PYJOULES_URL"] == url
    assert call["HELPER_SECRET_REMOTE_WRITE_PASSWORD"] == "" and call["HELPER_REMOTE_WRITE_USERNAME"] == ""


def test_plain_http_to_a_protected_local_server_is_refused(stack: Stack) -> None:
    env = {"PROMETHEUS_SECURITY": "on", "CLIENT_CPU_PYJOULES_URL": "http://prometheus:9090/api/v1/write"}
    proc = stack.run("config", env=env)
    assert proc.returncode == 2
    assert "uses plain HTTP, but this stack's Prometheus requires TLS" in proc.stderr


def test_print_command_plans_protection_and_writes_nothing(stack: Stack) -> None:
    proc = stack.run("--print-command", "up", "-d", env={"BIND_ADDRESS": "192.0.2.10"})
    assert proc.returncode == 0, proc.stderr
    assert "# prometheus: basic auth and TLS" in proc.stdout
    assert "would generate PROMETHEUS_AUTH_PASSWORD" in proc.stdout
    assert [p.name for p in (stack.dir / "secrets").iterdir()] == ["empty"]
    assert not (stack.dir / ".env.local").exists()


def test_bcrypt_failure_is_an_environment_error(stack: Stack) -> None:
    proc = stack.run("up", "-d", env={"PROMETHEUS_SECURITY": "on", "FAKE_RUN_FAILS": "1"})
    assert proc.returncode == 3
    assert "could not make the bcrypt hash" in proc.stderr and "PYTHON_IMAGE" in proc.stderr
    assert stack.compose_calls() == []


def test_own_certificate_is_staged_with_its_ca(stack: Stack, tmp_path: Path) -> None:
    own = tmp_path / "own"
    own.mkdir()
    key, cert = str(own / "key.pem"), str(own / "cert.pem")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
            "-subj", "/CN=metrics.example.org", "-addext", "subjectAltName=DNS:*.example.org",
            "-keyout", key, "-out", cert)  # fmt: skip
    (own / "key.pem").chmod(0o600)
    env = {
        "PROMETHEUS_SECURITY": "on",
        "PROMETHEUS_TLS_CERT_FILE": str(own / "cert.pem"),
        "PROMETHEUS_TLS_KEY_FILE": str(own / "key.pem"),
        "PROMETHEUS_TLS_CA_FILE": str(own / "cert.pem"),
        "PROMETHEUS_TLS_SERVER_NAME": "metrics.example.org",
    }
    proc = stack.run("up", "-d", env=env)
    assert proc.returncode == 0, proc.stderr
    secrets = stack.dir / "secrets"
    assert not (secrets / "ca.key").exists()  # no CA of ours
    assert (secrets / "prometheus.key").read_bytes() == (own / "key.pem").read_bytes()
    call = stack.compose_calls()[-1]["env"]
    assert call["HELPER_SECRET_PROMETHEUS_CA"] == str(secrets / "own-ca.crt")
    assert call["HELPER_PROMETHEUS_URL"] == "https://metrics.example.org:9090"
    assert call["CLIENT_CPU_PYJOULES_URL"] == "https://metrics.example.org:9090/api/v1/write"
    proc = stack.run("up", "-d", env={**env, "PROMETHEUS_TLS_KEY_FILE": ""})
    assert proc.returncode == 2 and "go together" in proc.stderr
    # The name the stack reaches Prometheus under must be in the certificate (the CN does not count).
    proc = stack.run("up", "-d", env={**env, "PROMETHEUS_TLS_SERVER_NAME": "prometheus"})
    assert proc.returncode == 2 and "has no subjectAltName DNS:prometheus" in proc.stderr
    proc = stack.run("up", "-d", env={**env, "PROMETHEUS_TLS_SERVER_NAME": "deep.metrics.example.org"})
    assert proc.returncode == 2


# --- client credentials --------------------------------------------------------------------------------

REMOTE = {"STACK_ROLE": "client", "REMOTE_WRITE_URL": "https://metrics.example.org:9090/api/v1/write"}


def test_client_credentials_are_staged_as_files_never_passed_as_values(stack: Stack, tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\nnot checked here\n-----END CERTIFICATE-----\n")
    ca.chmod(0o600)
    env = {
        **REMOTE,
        "REMOTE_WRITE_USERNAME": "lab-7",
        "REMOTE_WRITE_PASSWORD": "value-from-env-local",
        "REMOTE_WRITE_CA_FILE": str(ca),
        "REMOTE_WRITE_HEADERS": "X-Scope-OrgID=lab-a",
    }
    proc = stack.run("up", "-d", env=env)
    assert proc.returncode == 0, proc.stderr
    staged = stack.dir / "secrets" / "client"
    assert (staged / "password").read_text() == "value-from-env-local"
    assert (staged / "ca.crt").read_bytes() == ca.read_bytes()
    assert stat.S_IMODE(staged.stat().st_mode) == 0o700
    assert stat.S_IMODE((staged / "password").stat().st_mode) == 0o644  # for the cap-less root inside
    call = stack.compose_calls()[-1]["env"]
    assert call["REMOTE_WRITE_PASSWORD"] is None
    assert call["HELPER_REMOTE_WRITE_USERNAME"] == "lab-7"
    assert call["HELPER_SECRET_REMOTE_WRITE_PASSWORD"] == str(staged / "password")
    assert call["HELPER_REMOTE_WRITE_PASSWORD_FILE"] == "/run/secrets/remote_write_password"
    assert call["HELPER_REMOTE_WRITE_CA_FILE"] == "/run/secrets/remote_write_ca"
    assert call["HELPER_REMOTE_WRITE_BEARER_TOKEN_FILE"] == ""
    assert call["REMOTE_WRITE_HEADERS"] == "X-Scope-OrgID=lab-a"
    assert "value-from-env-local" not in proc.stdout + proc.stderr

    # A password file: copied in place, so a changed file reaches the running client after `up -d` again.
    password_file = tmp_path / "password"
    password_file.write_text("first\n")
    file_env = {**REMOTE, "REMOTE_WRITE_USERNAME": "lab-7", "REMOTE_WRITE_PASSWORD_FILE": str(password_file)}
    assert stack.run("up", "-d", env=file_env).returncode == 0
    inode = (staged / "password").stat().st_ino
    password_file.write_text("second\n")
    assert stack.run("up", "-d", env=file_env).returncode == 0
    assert (staged / "password").read_text() == "second\n" and (staged / "password").stat().st_ino == inode


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"REMOTE_WRITE_PASSWORD": "p"}, "REMOTE_WRITE_PASSWORD is set without REMOTE_WRITE_USERNAME"),
        (
            {"REMOTE_WRITE_USERNAME": "u", "REMOTE_WRITE_PASSWORD": "p", "REMOTE_WRITE_PASSWORD_FILE": "/etc/hostname"},
            "REMOTE_WRITE_PASSWORD and REMOTE_WRITE_PASSWORD_FILE are both set",
        ),
        ({"REMOTE_WRITE_USERNAME": "u", "REMOTE_WRITE_BEARER_TOKEN": "t"}, "exclude each other"),
        ({"REMOTE_WRITE_CERT_FILE": "/etc/hostname"}, "REMOTE_WRITE_CERT_FILE and REMOTE_WRITE_KEY_FILE go together"),
        ({"REMOTE_WRITE_CA_FILE": "/nonexistent/ca.crt"}, "REMOTE_WRITE_CA_FILE='/nonexistent/ca.crt': no such"),
    ],
)
def test_inconsistent_client_credentials_are_refused(stack: Stack, settings: dict[str, str], message: str) -> None:
    proc = stack.run("up", "-d", env={**REMOTE, **settings})
    assert proc.returncode == 2
    assert message in proc.stderr
    assert stack.compose_calls() == []
    for value in ("p", "t"):
        assert f"={value}" not in proc.stderr
