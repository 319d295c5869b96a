"""docker-compose.victoriametrics.yml for real, without Docker: the dashboard against VictoriaMetrics.

The override makes Prometheus forward every stored sample to VictoriaMetrics and points Grafana at it. Here
the same chain runs on 127.0.0.1 with the real binaries (Debian's victoria-metrics package): a cpu-pyjoules
client at known watts pushes to Prometheus started by prometheus/entrypoint.sh with the override's
PROMETHEUS_REMOTE_WRITE_URL, VictoriaMetrics runs with the override's flags, and every dashboard query is
run against VictoriaMetrics and checked for plausibility exactly as the stack test checks Prometheus.
Then vmauth in front of VictoriaMetrics, as the README's growth table describes for a cluster: a client
pushes through it with basic auth, and the dashboard's queries answer through it only with the password.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from testkit.client import MonitoringClient
from testkit.fake_rapl import FakeRaplTree
from testkit.ports import free_port
from testkit.victoriametrics import VictoriaMetricsServer, VmAuth, find_victoria_metrics

from .stack_entrypoint import entrypoint_process
from .stack_expect import dashboard_values, implausible, rapl_only
from .stack_yaml import compose_interpolate, load_yaml

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
OVERRIDE = load_yaml((ROOT / "docker-compose.victoriametrics.yml").read_text())
FAKE_WATTS = {"package-0": 25.0, "core": 15.0, "dram": 4.0}
EXPECTED = rapl_only(FAKE_WATTS, scrape_interval_s=0.2, push_interval_s=1, range_s=30)
CLIENT = "cpu-pyjoules"


def override_flags() -> list[str]:
    """The override's VictoriaMetrics flags with their defaults, less the two this test sets itself."""
    flags = [compose_interpolate(flag, {}) for flag in OVERRIDE["services"]["victoriametrics"]["command"]]
    return [f for f in flags if not f.startswith(("-storageDataPath=", "-httpListenAddr="))]


def client_env(tmp_path: Path, url: str, host: str) -> dict[str, str]:
    pytest.importorskip("cpu_pyjoules", reason="cpu-pyjoules not installed (./run-tests.sh installs it)")
    return dict(
        os.environ,
        MONITOR_IMPL=str(ROOT / "cpu-pyjoules" / "monitor_impl.py"),
        POWERCAP_ROOT=str(tmp_path / "powercap"),
        REMOTE_WRITE_URL=url,
        HOST_LABEL=host,
        SCRAPE_INTERVAL_S=str(EXPECTED.scrape_interval_s),
        PUSH_INTERVAL_S=str(EXPECTED.push_interval_s),
        HEALTH_PORT=str(free_port()),
    )


@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[VictoriaMetricsServer]:
    if find_victoria_metrics() is None:
        pytest.skip("victoria-metrics is not installed (run ./run-tests.sh as root: it installs the package)")
    with VictoriaMetricsServer(tmp_path / "vm", override_flags()) as server:
        yield server


