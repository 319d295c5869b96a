"""One server and two client machines, as the README walks through them, on the test's Docker daemon.

Three compose projects from the same files and the real helper: a server (STACK_ROLE=server, protected with
PROMETHEUS_SECURITY=on, its certificate naming metrics.powermon.test) and two clients (STACK_ROLE=client) with
their own host labels that push to https://metrics.powermon.test:9090 with the user, the password (one from a
file, one as a value in the environment) and a copy of the server's CA, exactly as a user copies them. The
clients' projects join the server project's network (tests/stack/docker-compose.e2e-*.yml) instead of
crossing a LAN. Checked: the server's healthcheck logs in; anonymous requests are refused; each client gets
its credentials as files under /run/secrets, readable by its capability-less root and never in its
environment; and both hosts' series are complete in every dashboard query.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

from testkit.ports import free_port
from testkit.wait import wait_until

from .conftest import E2E
from .stack_e2e import HERE, PROJECT_PREFIX, STACK_SETTINGS, Stack, image_settings
from .stack_expect import dashboard_values, implausible, rapl_only

pytestmark = pytest.mark.e2e

FAKE_WATTS = {"package-0": 20.0, "core": 12.0, "dram": 3.0}
EXPECTED = rapl_only(FAKE_WATTS, scrape_interval_s=0.2, push_interval_s=1, range_s=30)
CLIENT = "cpu-pyjoules"
SERVER_NAME = "metrics.powermon.test"
USER = "powermon"


@dataclass
class Fleet:
    server: Stack
    clients: dict[str, Stack]  # by host label
    password: str


def client_supports_credential_files() -> bool:
    try:
        from monitoring_client.config import Config
        from monitoring_client.settings_table import rows
    except ImportError:
        return False
    return {"REMOTE_WRITE_USERNAME", "REMOTE_WRITE_PASSWORD_FILE", "REMOTE_WRITE_CA_FILE"} <= {
        row.variable for row in rows(Config)
    }


@pytest.fixture(scope="module")
def fleet(e2e: E2E, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    docker_env, e2e_images, fake_rapl, say = e2e.docker_env, e2e.images, e2e.fake_rapl, e2e.say
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (run ./run-tests.sh as root)")
    base = f"{PROJECT_PREFIX}{os.getpid()}-mh"
    work = tmp_path_factory.mktemp("multihost")
    password = secrets.token_urlsafe(24)
    common = {k: v for k, v in docker_env.items() if k not in STACK_SETTINGS}
    common.update(image_settings(e2e_images), E2E_NETWORK=f"{base}-net", BIND_ADDRESS="127.0.0.1")
    log = work / "helper.log"
    log.touch()
    (work / "no-gpus").mkdir()
    (work / "no-sysfs").mkdir()

    # The server machine: protected although it binds to loopback here (PROMETHEUS_SECURITY=on); its password
    # comes from the environment so the helper writes nothing into the repository's .env.local.
    prometheus_port, grafana_port = free_port(), free_port()
    server_env = {
        **common,
        "COMPOSE_PROJECT_NAME": f"{base}-server",
        "STACK_ROLE": "server",
        "PROMETHEUS_SECURITY": "on",
        "PROMETHEUS_AUTH_USERNAME": USER,
        "PROMETHEUS_AUTH_PASSWORD": password,
        "PROMETHEUS_TLS_SERVER_NAME": SERVER_NAME,
        "SECRETS_DIR": str(work / "server-secrets"),
        "PROMETHEUS_PORT": str(prometheus_port),
        "GRAFANA_PORT": str(grafana_port),
        "GF_SECURITY_ADMIN_PASSWORD": secrets.token_urlsafe(18),
        "EXTRA_COMPOSE_FILES": str(HERE / "docker-compose.e2e-server.yml"),
    }
    grafana = bool(e2e_images["grafana"].tag)
    server = Stack(
        server_env,
        server_env["COMPOSE_PROJECT_NAME"],
        f"https://127.0.0.1:{prometheus_port}",
        f"http://127.0.0.1:{grafana_port}" if grafana else None,
        "",
        server_env["GF_SECURITY_ADMIN_PASSWORD"],
        log,
    )
    server.session.trust_env = False
    started = time.monotonic()
    stacks = [server]
    try:
        proc = server.helper("up", "-d", *([] if grafana else ["prometheus"]), timeout=900)
        assert proc.returncode == 0, f"server up failed:\n{server.log_tail()}"
        ca = work / "server-secrets" / "ca.crt"
        server.session.verify = str(ca)
        server.session.auth = (USER, password)

        # Two client machines: each gets a copy of the CA and the password, as a user copies them.
        clients: dict[str, Stack] = {}
        for index, host in enumerate(("lab-host-a", "lab-host-b")):
            machine = work / host
            machine.mkdir()
            shutil.copy(ca, machine / "server-ca.crt")
            env = {
                **common,
                "COMPOSE_PROJECT_NAME": f"{base}-{host}",
                "STACK_ROLE": "client",
                "REMOTE_WRITE_URL": f"https://{SERVER_NAME}:9090/api/v1/write",
                "REMOTE_WRITE_USERNAME": USER,
                "REMOTE_WRITE_CA_FILE": str(machine / "server-ca.crt"),
                "SECRETS_DIR": str(machine / "secrets"),
                "HOST_LABEL": host,
                "POWERCAP_HOST_DIR": str(fake_rapl),
                # This test is about RAPL machines: no GPU or Jetson rails, whatever the host has.
                "HELPER_NVIDIA_GPUS": str(work / "no-gpus"),
                "JETSON_SYSFS_HOST_DIR": str(work / "no-sysfs"),
                "CLIENT_CPU_PYJOULES_SCRAPE_INTERVAL_S": str(EXPECTED.scrape_interval_s),
                "CLIENT_CPU_PYJOULES_PUSH_INTERVAL_S": str(EXPECTED.push_interval_s),
                "EXTRA_COMPOSE_FILES": f"{HERE / 'docker-compose.e2e.yml'}:{HERE / 'docker-compose.e2e-client.yml'}",
            }
            if index == 0:
                (machine / "password").write_text(password + "\n")
                (machine / "password").chmod(0o600)  # the helper stages it for the container's user
                env["REMOTE_WRITE_PASSWORD_FILE"] = str(machine / "password")
            else:
                env["REMOTE_WRITE_PASSWORD"] = password
            client = Stack(env, env["COMPOSE_PROJECT_NAME"], server.prometheus_url, None, host, "", log)
            stacks.append(client)
            build = ["--build"] if index == 0 else []  # the second machine reuses the built images
            proc = client.helper("up", "-d", *build, timeout=1800)
            assert proc.returncode == 0, f"client {host} up failed:\n{client.log_tail()}"
            clients[host] = client
        say(f"server and two clients up in {time.monotonic() - started:.0f}s (log: {log})")
        yield Fleet(server, clients, password)
    finally:
        for stack in reversed(stacks):  # clients first: the network belongs to the server project
            stack.helper("down", "-v", "--remove-orphans", timeout=300)
        server.session.close()


def test_server_is_protected_and_its_healthcheck_logs_in(fleet: Fleet) -> None:
    server = fleet.server
    wait_until(lambda: server.healthy(["prometheus"]), 180, interval=1, message="prometheus healthy (auth + TLS)")
    with requests.Session() as anonymous:
        anonymous.trust_env = False
        anonymous.verify = server.session.verify  # the server's CA: only the password is missing
        query = anonymous.get(f"{server.prometheus_url}/api/v1/query", params={"query": "up"}, timeout=10)
        assert query.status_code == 401
        assert anonymous.post(f"{server.prometheus_url}/api/v1/write", data=b"", timeout=10).status_code == 401
    wait_until(
        lambda: [r["value"][1] for r in server.query('up{job="prometheus"}')] == ["1"],
        60,
        interval=1,
        message="Prometheus's self-scrape logs in",
    )
    environment = server.container("prometheus")["Config"]["Env"]
    assert not [e for e in environment if fleet.password in e]


def test_clients_get_their_credentials_as_files_only(fleet: Fleet) -> None:
    for host, client in fleet.clients.items():
        container = client.container(CLIENT)
        env = dict(e.split("=", 1) for e in container["Config"]["Env"])
        assert env["REMOTE_WRITE_URL"] == f"https://{SERVER_NAME}:9090/api/v1/write"
        assert env["HOST_LABEL"] == host and env["REMOTE_WRITE_USERNAME"] == USER
        assert env["REMOTE_WRITE_PASSWORD_FILE"] == "/run/secrets/remote_write_password"
        assert env["REMOTE_WRITE_CA_FILE"] == "/run/secrets/remote_write_ca"
        assert not [e for e in container["Config"]["Env"] if fleet.password in e]
        # Readable where the client reads it, by its own user (uid 0 with every capability dropped).
        read = client.docker("exec", container["Id"], "cat", "/run/secrets/remote_write_password")
        assert read.strip() == fleet.password
        ca = client.docker("exec", container["Id"], "cat", "/run/secrets/remote_write_ca")
        assert ca.startswith("-----BEGIN CERTIFICATE-----")


def test_both_hosts_series_are_complete_in_every_dashboard_query(fleet: Fleet) -> None:
    if not client_supports_credential_files():
        pytest.skip("the base client has no REMOTE_WRITE_USERNAME/PASSWORD_FILE/CA_FILE settings yet (issue 11, 1)")
    hosts = sorted(fleet.clients)
    # Every dashboard query, for each host alone, as Grafana runs it with that host selected.
    problems: dict[str, list[str]] = {}

    def all_plausible() -> bool:
        for host in hosts:
            values = dashboard_values([host], [CLIENT], EXPECTED.range_s)
            problems[host] = implausible(fleet.server.query, values, EXPECTED)
        return not any(problems.values())

    try:
        wait_until(all_plausible, 240, interval=2, message="every dashboard query plausible for both hosts")
    except AssertionError:
        raise AssertionError(f"implausible or empty dashboard queries: {problems}") from None
    # Complete: over the last 20 s (ending 5 s ago, past any push in flight) every zone of every host holds a
    # sample per sampling interval.
    expected = 20 / EXPECTED.scrape_interval_s
    result = fleet.server.query("count_over_time(pyjoules_remote_write_power_watts[20s] offset 5s)")
    counts = {(r["metric"]["host"], r["metric"]["zone"]): float(r["value"][1]) for r in result}
    assert set(counts) == {(h, z) for h in hosts for z in EXPECTED.zones}
    assert all(count >= expected - 2 for count in counts.values()), counts
    for client in fleet.clients.values():
        wait_until(lambda c=client: c.healthy([CLIENT]), 120, interval=1, message=f"{client.host_label} healthy")


def test_grafana_on_the_server_reads_the_protected_prometheus(fleet: Fleet) -> None:
    server = fleet.server
    if server.grafana_url is None:
        pytest.skip("Grafana image not in the daemon (no registry here has it): its datasource is checked against a"
                    " protected Prometheus by test_stack_secure.py")  # fmt: skip
    auth = ("admin", server.password)
    wait_until(lambda: requests.get(f"{server.grafana_url}/api/health", timeout=5).ok, 180, message="grafana up")
    health = requests.post(f"{server.grafana_url}/api/datasources/uid/prometheus/health", auth=auth, timeout=30)
    if health.status_code == 404:  # older API location
        health = requests.get(f"{server.grafana_url}/api/datasources/uid/prometheus/health", auth=auth, timeout=30)
    assert health.status_code == 200, health.text
