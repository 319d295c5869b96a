"""CPU time and memory of a process, read from /proc (no psutil: the project takes no new dependency).

"CPU of the whole client" is the CPU of every thread of its process, plus any child process it runs.
Threads and child processes that end inside a measuring window take their CPU with them (the kernel keeps
no record of them per process until the process itself exits), so a window's figure is a lower bound when
threads come and go; the client's threads live as long as it does.
``utime + stime`` from ``/proc/<pid>/stat`` count it in kernel clock ticks (usually 10 ms): a client at
10 Hz uses well under 1% of a core, so a 20 s window would hold only a dozen ticks. Where the kernel
offers it, the per-thread ``/proc/<pid>/task/<tid>/schedstat`` (time on CPU in nanoseconds) is summed
instead; ``utime + stime`` is the fallback. Both cover the same thing, only the resolution differs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def stat_cpu_seconds(pid: int, proc: Path = Path("/proc")) -> float:
    """User + system CPU seconds consumed so far by all threads of ``pid`` (clock-tick resolution)."""
    text = (proc / str(pid) / "stat").read_text()
    # The command name (field 2) may contain spaces and parentheses: split after its closing ')'.
    fields = text[text.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of stat(5), counted from 3 here
    return (utime + stime) / CLOCK_TICKS


def schedstat_cpu_seconds(pid: int, proc: Path = Path("/proc")) -> float:
    """CPU seconds of all live threads of ``pid`` from their schedstat (ns resolution); OSError if absent."""
    total = 0
    for task in (proc / str(pid) / "task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except FileNotFoundError:  # the thread ended between listing and reading
            continue
    return total / 1e9


def children(pid: int, proc: Path = Path("/proc")) -> list[int]:
    """Live child processes of ``pid`` (from every thread's ``children`` list)."""
    out: list[int] = []
    try:
        for task in (proc / str(pid) / "task").iterdir():
            try:
                out.extend(int(x) for x in (task / "children").read_text().split())
            except OSError:
                continue
    except OSError:
        pass
    return out


def cpu_seconds(pid: int, proc: Path = Path("/proc"), include_children: bool = True) -> float:
    """CPU seconds so far of ``pid`` (all threads), plus its live descendants when ``include_children``."""
    try:
        total = schedstat_cpu_seconds(pid, proc)
    except OSError:
        total = stat_cpu_seconds(pid, proc)
    if include_children:
        for child in children(pid, proc):
            try:
                total += cpu_seconds(child, proc, True)
            except OSError:
                continue
    return total


def rss_bytes(pid: int, proc: Path = Path("/proc"), include_children: bool = True) -> int:
    """Resident set size of ``pid`` in bytes (VmRSS), plus its live descendants' when ``include_children``."""
    total = 0
    for line in (proc / str(pid) / "status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            total = int(line.split()[1]) * 1024
            break
    else:
        raise ValueError(f"no VmRSS for pid {pid}")
    if include_children:
        for child in children(pid, proc):
            try:
                total += rss_bytes(child, proc, True)
            except (OSError, ValueError):
                continue
    return total


@dataclass
class CpuWindow:
    """CPU seconds of a set of processes between :meth:`begin` and :meth:`end` (wall time measured too)."""

    pids: list[int]
    wall_start: float = 0.0
    wall_end: float = 0.0
    cpu_start: dict[int, float] | None = None
    cpu_end: dict[int, float] | None = None

    def begin(self, wall: float) -> None:
        self.wall_start = wall
        self.cpu_start = {pid: cpu_seconds(pid) for pid in self.pids}

    def end(self, wall: float) -> None:
        self.wall_end = wall
        self.cpu_end = {pid: cpu_seconds(pid) for pid in self.pids}

    def per_pid(self) -> dict[int, float]:
        assert self.cpu_start is not None and self.cpu_end is not None, "window not closed"
        return {pid: self.cpu_end[pid] - self.cpu_start[pid] for pid in self.pids}

    def total(self) -> float:
        return sum(self.per_pid().values())

    @property
    def seconds(self) -> float:
        return self.wall_end - self.wall_start


def steal_fraction(before: list[int], after: list[int]) -> float:
    """Share of CPU time the hypervisor took from this VM between two :func:`cpu_times` readings."""
    total = sum(after) - sum(before)
    return (after[7] - before[7]) / total if total > 0 else 0.0


def cpu_times(proc: Path = Path("/proc")) -> list[int]:
    """The machine's CPU time counters from /proc/stat: user nice system idle iowait irq softirq steal."""
    return [int(x) for x in (proc / "stat").read_text().splitlines()[0].split()[1:9]]


def machine_cpu_seconds(proc: Path = Path("/proc")) -> float:
    """Busy CPU seconds of the whole machine (all cores) so far, from /proc/stat: to show what else ran."""
    first = (proc / "stat").read_text().splitlines()[0].split()
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in first[1:9])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def parse_schedstat(text: str) -> tuple[int, int, int]:
    """``/proc/.../schedstat``: nanoseconds on a CPU, nanoseconds waiting for one, times it was run."""
    fields = text.split()
    if len(fields) < 3:
        raise ValueError(f"schedstat has {len(fields)} fields, expected 3: {text!r}")
    run_ns, wait_ns, slices = (int(x) for x in fields[:3])
    return run_ns, wait_ns, slices


def parse_switches(status: str) -> tuple[int, int]:
    """Voluntary and involuntary context switches from ``/proc/.../status`` (0, 0 when absent)."""
    voluntary = involuntary = 0
    for line in status.splitlines():
        if line.startswith("voluntary_ctxt_switches:"):
            voluntary = int(line.split()[1])
        elif line.startswith("nonvoluntary_ctxt_switches:"):
            involuntary = int(line.split()[1])
    return voluntary, involuntary


@dataclass(frozen=True)
class TaskUsage:
    """One thread's CPU time (ns) and context switches, at one moment."""

    cpu_ns: int
    voluntary: int
    involuntary: int

    @property
    def switches(self) -> int:
        return self.voluntary + self.involuntary


@dataclass
class ProcessUsage:
    """Every live thread of a process (and of its descendants), by thread id, at one moment."""

    tasks: dict[int, TaskUsage] = field(default_factory=dict)

    @classmethod
    def read(cls, pid: int, proc: Path = Path("/proc"), include_children: bool = True) -> ProcessUsage:
        """Read ``/proc/<pid>/task/*/{schedstat,status}``; OSError if the process is gone."""
        usage = cls()
        for task in (proc / str(pid) / "task").iterdir():
            try:
                run_ns, _wait, _slices = parse_schedstat((task / "schedstat").read_text())
                voluntary, involuntary = parse_switches((task / "status").read_text())
            except (FileNotFoundError, ProcessLookupError):  # the thread ended between listing and reading
                continue
            usage.tasks[int(task.name)] = TaskUsage(run_ns, voluntary, involuntary)
        if include_children:
            for child in children(pid, proc):
                try:
                    usage.tasks.update(cls.read(child, proc, True).tasks)
                except OSError:
                    continue
        return usage

    def since(self, before: ProcessUsage) -> TaskUsage:
        """CPU and switches between ``before`` and this reading, summed over the threads alive now
        (a thread that is new counts from zero)."""
        zero = TaskUsage(0, 0, 0)
        cpu = voluntary = involuntary = 0
        for tid, now in self.tasks.items():
            then = before.tasks.get(tid, zero)
            cpu += now.cpu_ns - then.cpu_ns
            voluntary += now.voluntary - then.voluntary
            involuntary += now.involuntary - then.involuntary
        return TaskUsage(cpu, voluntary, involuntary)

    def per_task_since(self, before: ProcessUsage) -> dict[int, TaskUsage]:
        """The same, thread by thread."""
        zero = TaskUsage(0, 0, 0)
        return {
            tid: TaskUsage(
                now.cpu_ns - before.tasks.get(tid, zero).cpu_ns,
                now.voluntary - before.tasks.get(tid, zero).voluntary,
                now.involuntary - before.tasks.get(tid, zero).involuntary,
            )
            for tid, now in self.tasks.items()
        }


@dataclass(frozen=True)
class MachineLoad:
    """What the whole machine did between two /proc/stat readings: busy CPU seconds (all cores, steal
    included) and the share of time the hypervisor took (steal)."""

    busy_s: float
    steal_fraction: float

    @classmethod
    def between(cls, before: list[int], after: list[int]) -> MachineLoad:
        """From two :func:`cpu_times` readings."""
        d = [b - a for a, b in zip(before, after, strict=True)]
        user, nice, system, _idle, _iowait, irq, softirq, steal = d
        total = sum(d)
        return cls(
            busy_s=(user + nice + system + irq + softirq + steal) / CLOCK_TICKS,
            steal_fraction=steal / total if total > 0 else 0.0,
        )
