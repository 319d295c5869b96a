"""The managed process: if it lost track of a PID or lied about readiness, every suite built on it would."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest

from testkit.process import ManagedProcess
from testkit.wait import GiveUp

# Prints "ready", then exits 0 on SIGTERM (after printing which signal), or runs until killed.
WELL_BEHAVED = """
import signal, sys, time
signal.signal(signal.SIGTERM, lambda s, f: (print("got SIGTERM", flush=True), sys.exit(0)))
print("ready", flush=True)
while True:
    time.sleep(0.05)
"""
STUBBORN = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
while True:
    time.sleep(0.05)
"""


def python(code: str, log: Path) -> ManagedProcess:
    return ManagedProcess([sys.executable, "-c", code], log, name="child")


def test_start_ready_stop_and_restart_append_to_one_log(tmp_path: Path) -> None:
    child = python(WELL_BEHAVED, tmp_path / "child.log")
    child.start()
    first = child.pid
    assert first is not None
    child.wait_ready(lambda: "ready" in child.log_text(), 20, "prints ready")
    assert child.stop(grace=20) == 0 and not child.killed
    assert child.pid is None and not child.alive()
    assert "got SIGTERM" in child.log_text()
    child.start()
    child.wait_ready(lambda: child.log_text().count("ready") == 2, 20, "prints ready again")
    assert child.pid not in (None, first)
    child.stop(grace=20)
    assert child.log_text().count("got SIGTERM") == 2


def test_stop_kills_a_process_that_ignores_sigterm(tmp_path: Path) -> None:
    child = python(STUBBORN, tmp_path / "child.log").start()
    child.wait_ready(lambda: "ready" in child.log_text(), 20, "prints ready")
    started = time.monotonic()
    assert child.stop(grace=0.5) == -signal.SIGKILL
    assert child.killed and time.monotonic() - started < 15
    stubborn = python(STUBBORN, tmp_path / "again.log").start()
    stubborn.wait_ready(lambda: "ready" in stubborn.log_text(), 20, "prints ready")
    with pytest.raises(AssertionError, match="ignored SIGTERM"):
        stubborn.stop(grace=0.5, must_exit=True)
    assert not stubborn.alive()


def test_a_dead_process_ends_the_wait_at_once_with_its_log(tmp_path: Path) -> None:
    child = python("print('bad config'); raise SystemExit(2)", tmp_path / "child.log").start()
    started = time.monotonic()
    with pytest.raises(GiveUp, match=r"child exited with 2:\nbad config"):
        child.wait_ready(lambda: False, 60, "never")
    assert time.monotonic() - started < 30
    assert child.stop() == 2 and child.returncode == 2


def test_terminate_sends_sigterm_only_once(tmp_path: Path) -> None:
    child = python(WELL_BEHAVED, tmp_path / "child.log").start()
    child.wait_ready(lambda: "ready" in child.log_text(), 20, "prints ready")
    child.terminate()
    child.terminate()
    assert child.wait(20) == 0
    assert child.log_text().count("got SIGTERM") == 1
