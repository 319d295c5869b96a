"""The machine and versions a generated document was measured on: one writer for every file in docs/.

A figure means little without the machine, the load, the commit and the versions behind it, and the
benchmark and reliability reports must describe their runs the same way so that they can be compared.
``run_facts()`` collects those facts once per run; ``facts_table()`` and ``measured_line()`` render them.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path

from bench import REPO

# The directories whose uncommitted changes would make a run's commit misleading.
MEASURED = ("base-monitoring-client", "cpu-pyjoules", "bench", "testkit", "tests")
DISTRIBUTIONS = (
    "monitoring-client",
    "cpu-pyjoules",
    "pyJoules",
    "protobuf",
    "python-snappy",
    "requests",
    "prometheus-client",
)


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _run(cmd: Sequence[str]) -> str:
    try:
        out = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=10, cwd=REPO)
        return (out.stdout or out.stderr).strip()
    except (OSError, subprocess.SubprocessError):
        return "unavailable"


def _first_line(path: str, key: str, sep: str, default: str) -> str:
    """The value of the first ``key<sep>value`` line of a file such as /proc/cpuinfo."""
    try:
        for line in Path(path).read_text().splitlines():
            name, found, value = line.partition(sep)
            if found and name.strip() == key:
                return value.strip().strip('"')
    except OSError:
        pass
    return default


def _memory_gib() -> str:
    kib = _first_line("/proc/meminfo", "MemTotal", ":", "")
    return f"{int(kib.split()[0]) / 1024 / 1024:.1f} GiB" if kib else "unknown"


def _protobuf_backend() -> str:
    try:
        from google.protobuf.internal import api_implementation

        return str(api_implementation.Type())
    except ImportError:
        return "unknown"


def run_facts(prometheus_binary: str | None) -> dict[str, str]:
    """The facts a reader needs to compare this run with another one, in display order."""
    commit = _run(["git", "rev-parse", "--short", "HEAD"])
    dirty = _run(["git", "status", "--porcelain", "--", *MEASURED])
    prom = _run([prometheus_binary, "--version"]).splitlines()[0] if prometheus_binary else "not found"
    cpu = _first_line("/proc/cpuinfo", "model name", ":", platform.processor() or "unknown")
    packages = ", ".join(f"{dist} {_version(dist)}" for dist in DISTRIBUTIONS)
    system = _first_line("/etc/os-release", "PRETTY_NAME", "=", platform.platform())
    return {
        "date (UTC)": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
        "command": " ".join(shlex.quote(a) for a in [os.path.relpath(sys.executable, REPO), *_argv()]),
        "git commit": commit + (" (with uncommitted changes in the measured code)" if dirty else ""),
        "machine": f"{cpu}, {os.cpu_count()} logical CPUs, {_memory_gib()} RAM",
        "system": f"{system}, Linux {platform.release()}",
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
        "packages": f"{packages} (protobuf {_protobuf_backend()} backend)",
        "Prometheus": prom,
    }


def _argv() -> list[str]:
    """``sys.argv`` as typed: ``-m bench.run`` rather than the module's file path."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and spec.name:
        return ["-m", spec.name.removesuffix(".__main__"), *sys.argv[1:]]
    return list(sys.argv)


def facts_table(facts: Mapping[str, str]) -> list[str]:
    """The facts as a two-column markdown table (the header of a generated document)."""
    return ["| | |", "|---|---|", *(f"| {key} | {value} |" for key, value in facts.items())]


# Reports written before the shared header stored these keys; they still render.
_LEGACY = {"date": "date (UTC)", "commit": "git commit", "python": "Python", "prometheus": "Prometheus"}


def measured_line(facts: Mapping[str, str]) -> str:
    """One sentence for a section measured at another time than the document: when, where, with what."""
    f = {_LEGACY.get(key, key): value for key, value in facts.items()}
    python = f.get("Python", "?").split()[-1]
    return (
        f"Measured {f.get('date (UTC)', '?')} (commit {f.get('git commit', '?')}, {f.get('Prometheus', '?')},"
        f" Python {python}, {f.get('machine', '?')})."
    )
