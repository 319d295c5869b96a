"""What the Docker end-to-end tests share: a compose project driven by the real helper, and the images.

Each project is started by ./docker-compose_helper.sh exactly as a user starts one, on the test's Docker
daemon (tests/stack/conftest.py: the running one, or a private dockerd stopped by its PID afterwards).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from testkit.promql import QueryApi

from .stack_images import Docker, ImageChoice, build_prometheus_standin, build_python_standin, resolve

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
HELPER = ROOT / "docker-compose_helper.sh"
PROJECT_PREFIX = "powermon-e2e-"
# Kept out of every project's environment: a developer's shell settings must not change what is tested.
STACK_SETTINGS = {
    "COMPOSE_FILE",
    "COMPOSE_PROFILES",
    "PRIVILEGED",
    "RAPL_ACCESS",
    "HELPER_NVIDIA_GPUS",
    "STACK_ROLE",
    "PROMETHEUS_SECURITY",
    "REMOTE_WRITE_URL",
}


def env_file_value(name: str) -> str:
    for line in (ROOT / ".env").read_text().splitlines():
        if line.startswith(name + "="):
            return line.split("=", 1)[1].strip()
    raise KeyError(name)


@dataclass
class Stack(QueryApi):
    """One compose project: its environment (the helper's settings), URLs and a log of the helper's output;
    queries go to its Prometheus (``query``, ``count_samples``) through ``session``."""

    env: dict[str, str]
    project: str
    prometheus_url: str
    grafana_url: str | None
    host_label: str
    password: str
    log: Path
    session: requests.Session = field(default_factory=requests.Session)

    def helper(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        with open(self.log, "a") as out:
            out.write(f"\n$ docker-compose_helper.sh {' '.join(args)}\n")
            out.flush()
            return subprocess.run(
                [str(HELPER), *args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=timeout,
                cwd=ROOT,
            )

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def docker(self, *args: str, check: bool = True) -> str:
        proc = subprocess.run(["docker", *args], env=self.env, capture_output=True, text=True, timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)}: {proc.stderr}")
        return proc.stdout

    def container(self, service: str) -> dict[str, Any]:
        ids = self.docker(
            "ps",
            "-a",
            "-q",
            "--filter",
            f"label=com.docker.compose.project={self.project}",
            "--filter",
            f"label=com.docker.compose.service={service}",
        ).split()
        assert len(ids) == 1, f"expected one {service} container, found {ids}"
        return dict(json.loads(self.docker("inspect", ids[0]))[0])

    def healthy(self, services: list[str]) -> bool:
        return all(self.container(s)["State"].get("Health", {}).get("Status") == "healthy" for s in services)

    @property
    def url(self) -> str:  # type: ignore[override]  # QueryApi's server URL: this project's Prometheus
        return self.prometheus_url

    def leftovers(self) -> dict[str, list[str]]:
        label = f"label=com.docker.compose.project={self.project}"
        found = {
            "containers": self.docker("ps", "-a", "-q", "--filter", label).split(),
            "volumes": self.docker("volume", "ls", "-q", "--filter", label).split(),
            "networks": self.docker("network", "ls", "-q", "--filter", label).split(),
        }
        names = (
            self.docker("volume", "ls", "-q").split() + self.docker("network", "ls", "--format", "{{.Name}}").split()
        )
        found["named"] = [n for n in names if n.startswith(self.project + "_")]
        return {k: v for k, v in found.items() if v}


def resolve_images(docker: Docker, say: Callable[[str], None]) -> dict[str, ImageChoice]:
    images: dict[str, ImageChoice] = {}
    try:
        images["python"] = resolve(docker, env_file_value("PYTHON_IMAGE"), lambda: build_python_standin(docker))
        images["prometheus"] = resolve(
            docker, env_file_value("PROMETHEUS_IMAGE"), lambda: build_prometheus_standin(docker, images["python"].tag)
        )
    except RuntimeError as exc:
        pytest.skip(f"upstream images unavailable and no stand-in could be built: {exc}")
    images["grafana"] = resolve(docker, env_file_value("GRAFANA_IMAGE"), None)
    for role, choice in images.items():
        kind = "upstream" if not choice.standin else "STAND-IN" if choice.tag else "UNAVAILABLE"
        say(f"{role}: {kind} {choice.tag or '(none)'} for {choice.requested}: {choice.reason}")
    if not images["grafana"].tag:
        say("grafana: not started; its provisioning files and every dashboard query are checked instead")
    return images


def image_settings(images: dict[str, ImageChoice]) -> dict[str, str]:
    """The image variables of every e2e project (client images under their own names, built once)."""
    return {
        "PYTHON_IMAGE": images["python"].tag,
        "PROMETHEUS_IMAGE": images["prometheus"].tag,
        "GRAFANA_IMAGE": images["grafana"].tag or env_file_value("GRAFANA_IMAGE"),
        "BASE_MONITORING_CLIENT_IMAGE": "powermon-e2e/base-monitoring-client:latest",
        "CPU_PYJOULES_IMAGE": "powermon-e2e/cpu-pyjoules:latest",
        "GPU_NVML_IMAGE": "powermon-e2e/gpu-nvml:latest",
        "JETSON_INA3221_IMAGE": "powermon-e2e/jetson-ina3221:latest",
    }
