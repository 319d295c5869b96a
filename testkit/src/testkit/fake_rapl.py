"""A fake RAPL powercap tree advancing in real time, in its own process (``cpu_pyjoules.fake_powercap``).

Tests and benchmarks that run a real client need counters that move while the client reads them, driven
from outside the process under test (as hardware would be), so the tree runs as a separate program whose
CPU is not the client's. Requires cpu-pyjoules installed (./run-tests.sh does it).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

from testkit.process import ManagedProcess


def watts_spec(watts: str | Mapping[str, float]) -> str:
    """``{"package-0": 25, "core": 15}`` as the tool's ``--watts`` argument ``package-0=25,core=15``."""
    if isinstance(watts, str):
        return watts
    return ",".join(f"{name}={value:g}" for name, value in watts.items())


class FakeRaplTree(ManagedProcess):
    """``python -m cpu_pyjoules.fake_powercap ROOT --watts ...``; ``start()`` returns once counters move."""

    def __init__(
        self,
        root: Path,
        watts: str | Mapping[str, float],
        log_path: Path | None = None,
        *,
        sockets: int = 1,
        psys_watts: float | None = None,
        update_ms: float | None = None,
        wrap_joules: float | None = None,
        nice: int = 0,
    ) -> None:
        self.root = Path(root)
        argv = [sys.executable, "-m", "cpu_pyjoules.fake_powercap", str(self.root), "--watts", watts_spec(watts)]
        argv += ["--sockets", str(sockets)]
        if psys_watts is not None:
            argv += ["--psys", f"{psys_watts:g}"]
        if update_ms is not None:
            argv += ["--update-ms", f"{update_ms:g}"]
        if wrap_joules is not None:
            argv += ["--wrap-joules", f"{wrap_joules:g}"]
        self.update_ms = update_ms or 1.0
        log = log_path or self.root.parent / f"{self.root.name}.log"
        super().__init__(argv, log, name="fake_powercap", nice=nice)

    @property
    def first_counter(self) -> Path:
        return self.root / "intel-rapl" / "intel-rapl:0" / "energy_uj"

    def start(self, timeout: float = 30.0) -> FakeRaplTree:
        """Start the tool and wait until the first zone's counter advances (the tree is built and live)."""
        super().start()
        seen: list[int] = []

        def moving() -> bool:
            try:
                seen.append(int(self.first_counter.read_text()))
            except (OSError, ValueError):
                return False
            return len(set(seen[-2:])) == 2

        interval = max(self.update_ms, 1.0) * 3 / 1000
        self.wait_ready(moving, timeout, f"counters moving under {self.root}", interval=interval)
        return self

    def zone_count(self) -> int:
        """Zones in the tree (directories holding an ``energy_uj``)."""
        return sum(1 for _ in (self.root / "intel-rapl").rglob("energy_uj"))
