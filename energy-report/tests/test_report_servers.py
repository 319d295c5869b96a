"""energy-report against the other servers people run: VictoriaMetrics, and Prometheus behind TLS + basic auth.

Both are real binaries on 127.0.0.1 fed by the real cpu-pyjoules client on a fake RAPL tree of known watts.
The Python API (``EnergyWindow``) is exercised here too, against the TLS server.
"""

from __future__ import annotations

import csv
import json
import time
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

from energy_report import EnergyWindow
from energy_report.server import Connection
from testkit.prometheus import PrometheusServer, find_prometheus
from testkit.wait import wait_until

pytestmark = pytest.mark.integration

PREFIX = "pyjoules_remote_write"
ZONE_WATTS = {"intel-rapl:0": 25.0, "intel-rapl:0:0": 15.0, "intel-rapl:0:1": 4.0, "intel-rapl:1": 40.0}
REL_SHORT = 0.01  # windows of 3-5 s: see test_report_prometheus.py for why not 0.5 %


def vm_ready(vm, host: str, after: float) -> bool:
    vm.flush()
    body = requests.get(
        f"{vm.url}/api/v1/query",
        params={"query": f'timestamp({PREFIX}_energy_joules_total{{host="{host}"}})'},
        timeout=10,
    ).json()
    result = body["data"]["result"]
    return len(result) == len(ZONE_WATTS) and all(float(r["value"][1]) > after for r in result)


def test_window_and_export_against_victoria_metrics(victoria_metrics, power_clients, run_report, tmp_path):
    vm = victoria_metrics
    power_clients(vm.write_url, "vm-host")
    started = time.time()
    wait_until(lambda: vm_ready(vm, "vm-host", started), timeout=90, interval=0.5, message="data in VM")
    start = time.time()
    wait_until(lambda: vm_ready(vm, "vm-host", start + 6), timeout=90, interval=0.5, message="6 s of data in VM")
    end = start + 5
    ran = run_report(
        "window", "--prometheus", vm.url, "--start", f"{start:.3f}", "--end", f"{end:.3f}", "--json", "-",
    )  # fmt: skip
    assert ran.status == 0, ran.stderr
    doc = json.loads(ran.stdout)
    zones = {s["zone"]: s for s in doc["series"]}
    assert set(zones) == set(ZONE_WATTS)
    for zone, watts in ZONE_WATTS.items():
        assert zones[zone]["joules"] == pytest.approx(watts * 5, rel=REL_SHORT), zone
        # a loaded machine may delay a tick or two: such an interval is listed, but the counter measured it
        assert zones[zone]["coverage"] == pytest.approx(1.0) and zones[zone]["joules_estimated_gaps"] == 0
        assert all(g["measured"] for g in zones[zone]["gaps"])

    out = tmp_path / "vm.csv"
    ran = run_report(
        "export", "--prometheus", vm.url, "--start", f"{start:.3f}", "--end", f"{end:.3f}", "--csv", str(out),
        "--chunk-samples", "200",
    )  # fmt: skip
    assert ran.status == 0, ran.stderr
    rows = list(csv.DictReader(out.open()))
    # VictoriaMetrics' own raw export API counts the stored samples independently of PromQL
    expected = 0
    for metric in ("energy_joules_total", "power_watts"):
        lines = requests.get(
            f"{vm.url}/api/v1/export",
            params={"match[]": f"{PREFIX}_{metric}", "start": f"{start:.3f}", "end": f"{end:.3f}"},
            timeout=30,
        ).text.splitlines()
        for line in lines:
            stamps = json.loads(line)["timestamps"]
            expected += sum(1 for t in stamps if round(start * 1000) <= t <= round(end * 1000))
    assert len(rows) == expected > 5 * 10 * 2 * len(ZONE_WATTS) * 0.8


@pytest.fixture(scope="module")
def tls_store(tmp_path_factory, tls_material):
    if find_prometheus() is None:
        pytest.skip("Prometheus binary not found: run ./run-tests.sh (installs it) or set PROMETHEUS_BIN")
    server = PrometheusServer(
        tmp_path_factory.mktemp("tls-prometheus"),
        web_config=tls_material.web_config,
        ca_file=tls_material.ca,
        auth=(tls_material.username, tls_material.password),
    )
    with server:
        yield server


