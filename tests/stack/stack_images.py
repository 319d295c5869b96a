"""Upstream images for the stack, or documented stand-ins built from Debian packages when they cannot be pulled.

The compose file pins upstream images (a Python base for the clients, Prometheus, Grafana). Air-gapped hosts
and this project's CI cannot reach Docker Hub, yet the end-to-end test must still run the real compose file,
the real Dockerfiles and the real helper. So, per image: use it if the daemon already has it, else pull it
only when asked to (``E2E_PULL_IMAGES=1``: tests keep their traffic on this machine by default, and a pull
goes to a registry elsewhere), else build a stand-in that behaves the same for our purposes and say so:

* Python base: ``debootstrap --variant=minbase`` of Debian bookworm with python3 + python3-venv, imported
  with ``docker import``. It carries the host's CA bundle (and a pip.conf pointing at it) so HTTPS to the
  package index works during image builds behind a TLS-inspecting proxy.
* Prometheus: Debian's ``prometheus`` package (2.x) on that base, laid out like the upstream image
  (``/bin/prometheus``, ``/bin/promtool``, data in ``/prometheus`` owned by ``nobody``).
* Grafana has no Debian package: there is no stand-in; callers check provisioning files instead.

Stand-ins are tagged under ``powermon-standin/`` and reused when the tag exists, so only the first run pays
for debootstrap and apt.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
STANDIN_DIR = HERE / "standin"

PYTHON_STANDIN = "powermon-standin/python:3.11-bookworm"
PROMETHEUS_STANDIN = "powermon-standin/prometheus"

STANDIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
HOST_DEBIAN_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
DEFAULT_DEBIAN_SOURCES = """\
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""

Log = Callable[[str], None]


@dataclass(frozen=True)
class ImageChoice:
    """Which image a compose variable should name, and whether it is the upstream one."""

    requested: str
    tag: str
    standin: bool
    reason: str


