"""A stand-in NVIDIA library (``libnvidia-ml.so.1``) whose GPUs draw the watts you set, for machines without one.

The real client and the official bindings (``pynvml``) run against it unchanged: it is compiled from
``fake_nvml.c`` (next to this file) with the system's C compiler, and the client finds it first through
``LD_LIBRARY_PATH``. Its GPUs are described in a control file (``FAKE_NVML_CONTROL``) that this module
writes; the library re-reads it when it changes. Energy counters advance in real time at the set watts
(computed from the monotonic clock on each call), can restart from zero (a driver reload), can be missing
(``NOT_SUPPORTED``, GPUs before Volta), and a GPU can fall off the bus (``GPU_IS_LOST``).

Command line::

    python -m gpu_nvml.fake_nvml build DIR [--gpu NAME=WATTS[,no-energy][,no-instant]] ...
    python -m gpu_nvml.fake_nvml set DIR INDEX WATTS      # change a GPU's power
    python -m gpu_nvml.fake_nvml reset DIR INDEX          # its energy counter restarts from zero
    python -m gpu_nvml.fake_nvml lose DIR INDEX           # it falls off the bus
    python -m gpu_nvml.fake_nvml show DIR

``build`` prints the two variables to set for the client. From Python (tests)::

    fake = FakeNvml(directory, [FakeGpu("NVIDIA A100-SXM4-80GB", 250), FakeGpu("Tesla P4", 60, energy=False)]).build()
    env = {**os.environ, **fake.env}
    fake.set_watts(0, 300); fake.reset_counter(1); fake.lose(0)
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

SOURCE = Path(__file__).resolve().with_name("fake_nvml.c")
LIBRARY_NAME = "libnvidia-ml.so.1"
CONTROL_NAME = "control"
HEADER = "# uuid watts base_mj t0_ns energy instant lost name  (fake NVML control file, see gpu_nvml/fake_nvml.c)\n"


class FakeNvmlError(Exception):
    """The stand-in cannot be built or its control file cannot be read (message says why)."""


@dataclass
class FakeGpu:
    """One stand-in GPU. ``base_mj`` and ``t0_ns`` define its counter: base_mj + watts x (now - t0_ns)."""

    name: str = "NVIDIA A100-SXM4-80GB"
    watts: float = 250.0
    energy: bool = True  # nvmlDeviceGetTotalEnergyConsumption supported
    instant: bool = True  # field NVML_FI_DEV_POWER_INSTANT supported
    uuid: str = ""
    lost: bool = False
    base_mj: float = 0.0
    t0_ns: int = 0

    def counter_mj(self, now_ns: int) -> float:
        """What the library's energy counter reads at monotonic ``now_ns`` (before its rounding down)."""
        return self.base_mj + self.watts * max(now_ns - self.t0_ns, 0) / 1e6

    def line(self) -> str:
        flags = f"{int(self.energy)} {int(self.instant)} {int(self.lost)}"
        return f"{self.uuid} {self.watts!r} {self.base_mj!r} {self.t0_ns} {flags} {self.name}\n"


def default_uuid(index: int) -> str:
    return f"GPU-fa4e0000-0000-4000-8000-{index:012d}"


def find_compiler() -> str | None:
    """$CC, else cc, else gcc on PATH."""
    for candidate in (os.environ.get("CC"), "cc", "gcc"):
        if candidate and shutil.which(candidate):
            return candidate
    return None