def with_credentials(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{parts.netloc}"))


@pytest.fixture(scope="module")
def tls_host(tls_store, tls_material, power_clients, wait_samples):
    """The real client pushing over TLS with basic auth (credentials in its URL, CA through SSL_CERT_FILE)."""
    url = with_credentials(tls_store.write_url, tls_material.username, tls_material.password)
    power_clients(url, "tls-host", SSL_CERT_FILE=str(tls_material.ca))
    wait_samples(tls_store.url, "tls-host", time.time(), session=tls_store.session)
    return tls_store.session


def test_tls_and_basic_auth_options_and_their_errors(
    tls_store, tls_material, tls_host, run_report, wait_samples, tmp_path
):
    start = time.time()
    wait_samples(tls_store.url, "tls-host", start + 4.5, session=tls_host)
    span = ("--start", f"{start:.3f}", "--end", f"{start + 4:.3f}")
    window = ("window", "--prometheus", tls_store.url, *span, "--json", "-", "--quiet")
    auth = ("--username", tls_material.username, "--password-file", str(tls_material.password_file))
    ran = run_report(*window, *auth, "--ca-file", str(tls_material.ca))
    assert ran.status == 0, ran.stderr
    zones = {s["zone"]: s for s in json.loads(ran.stdout)["series"]}
    assert zones["intel-rapl:0"]["joules"] == pytest.approx(25.0 * 4, rel=REL_SHORT)
    # the same through the environment
    env = {
        "PROMETHEUS_URL": tls_store.url,
        "PROMETHEUS_USERNAME": tls_material.username,
        "PROMETHEUS_PASSWORD_FILE": str(tls_material.password_file),
        "PROMETHEUS_CA_FILE": str(tls_material.ca),
    }
    assert run_report("window", *span, "--quiet", env=env).status == 0
    # wrong password: one line naming the options, exit 3, and the secret never shown
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-password\n")
    refused = run_report(*window, "--username", tls_material.username, "--password-file", str(wrong),
                         "--ca-file", str(tls_material.ca))  # fmt: skip
    assert refused.status == 3 and "refused the credentials (HTTP 401)" in refused.stderr
    assert "not-the-password" not in refused.stderr and tls_material.password not in refused.stderr
    # no CA: the certificate cannot be verified; the message names --ca-file
    untrusted = run_report(*window, *auth)
    assert untrusted.status == 3 and "--ca-file" in untrusted.stderr and "certificate verify failed" in untrusted.stderr
    # plain http to a TLS port
    plain = run_report(*window, *auth, "--prometheus", tls_store.url.replace("https://", "http://"))
    assert plain.status == 3, plain.stderr
    missing = run_report(*window, "--username", "x", "--password-file", str(tmp_path / "absent"))
    assert missing.status == 2 and "--password-file" in missing.stderr
    for result in (refused, untrusted, plain, missing):
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_energy_window_api_over_tls_returns_the_report_objects(tls_store, tls_material, tls_host):
    conn = Connection(
        url=tls_store.url,
        username=tls_material.username,
        password_file=tls_material.password_file,
        ca_file=tls_material.ca,
    )
    with EnergyWindow("phase", prometheus=conn, match=['{host="tls-host"}'], wait_s=60) as window:
        wait_until(lambda: time.time() - (window.start or 0) >= 3, timeout=10, interval=0.05, message="3 s phase")
    report = window.result
    assert report is not None and report.name == "phase"
    seconds = report.end - report.start
    zones = {s.labels["zone"]: s for s in report.series}
    for zone, watts in ZONE_WATTS.items():
        assert zones[zone].energy.joules == pytest.approx(watts * seconds, rel=REL_SHORT), zone
    again = EnergyWindow("again", prometheus=conn, match=['{host="tls-host"}']).begin()
    wait_until(lambda: time.time() - (again.start or 0) >= 1, timeout=10, interval=0.05, message="1 s phase")
    second = again.end()
    assert second is again.result and second.as_dict()["series"][0]["host"] == "tls-host"
