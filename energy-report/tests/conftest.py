"""Fixtures for energy-report's tests: real servers fed by the project's real clients on fake hardware.

* ``power_clients``: a fake RAPL tree of known watts (``testkit.fake_rapl``) and the real
  ``monitoring-client`` with cpu-pyjoules pushing it (``testkit.client``); a client can be stopped and
  started again (a restart resets its joules counter, as in production);
* ``tls_material``: a CA, a server certificate for 127.0.0.1 and a bcrypt-protected user in a Prometheus web
  config (``testkit.webconfig``);
* ``store``: a real Prometheus shared by one module's tests (each test's data under its own host label);
* ``run_report``: the ``energy-report`` command as a real process (exit status, stdout, stderr).

Every process is started by testkit and stopped by its PID. Helpers are reached through fixtures only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from testkit.client import MonitoringClient
from testkit.fake_rapl import FakeRaplTree
from testkit.prometheus import PrometheusServer, find_prometheus
from testkit.wait import wait_until
from testkit.webconfig import issue_cert, make_ca, write_web_config

REPO = Path(__file__).resolve().parents[2]
CPU_IMPL = REPO / "cpu-pyjoules" / "monitor_impl.py"
PREFIX = "pyjoules_remote_write"
# Known watts per zone of the fake tree; psys is the whole platform (the host's total).
WATTS = {"package-0": 25.0, "core": 15.0, "dram": 4.0}
PSYS_W = 40.0
ZONE_WATTS = {"intel-rapl:0": 25.0, "intel-rapl:0:0": 15.0, "intel-rapl:0:1": 4.0, "intel-rapl:1": 40.0}


def instant(url: str, promql: str, at: float | None = None, session: requests.Session | None = None) -> list[Any]:
    """An instant query against any Prometheus-compatible server (independent of energy-report's code)."""
    params: dict[str, Any] = {"query": promql}
    if at is not None:
        params["time"] = f"{at:.3f}"
    resp = (session or requests).get(f"{url}/api/v1/query", params=params, timeout=30)
    body = resp.json()
    if body.get("status") != "success":
        raise RuntimeError(f"query {promql!r} failed: {body.get('error', resp.text)}")
    return list(body["data"]["result"])


class PowerClient:
    """A fake tree at known watts and the real client pushing it: ``stop_client``, ``start_client``."""

    def __init__(self, workdir: Path, tree_root: Path, write_url: str, host: str, extra_env: Mapping[str, str]):
        self.host = host
        self.pushing_since = 0.0  # set by the tests once the first samples are stored
        self.tree = FakeRaplTree(tree_root, WATTS, workdir / f"{host}-tree.log", psys_watts=PSYS_W)
        env = {k: v for k, v in os.environ.items() if k not in ("SERVICE_LABEL", "METRIC_PREFIX", "SPOOL_DIR")}
        env.update(
            MONITOR_IMPL=str(CPU_IMPL),
            POWERCAP_ROOT=str(tree_root),
            REMOTE_WRITE_URL=write_url,
            SCRAPE_INTERVAL_S="0.1",
            PUSH_INTERVAL_S="0.5",
            HOST_LABEL=host,
            LOG_LEVEL="WARNING",
            **extra_env,
        )
        self.client = MonitoringClient(env, workdir / f"{host}-client.log", name=f"client {host}", cwd=workdir)

    def start(self) -> PowerClient:
        self.tree.start()
        self.client.start()
        return self

    def stop_client(self) -> int | None:
        return self.client.stop(must_exit=True)

    def start_client(self) -> PowerClient:
        self.client.start()
        return self

    def close(self) -> None:
        self.client.stop()
        self.tree.stop()


@pytest.fixture(scope="module")
def tmpfs_dir() -> Iterator[Path]:
    """A directory in memory when /dev/shm exists: fake counters there never stall on disk writeback."""
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    path = Path(tempfile.mkdtemp(prefix="energy-report-test-", dir=base))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def power_clients(tmp_path_factory: pytest.TempPathFactory, tmpfs_dir: Path) -> Iterator[Callable[..., PowerClient]]:
    """``power_clients(write_url, host, **extra_env)`` starts a tree and a client; all stopped after the module.

    Module scope: the tests of one module share their servers and clients (each on its own ``host``), which
    keeps the suite's load on a small CI machine down.
    """
    made: list[PowerClient] = []
    workdir = tmp_path_factory.mktemp("power-clients")

    def make(write_url: str, host: str, **extra_env: str) -> PowerClient:
        client = PowerClient(workdir, tmpfs_dir / host, write_url, host, extra_env)
        made.append(client)
        return client.start()

    yield make
    for client in made:
        client.close()


@pytest.fixture(scope="module")
def wait_samples() -> Callable[..., None]:
    """``wait_samples(url, host, after)``: until every zone of ``host`` has a sample newer than ``after``."""

    def wait(url: str, host: str, after: float, session: requests.Session | None = None, timeout: float = 90) -> None:
        def ready() -> bool:
            promql = f'timestamp({PREFIX}_energy_joules_total{{host="{host}"}})'
            result = instant(url, promql, session=session)
            return len(result) == len(ZONE_WATTS) and all(float(r["value"][1]) > after for r in result)

        wait_until(ready, timeout=timeout, interval=0.25, message=f"samples of {host} after {after:.3f}")

    return wait


@dataclass
class Ran:
    status: int
    stdout: str
    stderr: str


@pytest.fixture(scope="module")
def run_report() -> Callable[..., Ran]:
    """``run_report(*args, env=None, timeout=180)``: the real command, as a user runs it."""

    def run(*args: str, env: Mapping[str, str] | None = None, timeout: float = 180) -> Ran:
        full_env = dict(os.environ)
        for name in list(full_env):
            if name.startswith("PROMETHEUS_") or name.startswith("ENERGY_REPORT_"):
                full_env.pop(name)
        full_env.update(env or {})
        done = subprocess.run(
            [sys.executable, "-m", "energy_report", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=full_env,
            check=False,
        )
        return Ran(done.returncode, done.stdout, done.stderr)

    return run


@dataclass
class TlsMaterial:
    ca: Path
    username: str
    password: str
    password_file: Path
    web_config: Path


@pytest.fixture(scope="module")
def tls_material(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    """A CA, a server certificate for 127.0.0.1 and a bcrypt-protected user, in a Prometheus web config."""
    pytest.importorskip("bcrypt", reason="python bcrypt missing: ./run-tests.sh installs it")
    if shutil.which("openssl") is None:
        pytest.skip("openssl not found: ./run-tests.sh installs it (apt-get install openssl)")
    d = tmp_path_factory.mktemp("tls")
    ca = make_ca(d)
    username, password = "reporter", os.urandom(12).hex()  # made per run: no password lives in the repository
    (d / "password").write_text(password + "\n")
    web = write_web_config(d / "web.yml", users={username: password}, tls=issue_cert(ca, d, "server"))
    return TlsMaterial(ca.cert, username, password, d / "password", web)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """A real Prometheus shared by one module's tests (each test's data under its own host label)."""
    if find_prometheus() is None:
        pytest.skip("Prometheus binary not found: run ./run-tests.sh (installs it) or set PROMETHEUS_BIN")
    with PrometheusServer(tmp_path_factory.mktemp("prometheus")) as server:
        yield server