def compile_library(lib_dir: Path, compiler: str | None = None) -> Path:
    """Compile ``fake_nvml.c`` into ``lib_dir/libnvidia-ml.so.1`` (atomically replaced); returns its path."""
    cc = compiler or find_compiler()
    if cc is None:
        raise FakeNvmlError("no C compiler found (set CC, or install gcc: apt-get install gcc libc6-dev)")
    lib_dir.mkdir(parents=True, exist_ok=True)
    target = lib_dir / LIBRARY_NAME
    fd, tmp = tempfile.mkstemp(prefix=".build-", suffix=".so", dir=lib_dir)
    os.close(fd)
    command = [
        cc,
        "-shared",
        "-fPIC",
        "-O2",
        "-Wall",
        f"-Wl,-soname,{LIBRARY_NAME}",
        "-o",
        tmp,
        str(SOURCE),
        "-pthread",
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise FakeNvmlError(f"compiling the stand-in NVML library failed: {' '.join(command)}\n{done.stderr}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


class FakeNvml:
    """The stand-in library in ``directory/lib`` and its control file ``directory/control``.

    ``library`` reuses an already compiled library (tests compile once per session) instead of compiling.
    ``clock_ns`` must be the monotonic clock the library uses (CLOCK_MONOTONIC, ``time.monotonic_ns``).
    """

    def __init__(
        self,
        directory: str | Path,
        gpus: Sequence[FakeGpu] = (),
        *,
        library: Path | None = None,
        clock_ns: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self.directory = Path(directory)
        self.control = self.directory / CONTROL_NAME
        self.lib_dir = self.directory / "lib"
        self.library = library
        self.clock_ns = clock_ns
        self.gpus = list(gpus)
        for index, gpu in enumerate(self.gpus):
            gpu.uuid = gpu.uuid or default_uuid(index)

    @property
    def env(self) -> dict[str, str]:
        """The variables that make a process load this library and read these GPUs."""
        lib_dir = self.library.parent if self.library is not None else self.lib_dir
        return {"LD_LIBRARY_PATH": str(lib_dir), "FAKE_NVML_CONTROL": str(self.control)}

    def build(self) -> FakeNvml:
        """Compile the library (unless given one) and write the control file with every counter at zero now."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.library is None:
            self.library = compile_library(self.lib_dir)
        now = self.clock_ns()
        for gpu in self.gpus:
            gpu.base_mj, gpu.t0_ns = 0.0, now
        self.write()
        return self

    def write(self) -> None:
        """Replace the control file atomically (a reader sees the old or the new one, never half)."""
        tmp = self.control.with_name(f".{CONTROL_NAME}.{os.getpid()}.tmp")
        tmp.write_text(HEADER + "".join(gpu.line() for gpu in self.gpus))
        os.replace(tmp, self.control)

    @classmethod
    def load(cls, directory: str | Path) -> FakeNvml:
        """The stand-in as a previous ``build`` left it (for the command line's set/reset/lose)."""
        fake = cls(directory)
        try:
            lines = fake.control.read_text().splitlines()
        except OSError as exc:
            raise FakeNvmlError(f"no stand-in NVML in {directory}: {exc.strerror}; run `build` first") from None
        for text in lines:
            if not text.strip() or text.startswith("#"):
                continue
            parts = text.split(" ", 7)
            if len(parts) != 8:
                raise FakeNvmlError(f"unreadable line in {fake.control}: {text!r}")
            uuid, watts, base, t0, energy, instant, lost, name = parts
            fake.gpus.append(
                FakeGpu(name, float(watts), energy == "1", instant == "1", uuid, lost == "1", float(base), int(t0))
            )
        library = fake.lib_dir / LIBRARY_NAME
        fake.library = library if library.exists() else None
        return fake

    def _gpu(self, index: int) -> FakeGpu:
        if not 0 <= index < len(self.gpus):
            raise FakeNvmlError(f"no GPU {index}: the stand-in has {len(self.gpus)}")
        return self.gpus[index]

    def set_watts(self, index: int, watts: float) -> None:
        """GPU ``index`` draws ``watts`` from now on; its counter keeps what it counted so far."""
        if not watts >= 0:
            raise FakeNvmlError(f"watts must be >= 0, got {watts}")
        gpu = self._gpu(index)
        now = self.clock_ns()
        gpu.base_mj, gpu.t0_ns, gpu.watts = gpu.counter_mj(now), now, float(watts)
        self.write()

    def reset_counter(self, index: int) -> None:
        """GPU ``index``'s energy counter restarts from zero now, as after a driver reload."""
        gpu = self._gpu(index)
        gpu.base_mj, gpu.t0_ns = 0.0, self.clock_ns()
        self.write()

    def lose(self, index: int) -> None:
        """GPU ``index`` falls off the bus: every call on it answers GPU_IS_LOST from now on."""
        self._gpu(index).lost = True
        self.write()

    def counter_joules(self, index: int) -> float:
        """GPU ``index``'s energy counter now, in J."""
        return self._gpu(index).counter_mj(self.clock_ns()) / 1000.0

    def describe(self) -> str:
        rows = []
        for index, gpu in enumerate(self.gpus):
            traits = [
                "energy counter" if gpu.energy else "no energy counter",
                "instant power" if gpu.instant else "no instant field",
            ]
            if gpu.lost:
                traits.append("LOST")
            rows.append(f"  {index} {gpu.uuid} {gpu.name}: {gpu.watts:g} W, {', '.join(traits)}")
        return "\n".join(rows)


def parse_gpu(spec: str) -> FakeGpu:
    """``NAME=WATTS[,no-energy][,no-instant]`` -> FakeGpu; raises ValueError with the reason."""
    name, sep, rest = spec.partition("=")
    if not sep or not name.strip():
        raise ValueError(f"expected NAME=WATTS[,no-energy][,no-instant], got {spec!r}")
    watts_text, *flags = [part.strip() for part in rest.split(",")]
    try:
        watts = float(watts_text)
    except ValueError:
        raise ValueError(f"watts must be a number in {spec!r}") from None
    unknown = set(flags) - {"no-energy", "no-instant"}
    if unknown or not watts >= 0:
        raise ValueError(f"expected NAME=WATTS[,no-energy][,no-instant] with WATTS >= 0, got {spec!r}")
    return FakeGpu(name.strip(), watts, energy="no-energy" not in flags, instant="no-instant" not in flags)


DEFAULT_GPUS = ("NVIDIA A100-SXM4-80GB=250", "Tesla T4=70,no-instant")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gpu_nvml.fake_nvml",
        description="Build and control a stand-in libnvidia-ml.so.1 whose GPUs draw the watts you set.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="compile the library into DIR/lib and write DIR/control")
    build.add_argument("dir", type=Path)
    build.add_argument(
        "--gpu",
        action="append",
        metavar="NAME=WATTS[,no-energy][,no-instant]",
        help=f"one GPU (repeat for more; default: {' and '.join(DEFAULT_GPUS)})",
    )
    for name, helptext in (("set", "change a GPU's power"), ("reset", "restart a GPU's energy counter")):
        sub = commands.add_parser(name, help=helptext)
        sub.add_argument("dir", type=Path)
        sub.add_argument("index", type=int)
        if name == "set":
            sub.add_argument("watts", type=float)
    lose = commands.add_parser("lose", help="make a GPU fall off the bus")
    lose.add_argument("dir", type=Path)
    lose.add_argument("index", type=int)
    show = commands.add_parser("show", help="list the GPUs")
    show.add_argument("dir", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            gpus = [parse_gpu(spec) for spec in (args.gpu or DEFAULT_GPUS)]
            fake = FakeNvml(args.dir, gpus).build()
            print(f"stand-in NVML with {len(gpus)} GPU(s) in {args.dir}:\n{fake.describe()}")
            print("run the client with:")
            for key, value in fake.env.items():
                print(f"  export {key}={value}")
            return 0
        fake = FakeNvml.load(args.dir)
        if args.command == "set":
            fake.set_watts(args.index, args.watts)
        elif args.command == "reset":
            fake.reset_counter(args.index)
        elif args.command == "lose":
            fake.lose(args.index)
        print(fake.describe())
        return 0
    except (FakeNvmlError, ValueError, OSError) as exc:
        print(f"fake_nvml: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
