"""The whole stack, started for real with the real helper: Docker, compose, images, Prometheus, the clients.

The host's hardware is faked at its lowest boundary: a fake powercap tree (cpu_pyjoules.fake_powercap, known
watts) is bind-mounted exactly as a host's /sys/devices/virtual/powercap would be (RAPL_ACCESS=mount, the
default), and a fake Jetson sysfs (jetson_ina3221.fake_sysfs, an Orin NX whose rails draw known volts and
amps) stands in for the host's /sys (JETSON_SYSFS_HOST_DIR). ``up -d --build`` names no client: the helper's
hardware detection starts cpu-pyjoules and jetson-ina3221 and says why it skips gpu-nvml (no NVIDIA GPU and
runtime here). The test waits until Prometheus holds every zone at its power, runs every dashboard query with
Grafana's variables substituted and checks each result is plausible, checks the containers' health and
hardening, then brings the stack down and checks nothing of it is left.

Where Docker Hub cannot be reached (this CI), upstream images are replaced by stand-ins built from Debian
packages (see stack_images.py) and the test says so; Grafana, which has no such package, is then checked
through its provisioning files (test_stack_files.py), and through its HTTP API whenever its image exists.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from jetson_ina3221.fake_sysfs import FakeJetson
from testkit.ports import free_port
from testkit.wait import wait_until

from .conftest import E2E
from .stack_dashboard import (
    DATASOURCE_UID,
    load_dashboards,
    parse_label_values,
    regex_for,
    substitute,
    variable_query,
    variables,
)
from .stack_e2e import HERE, PROJECT_PREFIX, ROOT, STACK_SETTINGS, Stack, env_file_value, image_settings
from .stack_expect import Expected, implausible, without_rule
from .stack_images import PYTHON_STANDIN, Docker, build_python_standin
from .stack_yaml import load_yaml

pytestmark = pytest.mark.e2e

FAKE_WATTS = {"package-0": 25.0, "core": 15.0, "dram": 4.0}
RAPL_ZONES = {"package-0": "intel-rapl:0", "core": "intel-rapl:0:0", "dram": "intel-rapl:0:1"}
RAILS = {"VDD_IN": (5.0, 2.4), "VDD_CPU_GPU_CV": (5.0, 0.9), "VDD_SOC": (5.0, 0.5)}  # volts, amps
SCRAPE_INTERVAL_S = 0.2
PUSH_INTERVAL_S = 1
RANGE_S = 30  # $__range used for the energy panels; the test waits until this much data exists
CLIENT = "cpu-pyjoules"
JETSON = "jetson-ina3221"
# Without psys the packages and DRAM are the CPU's totals (core is inside the package); VDD_IN is the board's.
EXPECTED = Expected(
    zones={RAPL_ZONES[name]: watts for name, watts in FAKE_WATTS.items()},  # expected() adds the rails
    kinds={CLIENT: FAKE_WATTS["package-0"] + FAKE_WATTS["dram"], JETSON: 5.0 * 2.4},
    series={CLIENT: len(FAKE_WATTS) * 3, JETSON: len(RAILS) * 4},
    scrape_interval_s=SCRAPE_INTERVAL_S,
    push_interval_s=PUSH_INTERVAL_S,
    range_s=RANGE_S,
)


@pytest.fixture(scope="module")
def fake_jetson(tmp_path_factory: pytest.TempPathFactory) -> FakeJetson:
    root = tmp_path_factory.mktemp("jetson-sys")
    root.chmod(0o755)  # the client reads it as the image's unprivileged user
    return FakeJetson(root, "orin-nx", RAILS).build()


@pytest.fixture(scope="module")
def stack(e2e: E2E, fake_jetson: FakeJetson, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    docker_env, fake_rapl, say = e2e.docker_env, e2e.fake_rapl, e2e.say
    grafana_available = bool(e2e.images["grafana"].tag)
    project = f"{PROJECT_PREFIX}{os.getpid()}"
    prometheus_port, grafana_port = free_port(), free_port()
    password = secrets.token_urlsafe(18)
    host_label = f"e2e-host-{secrets.token_hex(3)}"
    env = {k: v for k, v in docker_env.items() if k not in STACK_SETTINGS}
    extra_files = [HERE / "docker-compose.e2e.yml"]
    if not grafana_available:  # no image and no stand-in: leave Grafana out of `up` (scaled to no container)
        extra_files.append(HERE / "docker-compose.e2e-no-grafana.yml")
    if any(Path("/proc/driver/nvidia/gpus").glob("*")):  # a GPU host: this test is about the fake hardware
        env["HELPER_NVIDIA_GPUS"] = str(tmp_path_factory.mktemp("no-gpus"))
    env.update(
        image_settings(e2e.images),
        COMPOSE_PROJECT_NAME=project,
        EXTRA_COMPOSE_FILES=":".join(str(f) for f in extra_files),
        BIND_ADDRESS="127.0.0.1",
        PROMETHEUS_PORT=str(prometheus_port),
        GRAFANA_PORT=str(grafana_port),
        POWERCAP_HOST_DIR=str(fake_rapl),
        JETSON_SYSFS_HOST_DIR=str(fake_jetson.root),
        GF_SECURITY_ADMIN_PASSWORD=password,
        HOST_LABEL=host_label,
        CLIENT_CPU_PYJOULES_SCRAPE_INTERVAL_S=str(SCRAPE_INTERVAL_S),
        CLIENT_CPU_PYJOULES_PUSH_INTERVAL_S=str(PUSH_INTERVAL_S),
        CLIENT_JETSON_INA3221_SCRAPE_INTERVAL_S=str(SCRAPE_INTERVAL_S),
        CLIENT_JETSON_INA3221_PUSH_INTERVAL_S=str(PUSH_INTERVAL_S),
        RAPL_ACCESS="mount",
        PRIVILEGED="False",
    )
    log = tmp_path_factory.mktemp("stack") / "helper.log"
    log.touch()
    st = Stack(
        env,
        project,
        f"http://127.0.0.1:{prometheus_port}",
        f"http://127.0.0.1:{grafana_port}" if grafana_available else None,
        host_label,
        password,
        log,
    )
    say(f"project {project}: ./docker-compose_helper.sh up -d --build (log: {log})")
    started = time.monotonic()
    try:
        proc = st.helper("up", "-d", "--build", timeout=1800)
        assert proc.returncode == 0, f"helper up failed ({proc.returncode}):\n{st.log_tail()}"
        say(f"stack up in {time.monotonic() - started:.0f}s")
        yield st
    finally:
        st.helper("down", "-v", "--remove-orphans", timeout=300)
        st.session.close()


def expected(fake_jetson: FakeJetson) -> Expected:
    rails = {fake_jetson.rails[name].zone: volts * amps for name, (volts, amps) in RAILS.items()}
    return dataclasses.replace(EXPECTED, zones={**EXPECTED.zones, **rails})


def wait_for_zones(stack: Stack, fake_jetson: FakeJetson) -> dict[str, float]:
    """Every fake zone's and rail's power series, averaged over 10 s, within 3 % of its watts."""
    wanted = expected(fake_jetson).zones

    def powers() -> dict[str, float] | None:
        result = stack.query(f'avg_over_time({{__name__=~".+_power_watts", host="{stack.host_label}"}}[10s])')
        got = {r["metric"]["zone"]: float(r["value"][1]) for r in result}
        if set(got) == set(wanted) and all(abs(got[z] - w) <= 0.03 * w for z, w in wanted.items()):
            return got
        return None

    return wait_until(powers, 180, interval=1, message=f"every zone at its fake power\n{stack.log_tail()}")


def test_up_starts_the_clients_whose_hardware_the_host_has(stack: Stack) -> None:
    log = stack.log.read_text()
    assert "device clients for this host: cpu-pyjoules jetson-ina3221 (COMPOSE_PROFILES=server,cpu,jetson)" in log
    skipped = [line for line in log.splitlines() if "docker-compose_helper.sh: not starting" in line]
    assert len(skipped) == 1 and skipped[0].startswith("docker-compose_helper.sh: not starting gpu-nvml: ")
    assert "NVIDIA" in skipped[0], skipped
    assert (
        stack.docker(
            "ps",
            "-a",
            "-q",
            "--filter",
            f"label=com.docker.compose.project={stack.project}",
            "--filter",
            "label=com.docker.compose.service=gpu-nvml",
        )
        == ""
    )


def test_prometheus_holds_every_zone_at_the_expected_power(stack: Stack, fake_jetson: FakeJetson) -> None:
    powers = wait_for_zones(stack, fake_jetson)
    assert set(powers) == set(expected(fake_jetson).zones)
    series = stack.query(f'{{__name__=~".+_energy_joules_total", host="{stack.host_label}"}}')
    labels = {(s["metric"]["component"], s["metric"]["zone"], s["metric"]["source"]) for s in series}
    assert labels == {
        ("package-0", "intel-rapl:0", CLIENT),
        ("core", "intel-rapl:0:0", CLIENT),
        ("dram", "intel-rapl:0:1", CLIENT),
        ("VDD_IN", "1-0040:1", JETSON),
        ("VDD_CPU_GPU_CV", "1-0040:2", JETSON),
        ("VDD_SOC", "1-0040:3", JETSON),
    }
    scopes = {s["metric"]["component"]: s["metric"].get("scope") for s in series}
    assert scopes == {
        "package-0": "total",
        "core": "part",
        "dram": "total",
        "VDD_IN": "total",
        "VDD_CPU_GPU_CV": "part",
        "VDD_SOC": "part",
    }
    # Prometheus runs as prometheus/entrypoint.sh configured it from .env's defaults.
    flags = stack.session.get(f"{stack.prometheus_url}/api/v1/status/flags", timeout=10).json()["data"]
    assert flags["web.enable-remote-write-receiver"] == "true"
    assert flags["storage.tsdb.retention.time"] == env_file_value("PROMETHEUS_RETENTION")
    config = stack.session.get(f"{stack.prometheus_url}/api/v1/status/config", timeout=10).json()["data"]["yaml"]
    assert f"out_of_order_time_window: {env_file_value('PROMETHEUS_OUT_OF_ORDER_WINDOW')}" in config


def test_prometheus_evaluates_the_shipped_alerting_rules(stack: Stack) -> None:
    shipped = {
        rule["alert"]
        for group in load_yaml((ROOT / "prometheus" / "alerts.yml").read_text())["groups"]
        for rule in group["rules"]
    }
    assert {rule["name"] for rule in stack_rules(stack) if rule["type"] == "alerting"} == shipped
    wait_until(
        lambda: all(rule.get("health") == "ok" for rule in stack_rules(stack)),
        120,
        interval=2,
        message="every alerting rule evaluated without error",
    )


def stack_rules(stack: Stack) -> list[dict[str, Any]]:
    groups = stack.session.get(f"{stack.prometheus_url}/api/v1/rules", timeout=10).json()["data"]["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_containers_are_healthy_and_hardened(stack: Stack) -> None:
    services = ["prometheus", CLIENT, JETSON] + (["grafana"] if stack.grafana_url else [])

    def all_healthy() -> bool:
        return all(stack.container(s)["State"].get("Health", {}).get("Status") == "healthy" for s in services)

    wait_until(all_healthy, 180, interval=1, message=f"{services} healthy")
    base = stack.container("base-monitoring-client")
    assert base["State"]["Status"] == "exited" and base["State"]["ExitCode"] == 0

    client = stack.container(CLIENT)
    host = client["HostConfig"]
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"] and not host.get("CapAdd")
    assert host["Privileged"] is False
    assert "no-new-privileges:true" in host["SecurityOpt"]
    assert client["Config"]["User"].split(":")[0] == "0"
    rapl = [m for m in client["Mounts"] if m["Destination"] == "/host/powercap"]
    assert len(rapl) == 1 and rapl[0]["RW"] is False
    assert "/healthz" in " ".join(client["Config"]["Healthcheck"]["Test"])
    jetson = stack.container(JETSON)  # the same confinement, as the image's unprivileged user
    assert jetson["HostConfig"]["ReadonlyRootfs"] is True and jetson["HostConfig"]["CapDrop"] == ["ALL"]
    assert not jetson["HostConfig"].get("CapAdd") and jetson["HostConfig"]["Privileged"] is False
    assert "no-new-privileges:true" in jetson["HostConfig"]["SecurityOpt"]
    assert jetson["Config"]["User"] == "monitor"
    sysfs = [m for m in jetson["Mounts"] if m["Destination"] == "/host/sys"]
    assert len(sysfs) == 1 and sysfs[0]["RW"] is False
    # Capability-less root must still be able to write its spool (the image hands the directory to uid 0).
    spool_ok = wait_until(
        lambda: stack.query(f'monitoring_client_spool_disk_ok{{host="{stack.host_label}"}}'),
        120,
        interval=1,
        message="the client's spool self-metric",
    )
    assert [float(r["value"][1]) for r in spool_ok] == [1.0, 1.0]  # cpu-pyjoules's and jetson-ina3221's
    for service in services:
        for bindings in stack.container(service)["HostConfig"]["PortBindings"].values():
            assert all(b["HostIp"] == "127.0.0.1" for b in bindings), (service, bindings)


# --- every dashboard query, with a plausibility rule per query (stack_expect.py) ---------------------------


def test_every_dashboard_query_returns_plausible_data(stack: Stack, fake_jetson: FakeJetson) -> None:
    wait_for_zones(stack, fake_jetson)
    dash = load_dashboards()["power.json"]
    assert not without_rule(), f"dashboard queries without a plausibility rule: {without_rule()}"

    # Variables first, as Grafana resolves them: our host and sources must be offered.
    offered: dict[str, list[str]] = {}
    for var in variables(dash):
        selector, label = parse_label_values(variable_query(var))
        selector = substitute(selector or "", {"host": regex_for(offered.get("host", [stack.host_label]))})
        resp = stack.session.get(f"{stack.prometheus_url}/api/v1/series", params={"match[]": selector}, timeout=10)
        offered[var["name"]] = sorted({s[label] for s in resp.json()["data"] if label in s})
    assert stack.host_label in offered["host"]
    assert {CLIENT, JETSON} <= set(offered["source"])

    values = {
        "host": regex_for([stack.host_label]),
        "source": regex_for([CLIENT, JETSON]),
        "__range": f"{RANGE_S}s",
        "__rate_interval": "40s",  # 4 x the datasource's timeInterval (10s), as Grafana computes it
        "__interval": "5s",
    }
    problems: list[str] = []

    def all_plausible() -> bool:
        problems[:] = implausible(stack.query, values, expected(fake_jetson))
        return not problems

    # Enough data for the widest window (rate over 40s of 10-second self-metrics, energy over RANGE_S).
    try:
        wait_until(all_plausible, 180, interval=2, message="every dashboard query plausible")
    except AssertionError:
        raise AssertionError("implausible or empty dashboard queries:\n" + "\n".join(problems)) from None


def test_grafana_serves_provisioned_datasource_and_dashboard(stack: Stack) -> None:
    if stack.grafana_url is None:
        pytest.skip(
            "Grafana image not in the daemon and not pulled (no registry here has it; E2E_PULL_IMAGES=1 pulls where"
            " Docker Hub is reachable): provisioning and every dashboard query are checked by the other stack tests"
        )
    auth = ("admin", stack.password)

    def up() -> bool:
        return requests.get(f"{stack.grafana_url}/api/health", timeout=5).status_code == 200

    wait_until(up, 180, interval=1, message="grafana /api/health")
    ds = requests.get(f"{stack.grafana_url}/api/datasources/uid/{DATASOURCE_UID}", auth=auth, timeout=10)
    assert ds.status_code == 200 and ds.json()["url"] == "http://prometheus:9090"
    dash = requests.get(f"{stack.grafana_url}/api/dashboards/uid/power-monitoring", auth=auth, timeout=10)
    assert dash.status_code == 200 and dash.json()["dashboard"]["title"] == "Power monitoring"
    anonymous = requests.get(f"{stack.grafana_url}/api/dashboards/uid/power-monitoring", timeout=10)
    assert anonymous.status_code == 401
    health = requests.post(f"{stack.grafana_url}/api/datasources/uid/{DATASOURCE_UID}/health", auth=auth, timeout=30)
    if health.status_code == 404:  # older API location
        health = requests.get(f"{stack.grafana_url}/api/datasources/uid/{DATASOURCE_UID}/health", auth=auth, timeout=30)
    assert health.status_code == 200, health.text


def test_down_removes_everything_the_stack_created(stack: Stack) -> None:
    proc = stack.helper("down", "-v", "--remove-orphans")
    assert proc.returncode == 0, stack.log_tail()
    assert stack.leftovers() == {}
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{stack.prometheus_url}/-/ready", timeout=5)


# --- the client images for arm64 (a Jetson, an arm64 server) ----------------------------------------------

ARM64_IMAGES = ("base-monitoring-client", "gpu-nvml", "jetson-ina3221")  # cpu-pyjoules: RAPL is x86 only


def aarch64_emulation_missing() -> str | None:
    """Why this host cannot run arm64 programs in containers, or None: qemu-user-static in binfmt_misc with
    the F flag (the interpreter is opened at registration, so it works inside a container's root)."""
    entry = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64")
    try:
        lines = entry.read_text().splitlines()
    except OSError:
        return f"{entry} is not registered: install qemu-user-static (./run-tests.sh does it as root)"
    flags = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("flags:")), "")
    if lines[:1] != ["enabled"] or "F" not in flags:
        return f"{entry} is not enabled with the F flag (flags {flags!r}): update-binfmts --enable qemu-aarch64"
    return None


