"""Fixtures for energy-report's tests: real servers fed by the project's real client on fake hardware.

* ``power_clients``: ONE launcher for a fake RAPL tree of known watts (``cpu_pyjoules.fake_powercap``, in
  its own process, on tmpfs) and a real ``monitoring-client`` with cpu-pyjoules pushing it to a server;
  clients can be stopped and started again (a restart resets their joules counter, as in production).
* ``victoria_metrics``: the real ``victoria-metrics`` binary on 127.0.0.1 (skips with a reason without it).
* ``tls_material``: a CA and a server certificate for IP 127.0.0.1 made with ``openssl``, and a bcrypt hash
  (python ``bcrypt``) for Prometheus's ``--web.config.file``.
* ``run_report``: the ``energy-report`` command as a real process (exit status, stdout, stderr).

Every process is started here and stopped by its PID. Helpers are reached through fixtures only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from bench.processes import stop_process  # the repository's one stop-by-PID routine (testkit's, once unified)
from testkit.ports import free_port
from testkit.prometheus import PrometheusServer, find_prometheus
from testkit.wait import GiveUp, wait_until

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


@dataclass
class PowerClient:
    """A fake tree at known watts and the real client pushing it: ``start``, ``stop_client``, ``start_client``."""

    workdir: Path
    tree_root: Path
    write_url: str
    host: str
    extra_env: Mapping[str, str] = field(default_factory=dict)
    tree: subprocess.Popen[bytes] | None = None
    client: subprocess.Popen[bytes] | None = None
    starts: int = 0
    pushing_since: float = 0.0  # set by the tests once the first samples are stored

    def start(self) -> PowerClient:
        log = open(self.workdir / f"{self.host}-tree.log", "ab")  # noqa: SIM115 - handed to the child
        watts = ",".join(f"{k}={v:g}" for k, v in WATTS.items())
        cmd = [sys.executable, "-m", "cpu_pyjoules.fake_powercap", str(self.tree_root), "--watts", watts]
        self.tree = subprocess.Popen([*cmd, "--psys", f"{PSYS_W:g}"], stdout=log, stderr=log)
        log.close()
        log_path = self.workdir / f"{self.host}-tree.log"

        def running() -> bool:
            if self.tree is not None and self.tree.poll() is not None:
                raise GiveUp(f"fake powercap exited: {log_path.read_text()}")
            return "advancing counters" in log_path.read_text()

        wait_until(running, timeout=60, interval=0.1, message="fake powercap tree running")
        return self.start_client()

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        for name in ("SERVICE_LABEL", "METRIC_PREFIX", "MAX_ZONE_POWER_W", "SPOOL_DIR", "HEALTH_PORT"):
            env.pop(name, None)
        env.update(
            MONITOR_IMPL=str(CPU_IMPL),
            POWERCAP_ROOT=str(self.tree_root),
            REMOTE_WRITE_URL=self.write_url,
            SCRAPE_INTERVAL_S="0.1",
            PUSH_INTERVAL_S="0.5",
            HOST_LABEL=self.host,
            LOG_LEVEL="WARNING",
        )
        env.update(self.extra_env)
        return env

    def start_client(self) -> PowerClient:
        assert self.client is None or self.client.poll() is not None, "client already running"
        self.starts += 1
        log = open(self.workdir / f"{self.host}-client-{self.starts}.log", "ab")  # noqa: SIM115
        self.client = subprocess.Popen(
            [sys.executable, "-m", "monitoring_client"], env=self.env(), stdout=log, stderr=log, cwd=self.workdir
        )
        log.close()
        return self

    def stop_client(self) -> int:
        assert self.client is not None
        status = stop_process(self.client)
        return status

    def client_log(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.workdir.glob(f"{self.host}-client-*.log")))

    def close(self) -> None:
        if self.client is not None:
            stop_process(self.client)
        if self.tree is not None:
            stop_process(self.tree)


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


class VictoriaMetrics:
    """The real single-node VictoriaMetrics on a free loopback port, its own data directory."""

    def __init__(self, workdir: Path, binary: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.write_url = f"{self.url}/api/v1/write"
        self.workdir = workdir
        self.log = workdir / "victoria-metrics.log"
        args = [
            binary,
            f"-httpListenAddr=127.0.0.1:{self.port}",
            f"-storageDataPath={workdir / 'data'}",
            "-retentionPeriod=1d",
            "-search.latencyOffset=0s",  # show just-written samples at once (the default hides the last 30 s)
            "-search.disableCache",
        ]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=log, start_new_session=True)

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise GiveUp(f"victoria-metrics exited: {self.log.read_text()[-2000:]}")
            return requests.get(f"{self.url}/health", timeout=1).status_code == 200

        wait_until(ready, timeout=60, interval=0.1, message=f"victoria-metrics ready on {self.url}")

    def flush(self) -> None:
        """Make everything written so far searchable at once."""
        requests.get(f"{self.url}/internal/force_flush", timeout=10)

    def stop(self) -> None:
        stop_process(self.proc)


@pytest.fixture(scope="module")
def victoria_metrics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaMetrics]:
    binary = os.environ.get("VICTORIA_METRICS_BIN") or shutil.which("victoria-metrics")
    if binary is None:
        pytest.skip("victoria-metrics not found: ./run-tests.sh installs it (apt-get install victoria-metrics)")
    workdir = tmp_path_factory.mktemp("vm")
    server = VictoriaMetrics(workdir, binary)
    try:
        yield server
    finally:
        server.stop()


@dataclass
class TlsMaterial:
    ca: Path
    cert: Path
    key: Path
    username: str
    password: str
    password_file: Path
    web_config: Path


@pytest.fixture(scope="module")
def tls_material(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    """CA + server certificate (subjectAltName IP:127.0.0.1) by openssl; a bcrypt-protected user."""
    bcrypt = pytest.importorskip("bcrypt", reason="python bcrypt missing: ./run-tests.sh installs it")
    if shutil.which("openssl") is None:
        pytest.skip("openssl not found (apt-get install openssl)")
    d = tmp_path_factory.mktemp("tls")

    def ossl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d, timeout=60)

    ossl(*"req -x509 -newkey rsa:2048 -nodes -days 2 -keyout ca.key -out ca.pem".split(), "-subj", "/CN=test CA")
    ossl(*"req -newkey rsa:2048 -nodes -keyout server.key -out server.csr".split(), "-subj", "/CN=127.0.0.1")
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    ossl(*"x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext".split(),
         "-out", "server.pem")  # fmt: skip
    username = "reporter"
    password = os.urandom(12).hex()  # made per test run: no password lives in the repository
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode()
    (d / "password").write_text(password + "\n")
    web = d / "web.yml"
    web.write_text(
        "tls_server_config:\n"
        f"  cert_file: {d / 'server.pem'}\n"
        f"  key_file: {d / 'server.key'}\n"
        "basic_auth_users:\n"
        f"  {username}: {hashed}\n"
    )
    return TlsMaterial(d / "ca.pem", d / "server.pem", d / "server.key", username, password, d / "password", web)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """A real Prometheus shared by one module's tests (each test's data under its own host label)."""
    if find_prometheus() is None:
        pytest.skip("Prometheus binary not found: run ./run-tests.sh (installs it) or set PROMETHEUS_BIN")
    with PrometheusServer(tmp_path_factory.mktemp("prometheus")) as server:
        yield server
