"""/proc parsing for the CPU figures: schedstat, context switches, per-thread windows, machine load."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from bench.procfs import MachineLoad, ProcessUsage, TaskUsage, cpu_times, parse_schedstat, parse_switches
from testkit.wait import wait_until

STATUS = """Name:\tpython
State:\tS (sleeping)
Threads:\t5
voluntary_ctxt_switches:\t310
nonvoluntary_ctxt_switches:\t9
"""


def test_schedstat_fields() -> None:
    assert parse_schedstat("134500123 2000 1061\n") == (134_500_123, 2_000, 1_061)
    with pytest.raises(ValueError):
        parse_schedstat("12 34")


def test_switches_from_status() -> None:
    assert parse_switches(STATUS) == (310, 9)
    assert parse_switches("Name:\tx\n") == (0, 0)


def fake_proc(root: Path, pid: int, tasks: dict[int, tuple[int, int, int]], kids: tuple[int, ...] = ()) -> None:
    for tid, (ns, vol, invol) in tasks.items():
        task = root / str(pid) / "task" / str(tid)
        task.mkdir(parents=True, exist_ok=True)
        (task / "schedstat").write_text(f"{ns} 0 {vol + invol}\n")
        (task / "status").write_text(f"voluntary_ctxt_switches:\t{vol}\nnonvoluntary_ctxt_switches:\t{invol}\n")
        (task / "children").write_text(" ".join(map(str, kids)) if tid == pid else "")


def test_window_sums_threads_and_children_and_counts_new_threads_from_zero(tmp_path: Path) -> None:
    fake_proc(tmp_path, 100, {100: (1_000, 5, 1), 101: (2_000, 10, 0)}, kids=(200,))
    fake_proc(tmp_path, 200, {200: (500, 1, 0)})
    before = ProcessUsage.read(100, tmp_path)
    assert set(before.tasks) == {100, 101, 200}
    fake_proc(tmp_path, 100, {100: (1_500, 6, 1), 101: (2_700, 12, 1), 102: (300, 2, 0)}, kids=(200,))
    fake_proc(tmp_path, 200, {200: (900, 3, 0)})
    after = ProcessUsage.read(100, tmp_path)
    assert after.since(before) == TaskUsage(500 + 700 + 300 + 400, 1 + 2 + 2 + 2, 1)
    assert after.per_task_since(before)[102] == TaskUsage(300, 2, 0)
    assert ProcessUsage.read(100, tmp_path, include_children=False).tasks.keys() == {100, 101, 102}


def test_a_live_thread_that_sleeps_shows_cpu_and_voluntary_switches() -> None:
    stop, slept = threading.Event(), []

    def sleeper() -> None:
        while not stop.wait(0.001):
            slept.append(1)

    thread = threading.Thread(target=sleeper)
    thread.start()
    try:
        before = ProcessUsage.read(os.getpid())
        wait_until(lambda: len(slept) >= 20, 10, message="20 short sleeps")
        after = ProcessUsage.read(os.getpid())
    finally:
        stop.set()
        thread.join()
    assert thread.native_id in after.tasks
    mine = after.per_task_since(before)[thread.native_id]
    assert mine.cpu_ns > 0 and mine.voluntary >= 10  # each sleep is a voluntary switch
    assert after.since(before).cpu_ns >= mine.cpu_ns


def test_machine_load_between_two_readings() -> None:
    # user nice system idle iowait irq softirq steal, in clock ticks
    load = MachineLoad.between([100, 0, 50, 1000, 0, 0, 0, 10], [160, 0, 70, 1300, 0, 0, 10, 20])
    total = 60 + 20 + 300 + 10 + 10
    assert load.steal_fraction == pytest.approx(10 / total)
    assert load.busy_s == pytest.approx((60 + 20 + 10 + 10) / os.sysconf("SC_CLK_TCK"))
    real = cpu_times()
    assert len(real) == 8 and MachineLoad.between(real, real).steal_fraction == 0.0
