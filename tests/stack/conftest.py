"""Fixtures of the Docker end-to-end tests, shared by every e2e module so that one daemon and one set of
images serve them all (resolved lazily: the other stack tests never touch Docker)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from testkit.fake_rapl import FakeRaplTree

from .stack_docker import DockerDaemon, DockerUnavailable
from .stack_e2e import PROJECT_PREFIX, resolve_images
from .stack_images import Docker, ImageChoice


@pytest.fixture(scope="session")
def say(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Print to the terminal even while pytest captures output: stand-in use must be visible in CI logs."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")

    def emit(message: str) -> None:
        if reporter is None or capture is None:
            print(f"[stack e2e] {message}", file=sys.stderr, flush=True)
            return
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"[stack e2e] {message}")

    return emit


@pytest.fixture(scope="session")
def docker_env(say: Callable[[str], None]) -> Iterator[dict[str, str]]:
    daemon = DockerDaemon(log=say)
    try:
        env = daemon.start()
    except DockerUnavailable as exc:
        pytest.skip(f"no usable Docker daemon: {exc}")
    try:
        for leftover in daemon.remove_leftovers(PROJECT_PREFIX):
            say(f"removed leftover of an interrupted run: {leftover}")
        yield env
    finally:
        daemon.remove_leftovers(PROJECT_PREFIX)
        daemon.stop()


@pytest.fixture(scope="session")
def e2e_images(docker_env: dict[str, str], say: Callable[[str], None]) -> dict[str, ImageChoice]:
    return resolve_images(Docker(docker_env, log=say), say)


@pytest.fixture(scope="module")
def fake_rapl(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fake powercap tree at the requesting module's ``FAKE_WATTS`` (per zone name), mounted by its stacks
    as the host's /sys/devices/virtual/powercap."""
    watts: dict[str, float] = dict(request.module.FAKE_WATTS)
    root = tmp_path_factory.mktemp("powercap")
    with FakeRaplTree(root, watts, root.parent / "fake_powercap.log", wrap_joules=600, update_ms=10):
        yield root


@dataclass(frozen=True)
class E2E:
    """What every e2e stack fixture needs: the daemon's environment, the images, the fake RAPL tree and the
    terminal."""

    docker_env: dict[str, str]
    images: dict[str, ImageChoice]
    fake_rapl: Path
    say: Callable[[str], None]


@pytest.fixture(scope="module")
def e2e(
    docker_env: dict[str, str], e2e_images: dict[str, ImageChoice], fake_rapl: Path, say: Callable[[str], None]
) -> E2E:
    return E2E(docker_env, e2e_images, fake_rapl, say)
