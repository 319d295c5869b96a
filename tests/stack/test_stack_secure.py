"""A protected server, as the helper sets it up, run for real without Docker.

The real helper (with fake docker tools, stack_helper_fakes) generates the CA, the certificate, the password
and its bcrypt hash; the test lays the files out as Compose mounts them at /run/secrets, and starts
prometheus/entrypoint.sh on the real Prometheus with the environment docker-compose.yml gives the container.
Then everything that must keep working with auth and TLS on is checked against it: anonymous and wrong
requests are refused on the write and the query endpoints; Grafana's provisioned datasource (expanded as
Grafana expands it) logs in and verifies the certificate; the self-scrape and the healthcheck log in; and a
client of the same stack pushes with the credentials the helper gave it.
"""

from __future__ import annotations

import base64
import http.client
import os
import re
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
import requests

from testkit.client import MonitoringClient
from testkit.fake_rapl import FakeRaplTree
from testkit.ports import free_port
from testkit.process import ManagedProcess
from testkit.wait import wait_until

from .stack_dashboard import provisioned_datasource
from .stack_entrypoint import ENTRYPOINT, entrypoint_process
from .stack_helper_fakes import HelperStack
from .stack_yaml import compose_interpolate, load_yaml

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = load_yaml((ROOT / "docker-compose.yml").read_text())


@dataclass
class Protected:
    helper_env: dict[str, str]  # what the helper handed to Compose
    secrets: Path  # the files Compose would mount at /run/secrets
    port: int
    password: str
    prometheus: ManagedProcess
    entrypoint_env: dict[str, str]

    @property
    def ca(self) -> str:
        return str(self.secrets / "prometheus_ca")

    def session(self, auth: tuple[str, str] | None) -> requests.Session:
        session = requests.Session()
        session.trust_env = False
        session.verify = self.ca
        session.auth = auth
        return session

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}{path}"


def service_environment(service: str, helper_env: Mapping[str, str], secrets: Path) -> dict[str, str]:
    """The environment Compose gives ``service``, with /run/secrets/ pointing at the test's copy."""
    raw = COMPOSE["services"][service]["environment"]
    env = {k: compose_interpolate(str(v), helper_env) for k, v in raw.items()}
    return {k: v.replace("/run/secrets/", f"{secrets}/") for k, v in env.items()}


def mount_secrets(helper_env: Mapping[str, str], secrets: Path) -> None:
    """Each compose secret at its name, pointing at the file the helper chose (or secrets/empty)."""
    secrets.mkdir()
    for name, spec in COMPOSE["secrets"].items():
        source = ROOT / compose_interpolate(spec["file"], helper_env)  # relative: to the compose file
        assert source.is_file(), f"secret {name}: {source} does not exist"
        (secrets / name).symlink_to(source)


@pytest.fixture
def protected(tmp_path: Path) -> Iterator[Protected]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (run ./run-tests.sh as root)")
    pytest.importorskip("bcrypt", reason="bcrypt is a test requirement (./run-tests.sh installs it)")
    helper = HelperStack(tmp_path)
    proc = helper.run("up", "-d", env={"BIND_ADDRESS": "192.0.2.10"})  # all-in-one, reachable: protected
    assert proc.returncode == 0, proc.stderr
    helper_env = {k: v for k, v in helper.compose_calls()[-1]["env"].items() if v is not None}
    secrets = tmp_path / "run-secrets"
    mount_secrets(helper_env, secrets)
    password = (secrets / "prometheus_password").read_text()
    port = free_port()
    env = {
        **service_environment("prometheus", helper_env, secrets),
        "PROMETHEUS_RULE_FILES": "",
        "PROMETHEUS_SCRAPE_INTERVAL": "1s",
    }
    process = entrypoint_process(tmp_path, port, env)
    assert process.env is not None
    env = process.env
    server = Protected(helper_env, secrets, port, password, process, env)
    with process:
        session = server.session(("powermon", password))
        process.wait_ready(lambda: session.get(server.url("/-/ready"), timeout=2).ok, 30, "ready over TLS")
        yield server
        session.close()


def test_write_and_query_endpoints_refuse_anonymous_and_wrong_passwords(protected: Protected) -> None:
    for auth in (None, ("powermon", "wrong-password"), ("someone", protected.password)):
        with protected.session(auth) as session:
            assert session.get(protected.url("/api/v1/query"), params={"query": "up"}, timeout=5).status_code == 401
            assert session.post(protected.url("/api/v1/write"), data=b"", timeout=5).status_code == 401
    with protected.session(("powermon", protected.password)) as session:
        assert session.get(protected.url("/api/v1/query"), params={"query": "up"}, timeout=5).status_code == 200
        # Authenticated, the write endpoint is reached (and refuses an empty body as bad data, not as a login).
        assert session.post(protected.url("/api/v1/write"), data=b"", timeout=5).status_code == 400
    plain = requests.get(f"http://127.0.0.1:{protected.port}/-/ready", timeout=5)  # TLS only
    assert plain.status_code == 400 and "HTTPS" in plain.text