def test_client_images_build_and_run_for_arm64(
    docker_env: dict[str, str], fake_jetson: FakeJetson, say: Callable[[str], None]
) -> None:
    """The same Dockerfiles build arm64 images (emulated here) in which the Jetson client finds its rails."""
    missing = aarch64_emulation_missing()
    if missing:
        pytest.skip(f"cannot run arm64 programs here: {missing}")
    docker = Docker(docker_env, log=say)
    started = time.monotonic()
    base = build_python_standin(docker, PYTHON_STANDIN + "-arm64", arch="arm64")
    say(f"arm64 Python stand-in {base} ready in {time.monotonic() - started:.0f}s")
    started = time.monotonic()
    built: dict[str, str] = {}
    for name in ARM64_IMAGES:
        tag = f"powermon-e2e-arm64/{name}:latest"
        arg = f"PYTHON_IMAGE={base}" if name == "base-monitoring-client" else f"BASE_IMAGE={built[ARM64_IMAGES[0]]}"
        docker.run("build", "--platform", "linux/arm64", "--network", "host", "--build-arg", arg, "-t", tag,
                   str(ROOT / name), timeout=1800)  # fmt: skip
        built[name] = tag
        platform = docker.run("image", "inspect", "--format", "{{.Os}}/{{.Architecture}}", tag).stdout.strip()
        assert platform == "linux/arm64", (name, platform)
    say(f"arm64 images built in {time.monotonic() - started:.0f}s: {', '.join(built.values())}")
    arm64 = ("run", "--rm", "--platform", "linux/arm64", "--network", "none", "--read-only", "--cap-drop", "ALL")
    machine = docker.run(
        *arm64, "--entrypoint", "python", built["jetson-ina3221"], "-c", "import os; print(os.uname().machine)"
    )
    assert machine.stdout.strip() == "aarch64"
    check = docker.run(*arm64, "-v", f"{fake_jetson.root}:/host/sys:ro", "-e", "JETSON_SYSFS_ROOT=/host/sys",
                       built["jetson-ina3221"], "--check", check=False)  # fmt: skip
    assert check.returncode == 0 and "configuration OK" in check.stdout, check.stdout + check.stderr
    nvml = docker.run(*arm64, "--entrypoint", "python", built["gpu-nvml"], "-c", "import gpu_nvml, pynvml")
    assert nvml.returncode == 0
