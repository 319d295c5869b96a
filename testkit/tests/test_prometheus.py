"""The launcher itself: if it lies about readiness or restarts, every integration test lies too."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests

from testkit.prometheus import PrometheusServer
from testkit.wait import GiveUp, wait_until
from testkit.webconfig import issue_cert, make_ca, write_web_config

pytestmark = pytest.mark.integration


def test_serves_queries_and_survives_restart(prometheus: PrometheusServer) -> None:
    first_pid = prometheus.pid
    assert first_pid is not None
    assert requests.get(f"{prometheus.url}/-/ready", timeout=5).status_code == 200
    prometheus.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{prometheus.url}/-/ready", timeout=2)
    prometheus.start()
    assert prometheus.pid not in (None, first_pid)
    # Prometheus scrapes nothing here; the `up`-less server still answers an arithmetic query.
    assert prometheus.query("vector(2)")[0]["value"][1] == "2"


def test_wait_until_reports_last_value(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="last value: 0"):
        wait_until(lambda: 0, timeout=0.2, interval=0.01, message="never")
    start = time.monotonic()
    assert wait_until(lambda: time.monotonic() - start > 0.05 and "ok", timeout=5) == "ok"


def test_start_failure_shows_log(tmp_path: Path, prometheus: PrometheusServer) -> None:
    clash = PrometheusServer(tmp_path / "clash", port=prometheus.port)
    with pytest.raises(GiveUp, match="address already in use"):
        clash.start(timeout=20)
    assert clash.pid is None


def test_web_config_with_tls_and_basic_auth_protects_queries_and_writes(tmp_path: Path) -> None:
    pytest.importorskip("bcrypt", reason="bcrypt not installed (./run-tests.sh installs requirements-test.txt)")
    ca = make_ca(tmp_path / "pki")
    server_pair = issue_cert(ca, tmp_path / "pki", "prometheus")
    web = write_web_config(tmp_path / "web.yml", users={"pusher": "s3cret-for-tests"}, tls=server_pair)
    with PrometheusServer(
        tmp_path / "prom", web_config=web, auth=("pusher", "s3cret-for-tests"), ca_file=ca.cert
    ) as server:
        assert server.url.startswith("https://127.0.0.1:")
        assert server.query("vector(3)")[0]["value"][1] == "3"
        anonymous = requests.get(f"{server.url}/api/v1/query", params={"query": "1"}, verify=str(ca.cert), timeout=5)
        assert anonymous.status_code == 401
        wrong = requests.post(server.write_url, data=b"", auth=("pusher", "wrong"), verify=str(ca.cert), timeout=5)
        assert wrong.status_code == 401
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"{server.url}/-/ready", timeout=5)  # the system trust store does not know our CA


def test_mutual_tls_refuses_a_client_without_certificate(tmp_path: Path) -> None:
    ca = make_ca(tmp_path / "pki")
    server_pair = issue_cert(ca, tmp_path / "pki", "prometheus")
    client_pair = issue_cert(ca, tmp_path / "pki", "client", client=True)
    web = write_web_config(tmp_path / "web.yml", tls=server_pair, client_ca=ca.cert)
    with PrometheusServer(
        tmp_path / "prom", web_config=web, ca_file=ca.cert, client_cert=(client_pair.cert, client_pair.key)
    ) as server:
        assert server.query("vector(1)")[0]["value"][1] == "1"
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"{server.url}/-/ready", verify=str(ca.cert), timeout=5)