class Docker:
    """Thin wrapper over the docker CLI bound to one daemon (``env`` carries DOCKER_HOST)."""

    def __init__(self, env: Mapping[str, str], log: Log = print) -> None:
        self.env = dict(env)
        self.log = log

    def run(
        self, *args: str, timeout: float = 600, check: bool = True, **kw: object
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            ["docker", *args],
            env=self.env,
            text=True,
            capture_output=True,
            timeout=timeout,
            **kw,  # type: ignore[arg-type]
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    def architecture(self, tag: str) -> str:
        return self.run("image", "inspect", "--format", "{{.Architecture}}", tag, timeout=60).stdout.strip()

    def has_image(self, tag: str) -> bool:
        return self.run("image", "inspect", "--format", "{{.Id}}", tag, check=False, timeout=60).returncode == 0

    def try_pull(self, tag: str, timeout: float = 300) -> tuple[bool, str]:
        try:
            proc = self.run("pull", tag, check=False, timeout=timeout)
        except subprocess.TimeoutExpired:
            return False, f"docker pull {tag} timed out after {timeout:g}s"
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        return proc.returncode == 0, detail[-1] if detail else ""


def resolve(
    docker: Docker,
    upstream: str,
    build_standin: Callable[[], str] | None,
    *,
    allow_pull: bool | None = None,
) -> ImageChoice:
    """Use ``upstream`` if present (or pulled, when allowed), else the stand-in ``build_standin`` returns.

    Pulling is opt-in (``E2E_PULL_IMAGES=1``) because it is the one step that would leave this machine.
    """
    if docker.has_image(upstream):
        return ImageChoice(upstream, upstream, False, "already present in the daemon")
    if allow_pull is None:
        allow_pull = os.environ.get("E2E_PULL_IMAGES", "") in ("1", "true", "yes")
    if allow_pull:
        ok, detail = docker.try_pull(upstream)
        if ok:
            return ImageChoice(upstream, upstream, False, "pulled")
    else:
        detail = "not in the daemon, and E2E_PULL_IMAGES=1 is not set"
    if build_standin is None:
        return ImageChoice(upstream, "", True, f"unavailable ({detail}) and no stand-in exists")
    tag = build_standin()
    return ImageChoice(upstream, tag, True, f"unavailable ({detail}); using stand-in {tag} built from Debian packages")


def build_python_standin(
    docker: Docker, tag: str = PYTHON_STANDIN, *, suite: str = "bookworm", arch: str | None = None
) -> str:
    """debootstrap a minimal Debian with python3 + venv + CA certificates and import it as ``tag``.

    ``arch`` (a Debian architecture such as ``arm64``) builds a foreign root filesystem, which needs the
    host to run that architecture's programs (qemu-user-static registered with binfmt_misc); the image is
    then loaded as an image of that architecture (``docker import`` of Docker 20.10 records the daemon's own).
    """
    if docker.has_image(tag) and (arch is None or docker.architecture(tag) == arch):
        return tag
    if shutil.which("debootstrap") is None:
        raise RuntimeError("debootstrap is not installed (apt-get install debootstrap): cannot build a Python stand-in")
    with tempfile.TemporaryDirectory(prefix="powermon-rootfs-") as tmp:
        root = Path(tmp) / "rootfs"
        docker.log(f"[stand-in] debootstrap {suite} {arch or ''} (minbase + python3, python3-venv) into {root} ...")
        subprocess.run(
            [
                "debootstrap",
                *([f"--arch={arch}"] if arch else []),
                "--variant=minbase",
                "--include=python3,python3-venv,ca-certificates",
                suite,
                str(root),
                "http://deb.debian.org/debian",
            ],
            check=True,
            capture_output=True,
            timeout=1200,
        )
        _adopt_host_trust(root)
        _write_sources(root)
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (root / junk).glob("*"):
                if entry.is_file():
                    entry.unlink()
        if arch is not None:
            _load_root_as_image(docker, root, tag, arch)
            return tag
        docker.log(f"[stand-in] docker import -> {tag}")
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        try:
            subprocess.run(
                [
                    "docker",
                    "import",
                    "--change",
                    f"ENV PATH={STANDIN_PATH}",
                    "--change",
                    "ENV LANG=C.UTF-8",
                    "--change",
                    'CMD ["python3"]',
                    "-",
                    tag,
                ],
                stdin=tar.stdout,
                env=docker.env,
                check=True,
                capture_output=True,
                timeout=600,
            )
        finally:
            assert tar.stdout is not None
            tar.stdout.close()
            tar.wait()
    return tag


def _load_root_as_image(docker: Docker, root: Path, tag: str, arch: str) -> None:
    """``docker load`` a one-layer image of ``root`` whose configuration names ``arch`` (a docker-archive:
    the layer, its configuration and a manifest), with the environment and command of the imported stand-in."""
    docker.log(f"[stand-in] docker load -> {tag} (linux/{arch})")
    with tempfile.TemporaryDirectory(prefix="powermon-image-") as tmp:
        archive = Path(tmp)
        subprocess.run(["tar", "-C", str(root), "-cf", str(archive / "layer.tar"), "."], check=True, timeout=600)
        digest = hashlib.sha256()
        with open(archive / "layer.tar", "rb") as layer:
            for chunk in iter(lambda: layer.read(1 << 20), b""):
                digest.update(chunk)
        config = {
            "architecture": arch,
            "os": "linux",
            "config": {"Env": [f"PATH={STANDIN_PATH}", "LANG=C.UTF-8"], "Cmd": ["python3"]},
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{digest.hexdigest()}"]},
            "history": [{"created_by": f"debootstrap --arch={arch} (tests/stack/stack_images.py)"}],
        }
        config_bytes = json.dumps(config).encode()
        config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
        (archive / config_name).write_bytes(config_bytes)
        manifest = [{"Config": config_name, "RepoTags": [tag], "Layers": ["layer.tar"]}]
        (archive / "manifest.json").write_text(json.dumps(manifest))
        tar = subprocess.Popen(["tar", "-C", str(archive), "-c", "."], stdout=subprocess.PIPE)
        try:
            subprocess.run(
                ["docker", "load"], stdin=tar.stdout, env=docker.env, check=True, capture_output=True, timeout=600
            )
        finally:
            assert tar.stdout is not None
            tar.stdout.close()
            tar.wait()


def _adopt_host_trust(root: Path) -> None:
    """Trust what the host trusts, for apt/pip during image builds (a proxy may re-sign TLS)."""
    if HOST_CA_BUNDLE.is_file():
        target = root / "etc/ssl/certs/ca-certificates.crt"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(HOST_CA_BUNDLE, target)
        (root / "etc/pip.conf").write_text("[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n")


def _write_sources(root: Path) -> None:
    text = HOST_DEBIAN_SOURCES.read_text() if HOST_DEBIAN_SOURCES.is_file() else DEFAULT_DEBIAN_SOURCES
    (root / "etc/apt/sources.list.d").mkdir(parents=True, exist_ok=True)
    (root / "etc/apt/sources.list.d/debian.sources").write_text(text)
    legacy = root / "etc/apt/sources.list"
    if legacy.exists():
        legacy.unlink()


def build_prometheus_standin(docker: Docker, base: str, repo: str = PROMETHEUS_STANDIN) -> str:
    """Debian's prometheus package on the Python stand-in, shaped like prom/prometheus.

    The tag carries a hash of the Dockerfile and the base, so editing the recipe rebuilds the stand-in.
    """
    dockerfile = STANDIN_DIR / "prometheus.Dockerfile"
    digest = hashlib.sha256(dockerfile.read_bytes() + base.encode()).hexdigest()[:12]
    tag = f"{repo}:2-bookworm-{digest}"
    if docker.has_image(tag):
        return tag
    docker.log(f"[stand-in] building {tag} from Debian's prometheus package on {base} ...")
    docker.run(
        "build",
        "--network",
        "host",
        "--build-arg",
        f"BASE_IMAGE={base}",
        "-t",
        tag,
        "-f",
        str(dockerfile),
        str(STANDIN_DIR),
        timeout=1500,
    )
    return tag
