"""REMOTE_WRITE_HEADERS on every request, the protocol's own headers untouched, checked by a recording proxy
in front of a real Prometheus that stores every sample; a protocol header in the setting is refused."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from monitoring_client import __version__
from testkit.client import client_command
from testkit.fault_proxy import FaultProxy
from testkit.prometheus import PrometheusServer

from .helpers import assert_all_stored, complete_run, seq_run

pytestmark = pytest.mark.integration

PROTOCOL = {
    "Content-Encoding": "snappy",
    "Content-Type": "application/x-protobuf",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
    "User-Agent": f"monitoring-client/{__version__}",
}


def test_extra_headers_reach_the_receiver_and_every_sample_arrives(
    tmp_path: Path, prometheus: PrometheusServer
) -> None:
    with FaultProxy(prometheus.url) as proxy:
        headers = "X-Scope-OrgID=lab-a,X-Api-Key=not-a-real-key"
        tally, client = complete_run(tmp_path, prometheus, proxy.write_url, REMOTE_WRITE_HEADERS=headers)
    assert_all_stored(tally, client)
    exchanges = proxy.snapshot()
    assert exchanges
    for exchange in exchanges:
        headers = dict(exchange.headers)
        assert headers["X-Scope-OrgID"] == "lab-a" and headers["X-Api-Key"] == "not-a-real-key"
        assert {name: headers.get(name) for name in PROTOCOL} == PROTOCOL
        assert "Authorization" not in headers
    assert "not-a-real-key" not in client.log_text()


@pytest.mark.parametrize(
    "value", ["Content-Type=text/plain", "X-Prometheus-Remote-Write-Version=2.0", "Authorization=Basic eDp5"]
)
def test_a_protocol_header_or_authorization_is_refused_at_start(tmp_path: Path, value: str) -> None:
    env = seq_run(tmp_path, PrometheusServer.__new__(PrometheusServer)).client_env(
        "http://127.0.0.1:9/api/v1/write", REMOTE_WRITE_HEADERS=value
    )
    result = subprocess.run(
        client_command(), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("REMOTE_WRITE_HEADERS=") and value.split("=")[0] in line
    assert value.split("=", 1)[1] not in line
