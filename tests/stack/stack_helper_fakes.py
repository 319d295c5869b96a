"""The real docker-compose_helper.sh run from a copy of the stack files, with fake `docker` and `docker-compose`.

The helper works relative to its own location, so it runs from a copy in a temporary directory, with fake
`docker` / `docker-compose` programs first on PATH that record how they were called and which environment
they saw. `docker run` (the helper's bcrypt step) runs its Python command on the host's python3 and libcrypt,
so the hashes are real. Nothing here needs a daemon; the end-to-end tests run the same helper for real.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from jetson_ina3221.fake_sysfs import FakeJetson

ROOT = Path(__file__).resolve().parents[2]
HELPER = "docker-compose_helper.sh"
STACK_FILES = [
    HELPER,
    ".env",
    "docker-compose.yml",
    "docker-compose.privileged.yml",
    "docker-compose.apparmor.yml",
    "docker-compose.victoriametrics.yml",
]

# A stand-in for the docker CLI and docker-compose: appends one JSON line per call to $FAKE_LOG with its
# argv and the variables the stack cares about. `docker info` fails when FAKE_DOCKER_DOWN=1 and lists the
# nvidia runtime when FAKE_NVIDIA_RUNTIME=1; `docker compose` exists only when FAKE_COMPOSE_V2=1;
# `docker image inspect` succeeds only when FAKE_BASE_IMAGE_PRESENT=1; `docker run` (the bcrypt step) fails
# when FAKE_RUN_FAILS=1.
FAKE_TOOL = r"""#!/usr/bin/env python3
import json, os, sys
name = os.path.basename(sys.argv[0])
args = sys.argv[1:]
keys = ["UID", "GID", "HOST_LABEL", "GF_SECURITY_ADMIN_PASSWORD", "POWERCAP_HOST_DIR", "SPACED", "DQ", "SQ",
        "EXPORTED", "EMPTY", "CRLF", "HASHED", "ESCAPED", "FROM_LOCAL", "FROM_ENV", "PRIVILEGED", "RAPL_ACCESS",
        "BIG", "COMPOSE_PROFILES", "CLIENT_CPU_PYJOULES_URL", "PROMETHEUS_AUTH_PASSWORD", "REMOTE_WRITE_PASSWORD",
        "REMOTE_WRITE_BEARER_TOKEN", "REMOTE_WRITE_HEADERS", "JETSON_SYSFS_HOST_DIR"]
keys += [k for k in os.environ if k.startswith("HELPER_")]
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps({"tool": name, "args": args, "env": {k: os.environ.get(k) for k in keys}}) + "\n")
if args[-2:] == ["version", "--short"]:
    print(os.environ.get("FAKE_COMPOSE_VERSION", "2.40.3" if name == "docker" else "1.29.2"))
if name == "docker":
    if args[:1] == ["info"]:
        if "{{json .Runtimes}}" in args:
            runc = {"runc": {"path": "runc"}}
            print(json.dumps({**runc, "nvidia": {"path": "nvidia-container-runtime"}}
                             if os.environ.get("FAKE_NVIDIA_RUNTIME") == "1" else runc))
        sys.exit(1 if os.environ.get("FAKE_DOCKER_DOWN") == "1" else 0)
    if args[:1] == ["compose"]:
        sys.exit(0 if os.environ.get("FAKE_COMPOSE_V2") == "1" else 1)
    if args[:2] == ["image", "inspect"]:
        sys.exit(0 if os.environ.get("FAKE_BASE_IMAGE_PRESENT") == "1" else 1)
    if args[:1] == ["run"]:  # the command after the image runs here, on the host's python3 and libcrypt
        if os.environ.get("FAKE_RUN_FAILS") == "1":
            sys.exit("Unable to find image locally")
        command = args[args.index("python3"):]
        os.execvp(sys.executable, [sys.executable, *command[1:]])
sys.exit(0)
"""


# `uname -m` answers $FAKE_ARCH when set (an arm64 host), the real machine's otherwise.
FAKE_UNAME = """#!/bin/sh
if [ "$1" = -m ] && [ -n "$FAKE_ARCH" ]; then echo "$FAKE_ARCH"; else exec /bin/uname "$@"; fi
"""


class HelperStack:
    """A copy of the stack files plus fake tools; ``run()`` invokes the copied helper.

    The host it shows the helper has RAPL (a one-zone powercap tree), no NVIDIA GPU (an empty driver list)
    and no Jetson rails (an empty sysfs); tests add hardware with ``gpu()`` and ``jetson()``.
    """

    def __init__(self, root: Path) -> None:
        self.dir = root / "stack"
        self.dir.mkdir()
        for name in STACK_FILES:
            shutil.copy2(ROOT / name, self.dir / name)
        (self.dir / "secrets").mkdir()
        shutil.copy2(ROOT / "secrets" / "empty", self.dir / "secrets" / "empty")
        bin_dir = root / "bin"
        bin_dir.mkdir()
        for tool, text in (("docker", FAKE_TOOL), ("docker-compose", FAKE_TOOL), ("uname", FAKE_UNAME)):
            path = bin_dir / tool
            path.write_text(text)
            path.chmod(0o755)
        self.log = root / "calls.jsonl"
        self.rapl = root / "powercap"
        zone = self.rapl / "intel-rapl" / "intel-rapl:0"
        zone.mkdir(parents=True)
        (zone / "name").write_text("package-0\n")
        (zone / "energy_uj").write_text("0\n")
        self.gpus = root / "nvidia-gpus"
        self.gpus.mkdir()
        self.sysfs = root / "sys"
        self.sysfs.mkdir()
        self.env = {
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "HOME": str(root),
            "FAKE_LOG": str(self.log),
            "POWERCAP_HOST_DIR": str(self.rapl),
            "HELPER_NVIDIA_GPUS": str(self.gpus),
            "JETSON_SYSFS_HOST_DIR": str(self.sysfs),
            "GF_SECURITY_ADMIN_PASSWORD": "test-password-not-secret",
        }

    def gpu(self) -> None:
        """An NVIDIA GPU as the driver lists it (one directory per PCI address)."""
        (self.gpus / "0000:01:00.0").mkdir()

    def jetson(self, board: str = "orin-nx") -> None:
        """The INA3221 rails of a Jetson board in the sysfs the helper looks at (a real fake tree)."""
        FakeJetson(self.sysfs, board).build()

    def run(
        self, *args: str, env: dict[str, str] | None = None, unset: tuple[str, ...] = ()
    ) -> subprocess.CompletedProcess[str]:
        full_env = {**self.env, **(env or {})}
        for key in unset:
            full_env.pop(key, None)
        return subprocess.run(
            ["bash", str(self.dir / HELPER), *args], env=full_env, capture_output=True, text=True, timeout=60
        )

    def calls(self, tool: str | None = None) -> list[dict]:
        if not self.log.exists():
            return []
        entries = [json.loads(line) for line in self.log.read_text().splitlines()]
        return [e for e in entries if tool is None or e["tool"] == tool]

    def compose_calls(self) -> list[dict]:
        """Compose invocations that do work (not the helper's own version probes)."""
        calls = [c for c in self.calls() if c["tool"] == "docker-compose" or c["args"][:1] == ["compose"]]
        return [c for c in calls if "version" not in c["args"][:2]]
