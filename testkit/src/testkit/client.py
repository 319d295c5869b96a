"""The real ``monitoring-client`` command as a managed process: the one launcher of every suite and bench.

Tests and benchmarks run the client exactly as a user does (the installed command, configured only by
environment variables), so what they measure is what ships.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from testkit.process import ManagedProcess

if TYPE_CHECKING:
    from testkit.prometheus import PrometheusServer


def client_command() -> list[str]:
    """The installed ``monitoring-client`` script beside this interpreter, else ``python -m monitoring_client``."""
    script = Path(sys.executable).parent / "monitoring-client"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "monitoring_client"]


class MonitoringClient(ManagedProcess):
    """One ``monitoring-client`` process with its own environment; output in ``log_path``."""

    def __init__(
        self, env: Mapping[str, str], log_path: Path, *, name: str = "client", cwd: Path | None = None
    ) -> None:
        super().__init__(client_command(), log_path, name=name, env=env, cwd=cwd)

    @property
    def host(self) -> str:
        """The client's ``host`` label (HOST_LABEL), which tells its series apart in Prometheus."""
        return (self.env or {}).get("HOST_LABEL", "")

    def wait_for_samples(
        self, prometheus: PrometheusServer, selector: str, count: int, what: str, timeout: float = 120
    ) -> None:
        """Until ``prometheus`` holds ``count`` samples of ``selector``; fails at once, with the client's log,
        if the client exits meanwhile."""
        self.wait_ready(lambda: prometheus.count_samples(selector) >= count, timeout, what, interval=0.5)
