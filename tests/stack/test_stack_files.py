"""The stack's files, checked without Docker: compose in every mode, secure defaults, Prometheus entrypoint,
AppArmor profile, Grafana provisioning and dashboard (its queries run against a real Prometheus)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests

from testkit.client import MonitoringClient
from testkit.fake_rapl import FakeRaplTree
from testkit.ports import free_port
from testkit.prometheus import PrometheusServer
from testkit.wait import wait_until

from .stack_dashboard import (
    DATASOURCE_FILE,
    DATASOURCE_UID,
    PROVIDER_FILE,
    datasource_uids,
    iter_panels,
    load_dashboards,
    panel_queries,
    parse_label_values,
    substitute,
    variable_query,
    variables,
)
from .stack_entrypoint import entrypoint_process
from .stack_yaml import load_yaml

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "prometheus" / "entrypoint.sh"
ALERTS = ROOT / "prometheus" / "alerts.yml"
PROFILE = ROOT / "AppArmor" / "docker-pyjoules"
MODES = {
    "mount": {},
    "privileged": {"PRIVILEGED": "True"},
    "privileged-by-mode": {"RAPL_ACCESS": "privileged"},
    "apparmor": {"RAPL_ACCESS": "apparmor"},
}
# The files whose defaults a user gets from a clean clone.
DEFAULT_FILES = [
    ".env",
    "docker-compose.yml",
    "docker-compose.privileged.yml",
    "docker-compose.apparmor.yml",
    "docker-compose.victoriametrics.yml",
    "docker-compose_helper.sh",
    "prometheus/entrypoint.sh",
    "grafana/provisioning/datasources/prometheus.yml",
    "grafana/provisioning/dashboards/power-monitoring.yml",
    "base-monitoring-client/Dockerfile",
    "cpu-pyjoules/Dockerfile",
    "gpu-nvml/Dockerfile",
    "jetson-ina3221/Dockerfile",
]


def compose_command() -> list[str] | None:
    if os.environ.get("HELPER_COMPOSE"):  # the helper's own override, e.g. to check another Compose version
        return os.environ["HELPER_COMPOSE"].split()
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def resolved_config(mode_env: dict[str, str]) -> dict[str, Any]:
    """`compose config` through the real helper (as a user would run it), parsed."""
    compose = compose_command()
    if compose is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed (run ./run-tests.sh as root)")
    # The committed defaults, not whatever stack settings the developer's shell happens to export.
    stack_keys = {line.split("=", 1)[0] for line in (ROOT / ".env").read_text().splitlines() if "=" in line}
    ignored = stack_keys | {"COMPOSE_FILE", "COMPOSE_PROFILES", "EXTRA_COMPOSE_FILES"}
    env = {k: v for k, v in os.environ.items() if k not in ignored}
    env.update(mode_env, HELPER_COMPOSE=" ".join(compose), COMPOSE_PROJECT_NAME="powermon-config-check")
    proc = subprocess.run(
        [str(ROOT / "docker-compose_helper.sh"), "config"], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, f"compose rejected the configuration:\n{proc.stderr}"
    return load_yaml(proc.stdout)


DEVICE_CLIENTS = ("cpu-pyjoules", "gpu-nvml", "jetson-ina3221")


def mounts(service: dict[str, Any]) -> list[str]:
    """A service's volumes as SOURCE:TARGET:ro|rw, whichever syntax the compose version resolved them to."""
    return [
        m if isinstance(m, str) else f"{m['source']}:{m['target']}:{'ro' if m.get('read_only') else 'rw'}"
        for m in service["volumes"]
    ]