def grafana_request(datasource: Mapping[str, Any], port: int, path: str, params: Mapping[str, str]) -> tuple[int, str]:
    """One request as Grafana's datasource proxy makes it: to the datasource URL's host name (here reached at
    127.0.0.1), verifying the certificate against tlsCACert, with basic auth when basicAuth is true."""
    url = urlsplit(datasource["url"])
    ca = datasource["secureJsonData"]["tlsCACert"]
    context = ssl.create_default_context(cadata=ca or None)
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=context)
    connection.sock = context.wrap_socket(sock, server_hostname=url.hostname)
    headers = {}
    if str(datasource["basicAuth"]).lower() == "true":
        token = f"{datasource['basicAuthUser']}:{datasource['secureJsonData']['basicAuthPassword']}"
        headers["Authorization"] = "Basic " + base64.b64encode(token.encode()).decode()
    try:
        connection.request("GET", f"{path}?{urlencode(params)}", headers=headers)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def test_grafana_datasource_logs_in_and_verifies_the_certificate(protected: Protected) -> None:
    grafana_env = service_environment("grafana", protected.helper_env, protected.secrets)
    datasource = provisioned_datasource(grafana_env, protected.secrets)
    assert datasource["url"] == "https://prometheus:9090"  # the name in the certificate, a compose alias
    assert datasource["basicAuth"] == "true" and datasource["basicAuthUser"] == "powermon"
    assert datasource["secureJsonData"]["basicAuthPassword"] == protected.password
    status, body = grafana_request(datasource, protected.port, "/api/v1/query", {"query": "1"})
    assert status == 200 and '"status":"success"' in body
    # The certificate check is real: a certificate for another name, or no CA, is refused.
    other = {**datasource, "url": "https://not-in-the-certificate:9090"}
    with pytest.raises(ssl.SSLCertVerificationError):
        grafana_request(other, protected.port, "/api/v1/query", {"query": "1"})
    no_ca = {**datasource, "secureJsonData": {**datasource["secureJsonData"], "tlsCACert": ""}}
    with pytest.raises(ssl.SSLCertVerificationError):
        grafana_request(no_ca, protected.port, "/api/v1/query", {"query": "1"})


def test_self_scrape_and_healthcheck_log_in(protected: Protected) -> None:
    session = protected.session(("powermon", protected.password))

    def self_scraped() -> bool:
        body = session.get(protected.url("/api/v1/query"), params={"query": 'up{job="prometheus"}'}, timeout=5).json()
        return [r["value"][1] for r in body["data"]["result"]] == ["1"]

    wait_until(self_scraped, 30, interval=0.5, message="the self-scrape logs in over TLS (up == 1)")

    def healthcheck(password_file: str) -> subprocess.CompletedProcess[str]:
        env = {**protected.entrypoint_env, "PROMETHEUS_AUTH_PASSWORD_FILE": password_file}
        return subprocess.run(["sh", str(ENTRYPOINT), "--healthcheck"], env=env, capture_output=True, text=True)

    assert healthcheck(protected.entrypoint_env["PROMETHEUS_AUTH_PASSWORD_FILE"]).returncode == 0
    wrong = protected.secrets.parent / "wrong-password"
    wrong.write_text("not-the-password")
    assert healthcheck(str(wrong)).returncode != 0


def client_supports_credential_files() -> bool:
    config = pytest.importorskip("monitoring_client.config", reason="the base client is not installed")
    from monitoring_client.settings_table import rows

    return {"REMOTE_WRITE_USERNAME", "REMOTE_WRITE_PASSWORD_FILE", "REMOTE_WRITE_CA_FILE"} <= {
        row.variable for row in rows(config.Config)
    }


def test_a_client_of_the_stack_pushes_with_the_credentials_the_helper_gave_it(
    protected: Protected, tmp_path: Path
) -> None:
    if not client_supports_credential_files():
        pytest.skip(
            "the base client has no REMOTE_WRITE_USERNAME/_PASSWORD_FILE/_CA_FILE settings yet (issue 11 item 1)"
        )
    pytest.importorskip("cpu_pyjoules", reason="cpu-pyjoules not installed (./run-tests.sh installs it)")
    env = service_environment("cpu-pyjoules", protected.helper_env, protected.secrets)
    assert env["REMOTE_WRITE_URL"] == "https://prometheus:9090/api/v1/write"
    assert env["REMOTE_WRITE_PASSWORD_FILE"] == f"{protected.secrets}/remote_write_password"
    env = {k: v for k, v in env.items() if v}
    host = "secure-client"
    env.update(
        PATH=os.environ["PATH"],
        # "prometheus" resolves only inside the compose network; the certificate also names 127.0.0.1.
        REMOTE_WRITE_URL=protected.url("/api/v1/write"),
        MONITOR_IMPL=str(ROOT / "cpu-pyjoules" / "monitor_impl.py"),
        POWERCAP_ROOT=str(tmp_path / "powercap"),
        SPOOL_DIR=str(tmp_path / "spool"),
        HEALTH_PORT=str(free_port()),
        HOST_LABEL=host,
        SCRAPE_INTERVAL_S="0.1",
        PUSH_INTERVAL_S="0.5",
    )
    session = protected.session(("powermon", protected.password))

    def stored() -> int:
        params = {"query": f'count_over_time(pyjoules_remote_write_power_watts{{host="{host}"}}[5m])'}
        result = session.get(protected.url("/api/v1/query"), params=params, timeout=5).json()["data"]["result"]
        return sum(int(r["value"][1]) for r in result)

    with (
        FakeRaplTree(tmp_path / "powercap", {"package-0": 20, "core": 10}, tmp_path / "fake.log", update_ms=10),
        MonitoringClient(env, tmp_path / "client.log", cwd=tmp_path) as client,
    ):
        client.wait_ready(lambda: stored() >= 40, 60, "samples stored through basic auth and TLS", interval=0.5)
    assert protected.password not in client.log_text()
    assert not re.search(r"\b401\b", client.log_text())
