"""prometheus/entrypoint.sh on the real Prometheus binary, outside Docker, for the integration tests.

The container runs the entrypoint with the environment docker-compose.yml gives it; here the same script
runs on 127.0.0.1 with that environment plus where to find the binary and where to keep its files.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import pytest

from testkit.process import ManagedProcess

ENTRYPOINT = Path(__file__).resolve().parents[2] / "prometheus" / "entrypoint.sh"


def entrypoint_process(workdir: Path, port: int, env: Mapping[str, str]) -> ManagedProcess:
    """The entrypoint listening on 127.0.0.1:``port``, its configuration and data under ``workdir``; ``env``
    adds to (or overrides) that. Skips the test when Prometheus is not installed."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus is not installed (run ./run-tests.sh as root)")
    full = {
        "PATH": os.environ["PATH"],
        "PROMETHEUS_BIN": binary,
        "PROMETHEUS_CONFIG_FILE": str(workdir / "prometheus.yml"),
        "PROMETHEUS_DATA_DIR": str(workdir / "data"),
        "PROMETHEUS_LISTEN_ADDRESS": f"127.0.0.1:{port}",
        **env,
    }
    return ManagedProcess(["sh", str(ENTRYPOINT)], workdir / "prometheus.log", name="prometheus", env=full)
