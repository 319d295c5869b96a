"""A Docker daemon for the end-to-end test: the one DOCKER_HOST already names, or our own dockerd.

CI machines have the docker.io package but no running daemon, and a developer may already run one. So: if
`docker info` answers for the current environment, use that daemon untouched. Otherwise, when root and
`dockerd` exists, start a private daemon on a socket in a temporary directory, with a fixed data root so
images (stand-ins, built layers) are reused between runs, and stop it by its PID afterwards.

Network rules for our own daemon (see shared/GUIDE.md): `--ip-masq=false` keeps containers from reaching
anything beyond this machine; iptables stays on because the embedded DNS needs it; `--bridge=none` leaves
the default docker0 bridge alone (compose creates its own network), so a host daemon's docker0 is never
disturbed.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable, Mapping

DEFAULT_DATA_ROOT = Path(os.environ.get("POWERMON_TEST_DOCKER_DATA_ROOT", "/var/lib/powermon-test-docker"))


class DockerUnavailable(Exception):
    """No daemon can be used; the message says what is missing (the test skips with it)."""


def docker_answers(env: Mapping[str, str], timeout: float = 20) -> bool:
    if shutil.which("docker", path=env.get("PATH")) is None:
        return False
    try:
        proc = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            env=dict(env), capture_output=True, text=True, timeout=timeout,
        )
    except (subprocess.TimeoutExpired, OSError):
        return False
    return proc.returncode == 0


class DockerDaemon:
    """``start()`` returns the environment (DOCKER_HOST) to use; ``stop()`` ends only a daemon we started."""

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        data_root: Path = DEFAULT_DATA_ROOT,
        log: Callable[[str], None] = print,
    ) -> None:
        self.environ = dict(os.environ if environ is None else environ)
        self.data_root = data_root
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.rundir: Path | None = None
        self.env: dict[str, str] = {}

    @property
    def started_here(self) -> bool:
        return self.proc is not None

    def start(self, timeout: float = 90) -> dict[str, str]:
        if shutil.which("docker", path=self.environ.get("PATH")) is None:
            raise DockerUnavailable("the docker CLI is not installed (apt-get install docker.io)")
        if docker_answers(self.environ):
            self.log(f"[docker] using the running daemon at {self.environ.get('DOCKER_HOST', 'the default socket')}")
            self.env = dict(self.environ)
            return self.env
        dockerd = shutil.which("dockerd", path=self.environ.get("PATH"))
        if dockerd is None:
            raise DockerUnavailable("no Docker daemon answers and dockerd is not installed (apt-get install docker.io)")
        if os.geteuid() != 0:
            raise DockerUnavailable("no Docker daemon answers and starting dockerd needs root")
        self.rundir = Path(tempfile.mkdtemp(prefix="pm-dockerd-"))  # short: unix socket paths are limited
        socket_path = self.rundir / "docker.sock"
        self.data_root.mkdir(parents=True, exist_ok=True)
        args = [
            dockerd,
            "--host", f"unix://{socket_path}",
            "--data-root", str(self.data_root),
            "--exec-root", str(self.rundir / "exec"),
            "--pidfile", str(self.rundir / "docker.pid"),
            "--ip-masq=false",
            "--bridge=none",
        ]
        log = open(self.rundir / "dockerd.log", "wb")  # noqa: SIM115 - handed to the child
        try:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            log.close()
        self.env = dict(self.environ)
        self.env["DOCKER_HOST"] = f"unix://{socket_path}"
        deadline = time.monotonic() + timeout
        while not docker_answers(self.env, timeout=10):
            if self.proc.poll() is not None:
                raise DockerUnavailable(f"dockerd exited with {self.proc.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise DockerUnavailable(f"dockerd did not answer within {timeout:g}s:\n{self.log_tail()}")
            time.sleep(0.5)
        self.log(f"[docker] started dockerd (pid {self.proc.pid}) on {self.env['DOCKER_HOST']}, data in {self.data_root}")
        return self.env

    def log_tail(self, lines: int = 20) -> str:
        if self.rundir is None:
            return ""
        try:
            text = (self.rundir / "dockerd.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 60) -> None:
        """SIGTERM the dockerd we started (by PID; it stops its containerd), SIGKILL if it hangs."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
        if self.rundir is not None:
            self._unmount_below(self.rundir)
            shutil.rmtree(self.rundir, ignore_errors=True)
            self.rundir = None

    @staticmethod
    def _unmount_below(directory: Path) -> None:
        """dockerd leaves its default network namespace bind-mounted under the exec root: unmount it."""
        try:
            lines = Path("/proc/self/mounts").read_text().splitlines()
        except OSError:
            return
        prefix = str(directory) + "/"
        points = [line.split()[1] for line in lines if len(line.split()) > 1 and line.split()[1].startswith(prefix)]
        for point in sorted(points, key=len, reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True, timeout=30)