@pytest.mark.parametrize("mode", list(MODES))
def test_compose_accepts_every_mode_with_hardened_clients(mode: str) -> None:
    config = resolved_config(MODES[mode])
    services = config["services"]
    assert set(services) == {"prometheus", "grafana", "base-monitoring-client", *DEVICE_CLIENTS}
    client = services["cpu-pyjoules"]
    assert str(client["user"]).split(":")[0] == "0"
    for name in DEVICE_CLIENTS:  # least privilege, the same for every device client
        service = services[name]
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"] and not service.get("cap_add"), name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert service["environment"]["REMOTE_WRITE_URL"] == "http://prometheus:9090/api/v1/write", name
        assert service["environment"]["SPOOL_DIR"] == "/var/spool/monitoring-client", name
        assert f"{name}-spool:/var/spool/monitoring-client:rw" in mounts(service), name
        # Its own health, not Prometheus's: the base image's HEALTHCHECK, defined there only.
        assert "healthcheck" not in service, name
        assert "prometheus" not in service.get("depends_on", {}), name  # clients must run without a local server
        assert service["depends_on"]["base-monitoring-client"]["condition"] == "service_completed_successfully"
        assert service["profiles"] == [{"cpu-pyjoules": "cpu", "gpu-nvml": "gpu", "jetson-ina3221": "jetson"}[name]]
        assert not service.get("ports"), name
    for name in ("gpu-nvml", "jetson-ina3221"):  # the image's unprivileged user, in every RAPL mode
        assert "user" not in services[name] and not services[name].get("privileged"), name
    gpu = services["gpu-nvml"]
    (request,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert request["driver"] == "nvidia" and request["capabilities"] == ["gpu"] and request["count"] in ("all", -1)
    assert gpu["environment"]["NVIDIA_DRIVER_CAPABILITIES"] == "utility"
    jetson = services["jetson-ina3221"]
    assert jetson["environment"]["JETSON_SYSFS_ROOT"] == "/host/sys"
    assert "/sys:/host/sys:ro" in mounts(jetson)
    rapl = [m for m in mounts(client) if ":/host/powercap" in m]
    assert len(rapl) == 1 and rapl[0].endswith(":ro")
    if mode == "mount":
        assert client["environment"]["POWERCAP_ROOT"] == "/host/powercap"
        assert not client.get("privileged")
        assert not any(o.startswith(("apparmor", "systempaths")) for o in client["security_opt"])
    elif mode.startswith("privileged"):
        assert client["privileged"] is True
        assert client["environment"]["POWERCAP_ROOT"] == "/sys/class/powercap"
    else:
        assert {"apparmor=docker-pyjoules", "systempaths=unconfined"} <= set(client["security_opt"])
        assert client["environment"]["POWERCAP_ROOT"] == "/sys/class/powercap"
        assert not client.get("privileged")
    for name, service in services.items():
        if name != "base-monitoring-client":
            assert service["restart"] == "unless-stopped", name
            assert "healthcheck" in service or name in DEVICE_CLIENTS, name
        for port in service.get("ports", []):
            host_ip = port.get("host_ip") if isinstance(port, dict) else port.rsplit(":", 2)[0]
            assert host_ip == "127.0.0.1", f"{name} publishes {port}"
    assert {"prometheus-data", "grafana-data"} | {f"{name}-spool" for name in DEVICE_CLIENTS} <= set(config["volumes"])
    assert services["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"


def test_compose_resolves_a_protected_all_in_one_stack_with_secrets_as_files() -> None:
    # `config` writes nothing, but resolves exactly what `up` would start.
    config = resolved_config({"PROMETHEUS_SECURITY": "on"})
    services, secrets = config["services"], config["secrets"]
    assert set(services["prometheus"]["profiles"]) == {"server"} and set(services["grafana"]["profiles"]) == {"server"}
    assert set(services["cpu-pyjoules"]["profiles"]) == {"cpu"}
    assert set(services["base-monitoring-client"]["profiles"]) == {"cpu", "gpu", "jetson"}  # never on a server
    stack_secrets = ROOT / "secrets"
    assert Path(secrets["prometheus_web_config"]["file"]) == stack_secrets / "prometheus-web.yml"
    assert Path(secrets["prometheus_ca"]["file"]) == stack_secrets / "ca.crt"
    assert Path(secrets["remote_write_password"]["file"]) == stack_secrets / "prometheus-password"
    for name in DEVICE_CLIENTS:  # every client of the stack logs in the same way
        client = services[name]["environment"]
        assert client["REMOTE_WRITE_URL"] == "https://prometheus:9090/api/v1/write", name
        assert client["REMOTE_WRITE_USERNAME"] == "powermon"
        assert client["REMOTE_WRITE_PASSWORD_FILE"] == "/run/secrets/remote_write_password"
        assert client["REMOTE_WRITE_CA_FILE"] == "/run/secrets/remote_write_ca"
        mounted = {(s if isinstance(s, str) else s["source"]) for s in services[name]["secrets"]}
        assert {"remote_write_password", "remote_write_ca"} <= mounted
    grafana = services["grafana"]["environment"]
    assert (grafana["PROMETHEUS_DATASOURCE_URL"], grafana["PROMETHEUS_DATASOURCE_BASIC_AUTH"]) == (
        "https://prometheus:9090",
        "true",
    )
    aliases = services["prometheus"]["networks"]["monitoring"]["aliases"]
    assert "prometheus" in aliases  # the name in the certificate, resolvable on the compose network
    # No secret travels as an environment value: only file names and the Grafana admin password (which
    # Grafana reads only from its environment; generated, never committed).
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"PASSWORD|TOKEN|SECRET|_KEY\b", key) and key != "GF_SECURITY_ADMIN_PASSWORD":
                assert key.endswith("_FILE") and (not value or str(value).startswith("/run/secrets/")), (name, key)


def test_compose_unprotected_by_default_with_empty_secrets() -> None:
    config = resolved_config({})
    assert {Path(s["file"]) for s in config["secrets"].values()} == {ROOT / "secrets" / "empty"}
    assert (ROOT / "secrets" / "empty").read_bytes() == b""
    client = config["services"]["cpu-pyjoules"]["environment"]
    assert client["REMOTE_WRITE_PASSWORD_FILE"] == "" and client["REMOTE_WRITE_CA_FILE"] == ""


def test_compose_victoriametrics_override() -> None:
    config = resolved_config({"EXTRA_COMPOSE_FILES": str(ROOT / "docker-compose.victoriametrics.yml")})
    services = config["services"]
    vm = services["victoriametrics"]
    assert vm["profiles"] == ["server"] and "ports" not in vm  # reachable only on the compose network
    assert re.search(r":v\d+\.\d+\.\d+$", vm["image"]), "pinned"
    assert services["prometheus"]["environment"]["PROMETHEUS_REMOTE_WRITE_URL"] == (
        "http://victoriametrics:8428/api/v1/write"
    )
    assert services["grafana"]["environment"]["PROMETHEUS_DATASOURCE_URL"] == "http://victoriametrics:8428"
    assert services["grafana"]["depends_on"]["victoriametrics"]["condition"] == "service_healthy"
    assert "victoriametrics-data" in config["volumes"]


def test_client_healthcheck_is_defined_once_in_the_base_image() -> None:
    base = ROOT / "base-monitoring-client" / "Dockerfile"
    checks = re.findall(r"(?m)^HEALTHCHECK (?:.*\\\n)*.*$", base.read_text())
    assert len(checks) == 1, checks
    assert "/healthz" in checks[0] and "HEALTH_PORT" in checks[0]
    for dockerfile in ROOT.glob("*/Dockerfile"):
        if dockerfile != base:
            assert "HEALTHCHECK" not in dockerfile.read_text(), f"{dockerfile} redefines the client healthcheck"
    for compose in ROOT.glob("docker-compose*.yml"):
        assert "/healthz" not in compose.read_text(), f"{compose.name} redefines the client healthcheck"


def test_client_dockerfiles_are_architecture_neutral() -> None:
    """The same Dockerfiles build amd64 and arm64 images (the e2e test builds them for arm64 where it can):
    no architecture, downloaded file or wheel in any instruction; pip resolves each platform's wheels."""
    specific = re.compile(
        r"amd64|x86_64|x86-64|aarch64|arm64|armhf|i[3-6]86|\.whl\b|https?://(?!127\.0\.0\.1)|curl |wget ", re.I
    )
    dockerfiles = sorted(ROOT.glob("*/Dockerfile"))
    assert {d.parent.name for d in dockerfiles} >= {
        "base-monitoring-client",
        "cpu-pyjoules",
        "gpu-nvml",
        "jetson-ina3221",
    }
    for dockerfile in dockerfiles:
        lines = [line for line in dockerfile.read_text().splitlines() if not line.lstrip().startswith("#")]
        assert not [line for line in lines if specific.search(line)], dockerfile
    constraints = (ROOT / "base-monitoring-client" / "docker-constraints.txt").read_text()
    assert "platform_machine" not in constraints and not specific.search(constraints)


def test_no_wildcard_binding_and_no_password_in_committed_defaults() -> None:
    # A literal value after KEY= or KEY: (a ${VAR} reference is fine if its default is empty, checked below).
    password_assignment = re.compile(
        r"(?im)^[ \t]*(?:export[ \t]+)?(?:GF_SECURITY_ADMIN_PASSWORD|admin_password)[ \t]*[=:][ \t]*(?!\$\{)[^\s#]"
    )
    password_default = re.compile(r"\$\{GF_SECURITY_ADMIN_PASSWORD:?-([^}]*)\}")
    for rel in DEFAULT_FILES:
        text = (ROOT / rel).read_text()
        assert "0.0.0.0" not in text, rel
        assert not password_assignment.search(text), f"{rel} sets a password"
        assert all(default == "" for default in password_default.findall(text)), f"{rel} has a default password"
    env = {}
    for line in (ROOT / ".env").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    assert env["BIND_ADDRESS"] == "127.0.0.1"
    assert env.get("GF_SECURITY_ADMIN_PASSWORD", "") == ""
    assert env["RAPL_ACCESS"] == "mount" and env["PRIVILEGED"].lower() in ("false", "0", "no", "")
    compose = (ROOT / "docker-compose.yml").read_text()
    for published in re.findall(r'^\s*-\s*"([^"]*:\d+)"\s*$', compose, re.M):
        assert published.startswith("${BIND_ADDRESS:-127.0.0.1}:"), published
    assert 'GF_AUTH_ANONYMOUS_ENABLED: "false"' in compose


def test_env_keeps_the_seed_names_and_pins_images() -> None:
    text = (ROOT / ".env").read_text()
    for name in (
        "CLIENT_CPU_PYJOULES_URL",
        "CLIENT_CPU_PYJOULES_SCRAPE_INTERVAL_S",
        "CLIENT_CPU_PYJOULES_PUSH_INTERVAL_S",
        "PRIVILEGED",
        "PROMETHEUS_IMAGE",
        "GRAFANA_IMAGE",
        "UID",
        "GID",
    ):
        assert re.search(rf"(?m)^{name}=", text), name
    for image in re.findall(r"(?m)^(?:PYTHON|PROMETHEUS|GRAFANA|VICTORIAMETRICS)_IMAGE=(\S+)$", text):
        tag = image.split("@")[0].rsplit(":", 1)[-1]
        assert re.search(r"\d+\.\d+", tag) and tag != "latest", f"{image} is not pinned"
    # Every setting has a comment: each block of assignments is preceded by a comment line.
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^[A-Z_]+=", line):
            j = i - 1
            while j >= 0 and re.match(r"^[A-Z_]+=", lines[j]):
                j -= 1
            assert j >= 0 and lines[j].startswith("#"), f"{line} has no comment above it"


# --- Prometheus entrypoint -----------------------------------------------------------------------------


def render(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(ENTRYPOINT), "--print-config"],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_entrypoint_renders_a_config_promtool_accepts(tmp_path: Path) -> None:
    proc = render(
        {
            "PROMETHEUS_SCRAPE_INTERVAL": "7s",
            "PROMETHEUS_OUT_OF_ORDER_WINDOW": "1h30m",
            "PROMETHEUS_RULE_FILES": str(ALERTS),  # where compose mounts it in the container
        }
    )
    assert proc.returncode == 0, proc.stderr
    config = load_yaml(proc.stdout)
    assert config["global"]["scrape_interval"] == "7s"
    assert config["storage"]["tsdb"]["out_of_order_time_window"] == "1h30m"
    assert config["scrape_configs"][0]["static_configs"][0]["targets"] == ["localhost:9090"]
    assert config["rule_files"] == [str(ALERTS)]
    promtool = shutil.which("promtool")
    if promtool:  # also loads and checks the rule files
        path = tmp_path / "prometheus.yml"
        path.write_text(proc.stdout)
        check = subprocess.run([promtool, "check", "config", str(path)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr


def test_entrypoint_defaults_and_disabling_the_out_of_order_window() -> None:
    default = load_yaml(render({}).stdout)
    assert default["global"]["scrape_interval"] == "15s"
    assert default["storage"]["tsdb"]["out_of_order_time_window"] == "10m"
    assert default["rule_files"] == ["/etc/prometheus-stack/alerts.yml"]
    compose = (ROOT / "docker-compose.yml").read_text()
    assert "./prometheus/alerts.yml:/etc/prometheus-stack/alerts.yml:ro" in compose
    off = load_yaml(render({"PROMETHEUS_OUT_OF_ORDER_WINDOW": "0", "PROMETHEUS_RULE_FILES": ""}).stdout)
    assert "storage" not in off and "rule_files" not in off


@pytest.mark.parametrize(
    "name, value",
    [
        ("PROMETHEUS_SCRAPE_INTERVAL", "fast"),
        ("PROMETHEUS_SCRAPE_INTERVAL", "0"),
        ("PROMETHEUS_RETENTION", "30"),
        ("PROMETHEUS_OUT_OF_ORDER_WINDOW", "10 m"),
        ("PROMETHEUS_RETENTION_SIZE", "lots"),
    ],
)
def test_entrypoint_rejects_bad_values_in_one_line(name: str, value: str) -> None:
    proc = render({name: value})
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert f"{name}='{value}' is invalid" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.integration
def test_entrypoint_starts_real_prometheus_with_remote_write_and_retention(tmp_path: Path) -> None:
    port = free_port()
    env = {
        "PROMETHEUS_RETENTION": "2d",
        "PROMETHEUS_RETENTION_SIZE": "1GB",
        "PROMETHEUS_OUT_OF_ORDER_WINDOW": "5m",
    }
    entrypoint = entrypoint_process(tmp_path, port, env)
    binary = entrypoint.env["PROMETHEUS_BIN"] if entrypoint.env else ""
    url = f"http://127.0.0.1:{port}"
    with entrypoint:

        def flags() -> dict[str, str]:
            return dict(requests.get(f"{url}/api/v1/status/flags", timeout=2).json()["data"])

        data = entrypoint.wait_ready(flags, 30, "prometheus started by entrypoint.sh", interval=0.2)
        assert data["web.enable-remote-write-receiver"] == "true"
        assert data["storage.tsdb.retention.time"] == "2d"
        assert data["storage.tsdb.retention.size"] in ("1GB", "1GiB")  # shown in binary units by 2.x
        assert data["storage.tsdb.path"] == str(tmp_path / "data")
        assert data["config.file"] == str(tmp_path / "prometheus.yml")
        config = requests.get(f"{url}/api/v1/status/config", timeout=2).json()["data"]["yaml"]
        assert "out_of_order_time_window: 5m" in config
        # exec: the entrypoint's PID is Prometheus itself, so `docker stop` signals reach it.
        assert os.readlink(f"/proc/{entrypoint.pid}/exe") == os.path.realpath(binary)
    assert entrypoint.returncode == 0 and not entrypoint.killed


# --- AppArmor ------------------------------------------------------------------------------------------


def test_apparmor_profile_is_complete_and_parses() -> None:
    text = PROFILE.read_text()
    assert "{{" not in text and "}}" not in text, "template placeholder left in the profile"
    assert re.search(r"(?m)^profile docker-pyjoules flags=\(attach_disconnected,mediate_deleted\) \{", text)
    rules = [line.split("#")[0].strip() for line in text.splitlines() if line.split("#")[0].strip()]
    for rule in (
        "/sys/class/powercap/** r,",
        "/sys/devices/virtual/powercap/** r,",
        "deny mount,",
        "deny @{PROC}/kcore rwklx,",
        "deny /sys/firmware/** rwklx,",
        "deny /sys/kernel/security/** rwklx,",
    ):
        assert rule in rules, rule
    # Only read access is added: no powercap rule grants more than r, and no capability is named explicitly.
    assert all(r.endswith(" r,") for r in rules if "powercap" in r)
    assert not [r for r in rules if r.startswith("capability ")]
    parser = shutil.which("apparmor_parser") or (
        "/usr/sbin/apparmor_parser" if os.path.exists("/usr/sbin/apparmor_parser") else None
    )
    if parser is None:
        pytest.skip("apparmor_parser not installed (apt-get install apparmor)")
    proc = subprocess.run([parser, "-Q", "-K", str(PROFILE)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    bad = subprocess.run(
        [parser, "-Q", "-K", "/dev/stdin"],
        input=text.replace("deny mount,", "deny mount"),
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0  # the check can fail: a broken profile is refused


def test_apparmor_setup_script_is_executable_and_valid_bash() -> None:
    script = ROOT / "AppArmor" / "setup_docker-pyjoules.sh"
    assert os.access(script, os.X_OK)
    subprocess.run(["bash", "-n", str(script)], check=True)
    assert "apparmor_parser -r -W" in script.read_text()


# --- Grafana -------------------------------------------------------------------------------------------


def test_grafana_provisioning_files() -> None:
    datasources = load_yaml(DATASOURCE_FILE.read_text())["datasources"]
    assert len(datasources) == 1
    ds = datasources[0]
    assert (ds["uid"], ds["type"], ds["url"], ds["access"]) == (
        DATASOURCE_UID,
        "prometheus",
        "${PROMETHEUS_DATASOURCE_URL}",
        "proxy",
    )
    # Unprotected by default (plain compose, loopback): the stack's Prometheus over HTTP, no login.
    grafana = load_yaml((ROOT / "docker-compose.yml").read_text())["services"]["grafana"]
    assert grafana["environment"]["PROMETHEUS_DATASOURCE_URL"] == "${HELPER_PROMETHEUS_URL:-http://prometheus:9090}"
    assert grafana["environment"]["PROMETHEUS_DATASOURCE_BASIC_AUTH"] == "${HELPER_PROMETHEUS_SECURE:-false}"
    # The password and CA come from files Grafana reads itself (compose secrets), never from its environment.
    assert ds["secureJsonData"] == {
        "basicAuthPassword": "$__file{/run/secrets/prometheus_password}",
        "tlsCACert": "$__file{/run/secrets/prometheus_ca}",
    }
    assert set(grafana["secrets"]) == {"prometheus_password", "prometheus_ca"}
    assert not any("PASSWORD" in key and key != "GF_SECURITY_ADMIN_PASSWORD" for key in grafana["environment"])
    providers = load_yaml(PROVIDER_FILE.read_text())["providers"]
    assert providers[0]["type"] == "file"
    compose = (ROOT / "docker-compose.yml").read_text()
    assert f"./grafana/dashboards:{providers[0]['options']['path']}:ro" in compose
    home = re.search(r"GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH: (\S+)", compose).group(1)
    assert home.startswith(providers[0]["options"]["path"] + "/")
    assert (ROOT / "grafana" / "dashboards" / Path(home).name).is_file()


def test_dashboard_structure_units_and_datasource_references() -> None:
    dashboards = load_dashboards()
    assert "power.json" in dashboards
    dash = dashboards["power.json"]
    assert dash["uid"] == "power-monitoring"
    assert set(datasource_uids(dash)) == {DATASOURCE_UID}
    for panel in iter_panels(dash):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}, panel["title"]
        assert panel["fieldConfig"]["defaults"].get("unit"), f"{panel['title']} has no unit"
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == DATASOURCE_UID
    queries = panel_queries(dash)
    by_unit = {}
    for q in queries:
        by_unit.setdefault(q.unit, []).append(q.expr)
    exprs = " ".join(q.expr for q in queries)
    # Written on the power clients' naming contract, so any METRIC_PREFIX (and any power client) shows up.
    assert "pyjoules_remote_write" not in exprs
    assert any('{__name__=~".+_power_watts"' in e for e in by_unit["watt"])
    assert any('increase({__name__=~".+_energy_joules_total"' in e and "[$__range]" in e for e in by_unit["joule"])
    assert any("/ 3600" in e for e in by_unit["watth"])
    for metric in (
        '{__name__=~".+_energy_uj"',
        'ALERTS{alertstate="firing"',
        "monitoring_client_samples_sent_total",
        "monitoring_client_samples_dropped_total",
        "monitoring_client_push_duration_seconds_bucket",
        "monitoring_client_buffered_payloads",
        "monitoring_client_buffered_bytes",
    ):
        assert metric in exprs, metric
    for q in queries:
        assert 'host=~"$host"' in q.expr and 'source=~"$source"' in q.expr, f"{q.panel} ignores the variables"
    names = {v["name"]: v for v in variables(dash)}
    assert set(names) == {"host", "source"}
    for var in names.values():
        assert var["datasource"]["uid"] == DATASOURCE_UID
        selector, label = parse_label_values(variable_query(var))
        assert label == var["name"] and selector


@pytest.mark.integration
def test_every_dashboard_query_is_valid_promql(prometheus: PrometheusServer) -> None:
    values = {
        "host": "some-host",
        "source": "cpu-pyjoules",
        "__range": "1h",
        "__rate_interval": "40s",
        "__interval": "15s",
    }
    dash = load_dashboards()["power.json"]
    for q in panel_queries(dash):
        prometheus.query(substitute(q.expr, values))  # raises with Prometheus's parse error
    for var in variables(dash):
        selector, _ = parse_label_values(variable_query(var))
        prometheus.query(substitute(selector, values))


@pytest.mark.integration
def test_power_panels_show_a_client_with_any_metric_prefix(prometheus: PrometheusServer, tmp_path: Path) -> None:
    """cpu-pyjoules with a METRIC_PREFIX of its user's choosing: every power and energy panel shows it."""
    pytest.importorskip("cpu_pyjoules", reason="cpu-pyjoules not installed (./run-tests.sh installs it)")
    host = "prefix-host"
    env = dict(
        os.environ,
        MONITOR_IMPL=str(ROOT / "cpu-pyjoules" / "monitor_impl.py"),
        POWERCAP_ROOT=str(tmp_path / "powercap"),
        REMOTE_WRITE_URL=prometheus.write_url,
        METRIC_PREFIX="lab_cpu",
        HOST_LABEL=host,
        SCRAPE_INTERVAL_S="0.1",
        PUSH_INTERVAL_S="0.5",
    )
    values = {"host": host, "source": ".*", "__range": "1h", "__rate_interval": "40s", "__interval": "15s"}
    power_panels = [q for q in panel_queries(load_dashboards()["power.json"]) if q.unit in ("watt", "joule", "watth")]
    assert len(power_panels) >= 4
    with (
        FakeRaplTree(tmp_path / "powercap", {"package-0": 20, "core": 10}, tmp_path / "fake.log", update_ms=10),
        MonitoringClient(env, tmp_path / "client.log", cwd=tmp_path) as client,
    ):

        def every_panel_shows_the_client() -> bool:
            client.check_alive()
            return all(prometheus.query(substitute(q.expr, values)) for q in power_panels)

        wait_until(every_panel_shows_the_client, 60, interval=0.5, message="power panels show lab_cpu_* series")
    stored = prometheus.query(f'count by (__name__) ({{host="{host}"}})')
    assert {r["metric"]["__name__"] for r in stored} >= {"lab_cpu_power_watts", "lab_cpu_energy_joules_total"}
    assert not prometheus.query(f'{{__name__=~"pyjoules_remote_write_.+", host="{host}"}}')
