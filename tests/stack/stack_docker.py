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
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from testkit.process import ManagedProcess
from testkit.wait import GiveUp

DEFAULT_DATA_ROOT = Path(os.environ.get("POWERMON_TEST_DOCKER_DATA_ROOT", "/var/lib/powermon-test-docker"))


class DockerUnavailable(Exception):
    """No daemon can be used; the message says what is missing (the test skips with it)."""


def docker_answers(env: Mapping[str, str], timeout: float = 20) -> bool:
    if shutil.which("docker", path=env.get("PATH")) is None:
        return False
    try:
        proc = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=timeout,
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
        self.process: ManagedProcess | None = None
        self.rundir: Path | None = None
        self.env: dict[str, str] = {}

    @property
    def started_here(self) -> bool:
        return self.process is not None

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
        holder = self._daemon_using(self.data_root)
        if holder is not None:
            raise DockerUnavailable(
                f"dockerd pid {holder} (not answering here) already uses {self.data_root}; two daemons on one data "
                "root corrupt it: stop that one, or set POWERMON_TEST_DOCKER_DATA_ROOT to another directory"
            )
        self.rundir = Path(tempfile.mkdtemp(prefix="pm-dockerd-"))  # short: unix socket paths are limited
        socket_path = self.rundir / "docker.sock"
        self.data_root.mkdir(parents=True, exist_ok=True)
        args = [
            dockerd,
            "--host",
            f"unix://{socket_path}",
            "--data-root",
            str(self.data_root),
            "--exec-root",
            str(self.rundir / "exec"),
            "--pidfile",
            str(self.rundir / "docker.pid"),
            "--ip-masq=false",
            "--bridge=none",
        ]
        self.process = ManagedProcess(args, self.rundir / "dockerd.log", name="dockerd").start()
        self.env = dict(self.environ)
        self.env["DOCKER_HOST"] = f"unix://{socket_path}"
        try:
            self.process.wait_ready(lambda: docker_answers(self.env, timeout=10), timeout, "answers", interval=0.5)
        except (GiveUp, AssertionError) as exc:
            self.stop()
            raise DockerUnavailable(f"dockerd did not come up: {exc}") from None
        self.log(
            f"[docker] started dockerd (pid {self.process.pid}) on {self.env['DOCKER_HOST']}, data in {self.data_root}"
        )
        return self.env

    @staticmethod
    def _daemon_using(data_root: Path) -> int | None:
        """PID of a running dockerd whose --data-root is ``data_root`` (left over from an interrupted run)."""
        for proc_dir in Path("/proc").glob("[0-9]*"):
            try:
                argv = (proc_dir / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if not argv or not argv[0].endswith(b"dockerd"):
                continue
            args = [a.decode(errors="replace") for a in argv]
            for i, arg in enumerate(args):
                value = (
                    arg.split("=", 1)[1]
                    if arg.startswith("--data-root=")
                    else (args[i + 1] if arg == "--data-root" and i + 1 < len(args) else None)
                )
                if value is not None and Path(value) == data_root:
                    return int(proc_dir.name)
        return None

    def docker(self, *args: str, timeout: float = 120) -> str:
        proc = subprocess.run(["docker", *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        return proc.stdout if proc.returncode == 0 else ""

    def remove_leftovers(self, project_prefix: str) -> list[str]:
        """In our private daemon only: remove what an interrupted earlier run left behind.

        Its containers restart with the daemon (restart: unless-stopped) and would hold ports and CPU.
        Also prunes dangling image layers from earlier builds so the cached data root does not grow.
        A daemon we did not start is never touched.
        """
        if not self.started_here:
            return []
        removed = []
        label = '{{.Label "com.docker.compose.project"}}'
        for kind, list_args, rm_args in (
            ("container", ["ps", "-a", "--format", "{{.ID}} " + label], ["rm", "-f", "-v"]),
            ("network", ["network", "ls", "--format", "{{.ID}} " + label], ["network", "rm"]),
            ("volume", ["volume", "ls", "--format", "{{.Name}} " + label], ["volume", "rm", "-f"]),
        ):
            for line in self.docker(*list_args).splitlines():
                ident, _, project = line.partition(" ")
                if project.startswith(project_prefix):
                    self.docker(*rm_args, ident)
                    removed.append(f"{kind} {ident} ({project})")
        self.docker("image", "prune", "-f", timeout=300)
        return removed

    def log_tail(self, lines: int = 20) -> str:
        return self.process.log_tail(lines) if self.process is not None else ""

    def stop(self, timeout: float = 60) -> None:
        """SIGTERM the dockerd we started (by PID; it stops its containerd), SIGKILL if it hangs."""
        process, self.process = self.process, None
        if process is not None:
            process.stop(timeout)
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
