"""Start and stop the processes a benchmark measures: the fake RAPL tree and monitoring clients.

Everything is started here as a child process and stopped by the PID it got (SIGTERM, then SIGKILL if it
will not go), never by name, so nothing else running on the machine is touched. Clients run exactly as a
user runs them: ``python -m monitoring_client`` with environment variables, their log in a file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# BENCH_CPU_IMPL points the benchmarks at another checkout of cpu-pyjoules (to compare a change).
CPU_IMPL = Path(os.environ.get("BENCH_CPU_IMPL", REPO / "cpu-pyjoules" / "monitor_impl.py")).resolve()
SEED_IMPL = Path(__file__).resolve().parent / "seed_impl.py"
PROBE_IMPL = Path(__file__).resolve().parent / "probe_impl.py"


def _wait_for(predicate, timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")


def stop_process(proc: subprocess.Popen, timeout: float = 15.0, signalled: bool = False) -> int:  # type: ignore[type-arg]
    """SIGTERM ``proc`` by its PID (unless ``signalled`` already) and wait; SIGKILL after ``timeout``.

    Exactly one SIGTERM: the client treats a second one as "exit now without flushing". Returns the exit status.
    """
    if proc.poll() is None:
        if not signalled:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)
    return proc.returncode


class FakeTree:
    """``python -m cpu_pyjoules.fake_powercap``: a powercap tree whose counters advance in real time.

    It runs in its own process so that its CPU is not charged to what is measured.
    """

    def __init__(
        self,
        root: Path,
        watts: str = "package-0=25,core=15,uncore=2,dram=4",
        *,
        sockets: int = 1,
        psys: float | None = None,
        update_ms: float = 1.0,
        log: Path | None = None,
    ) -> None:
        self.root = Path(root)
        self.watts = watts
        self.sockets = sockets
        self.psys = psys
        self.update_ms = update_ms
        self.log = log or self.root.parent / f"{self.root.name}.log"
        self.proc: subprocess.Popen | None = None  # type: ignore[type-arg]

    def command(self) -> list[str]:
        cmd = [
            sys.executable,
            "-m",
            "cpu_pyjoules.fake_powercap",
            str(self.root),
            "--watts",
            self.watts,
            "--sockets",
            str(self.sockets),
            "--update-ms",
            f"{self.update_ms:g}",
        ]
        if self.psys is not None:
            cmd += ["--psys", f"{self.psys:g}"]
        return cmd

    def start(self, timeout: float = 20.0) -> FakeTree:
        counter = self.root / "intel-rapl" / "intel-rapl:0" / "energy_uj"
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        # Nice 10: the fake tree stands in for hardware, whose counters cost the CPU nothing, so it should
        # not take a core from the client being measured when both want one at the same moment.
        os.setpriority(os.PRIO_PROCESS, self.proc.pid, 10)

        def moving() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"fake powercap exited with {self.proc.returncode}; see {self.log}")
            try:
                first = int(counter.read_text())
                time.sleep(max(self.update_ms, 1.0) * 3 / 1000)
                return int(counter.read_text()) != first
            except (OSError, ValueError):
                return False

        _wait_for(moving, timeout, f"fake powercap counters moving under {self.root}")
        return self

    def zone_count(self) -> int:
        """Number of zones in the tree (directories holding an energy_uj)."""
        return sum(1 for _ in (self.root / "intel-rapl").rglob("energy_uj"))

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None

    def __enter__(self) -> FakeTree:  # noqa: PYI034
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Client:
    """One ``monitoring-client`` process (``python -m monitoring_client``) with its own environment."""

    def __init__(self, env: Mapping[str, str], log: Path, cwd: Path = REPO) -> None:
        self.env = dict(env)
        self.log = Path(log)
        self.cwd = cwd
        self.proc: subprocess.Popen | None = None  # type: ignore[type-arg]
        self.returncode: int | None = None
        self._signalled = False

    @property
    def pid(self) -> int:
        assert self.proc is not None, "client not started"
        return self.proc.pid

    def start(self) -> Client:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "monitoring_client"],
                env=self.env,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal_stop(self) -> None:
        """Send SIGTERM without waiting (to stop many clients at once)."""
        if self.alive() and not self._signalled:
            assert self.proc is not None
            self.proc.send_signal(signal.SIGTERM)
            self._signalled = True

    def stop(self, timeout: float = 15.0) -> int:
        assert self.proc is not None, "client not started"
        self.returncode = stop_process(self.proc, timeout, signalled=self._signalled)
        self._signalled = True
        return self.returncode

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def client_env(
    *,
    write_url: str,
    impl: Path,
    powercap_root: Path,
    interval_s: float,
    host: str,
    probe_out: Path | None = None,
    extra: Mapping[str, str] | None = None,
    base: Mapping[str, str] | None = None,
    push_interval_s: float | None = None,
    plan_env: Iterable[tuple[str, str]] = (),
) -> dict[str, str]:
    """Environment of a client run: the implementation (optionally behind the probe) and its settings."""
    env = dict(os.environ if base is None else base)
    env.update(
        REMOTE_WRITE_URL=write_url,
        SCRAPE_INTERVAL_S=f"{interval_s:g}",
        POWERCAP_ROOT=str(powercap_root),
        HOST_LABEL=host,
        LOG_LEVEL="WARNING",
    )
    if probe_out is not None:
        env.update(MONITOR_IMPL=str(PROBE_IMPL), BENCH_INNER_IMPL=str(impl), BENCH_PROBE_OUT=str(probe_out))
    else:
        env["MONITOR_IMPL"] = str(impl)
    if push_interval_s is not None:
        env["PUSH_INTERVAL_S"] = f"{push_interval_s:g}"
    env.update(plan_env)
    if extra:
        env.update(extra)
    return env


def start_all(clients: Sequence[Client]) -> None:
    for client in clients:
        client.start()


def stop_all(clients: Sequence[Client], timeout: float = 20.0) -> list[int]:
    """SIGTERM every client first, then wait for each: N clients shut down in parallel, not in series."""
    for client in clients:
        client.signal_stop()
    return [client.stop(timeout) for client in clients]