def test_override_forwards_everything_and_the_dashboard_works_unchanged(
    victoria: VictoriaMetricsServer, tmp_path: Path
) -> None:
    forward = OVERRIDE["services"]["prometheus"]["environment"]["PROMETHEUS_REMOTE_WRITE_URL"]
    assert re.fullmatch(r"http://victoriametrics:8428/api/v1/write", forward)
    assert OVERRIDE["services"]["grafana"]["environment"]["PROMETHEUS_DATASOURCE_URL"] == "http://victoriametrics:8428"
    port = free_port()
    env = {
        "PROMETHEUS_OUT_OF_ORDER_WINDOW": "10m",
        "PROMETHEUS_RULE_FILES": str(ROOT / "prometheus" / "alerts.yml"),
        "PROMETHEUS_REMOTE_WRITE_URL": forward.replace("victoriametrics:8428", f"127.0.0.1:{victoria.port}"),
    }
    prometheus = entrypoint_process(tmp_path, port, env)
    host = "vm-host"
    with (
        prometheus,
        FakeRaplTree(tmp_path / "powercap", FAKE_WATTS, tmp_path / "fake.log", wrap_joules=600, update_ms=10),
        MonitoringClient(client_env(tmp_path, f"http://127.0.0.1:{port}/api/v1/write", host), tmp_path / "c.log"),
    ):
        prometheus.wait_ready(lambda: requests.get(f"http://127.0.0.1:{port}/-/ready", timeout=1).ok, 30, "ready")
        problems: list[str] = []

        def all_plausible() -> bool:
            problems[:] = implausible(victoria.query, dashboard_values([host], [CLIENT], EXPECTED.range_s), EXPECTED)
            return not problems

        try:
            prometheus.wait_ready(all_plausible, 240, "every dashboard query plausible on VictoriaMetrics", 2)
        except AssertionError:
            raise AssertionError("implausible or empty dashboard queries:\n" + "\n".join(problems)) from None
        # The dashboard's variables (label_values over /api/v1/series) offer this host and client.
        offered = victoria.series(f'monitoring_client_samples_sent_total{{host="{host}"}}')
        assert {(s["host"], s["source"]) for s in offered} == {(host, CLIENT)}
        # Besides, not instead: Prometheus holds the same series, and VictoriaMetrics every sample of it that
        # Prometheus had 20 s ago (forwarding lags by a batch, at most 5 s).
        selector = f'pyjoules_remote_write_power_watts{{host="{host}",component="package-0"}}'
        now = requests.get(f"http://127.0.0.1:{port}/api/v1/query", params={"query": "time()"}, timeout=5).json()
        then = float(now["data"]["result"][0]) - 20
        query = {"query": f"count_over_time({selector}[15s])", "time": then}
        in_prometheus = requests.get(f"http://127.0.0.1:{port}/api/v1/query", params=query, timeout=5).json()
        victoria.flush()
        in_victoria = victoria.query(query["query"], at=then)
        counts = [r["value"][1] for r in in_prometheus["data"]["result"]]
        assert counts and float(counts[0]) >= 15 / EXPECTED.scrape_interval_s * 0.8
        assert [r["value"][1] for r in in_victoria] == counts


def test_vmauth_in_front_takes_writes_and_queries_only_with_the_password(
    victoria: VictoriaMetricsServer, tmp_path: Path
) -> None:
    user, password = "lab-a", "vmauth-test-password"
    users = [{"username": user, "password": password, "url_prefix": victoria.url}]
    with VmAuth(tmp_path / "vmauth", users, auth=(user, password)) as auth:
        host = "vmauth-host"
        password_file = tmp_path / "password"
        password_file.write_text(password + "\n")
        env = client_env(tmp_path, f"{auth.url}/api/v1/write", host)
        env.update(REMOTE_WRITE_USERNAME=user, REMOTE_WRITE_PASSWORD_FILE=str(password_file))
        with (
            FakeRaplTree(tmp_path / "powercap", FAKE_WATTS, tmp_path / "fake.log", update_ms=10),
            MonitoringClient(env, tmp_path / "c.log") as client,
        ):

            def stored() -> bool:
                victoria.flush()
                return bool(auth.query(f'pyjoules_remote_write_energy_joules_total{{host="{host}"}}'))

            client.wait_ready(stored, 60, "samples written and read through vmauth", interval=0.5)
        anonymous = requests.get(f"{auth.url}/api/v1/query", params={"query": "1"}, timeout=5)
        assert anonymous.status_code == 401
        wrong = requests.get(f"{auth.url}/api/v1/query", params={"query": "1"}, auth=(user, "wrong"), timeout=5)
        assert wrong.status_code in (400, 401) and "success" not in wrong.text  # 1.79 says 400 to unknown users
        assert password not in client.log_text()
