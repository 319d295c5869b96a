"""The real command in a subprocess: exit statuses and messages a person can act on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from monitoring_client import __version__
from testkit.ports import free_port

IMPLS = Path(__file__).resolve().parent / "impls"


def run_cli(*args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in {"MONITOR_IMPL", "REMOTE_WRITE_URL"}}
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "monitoring_client", *args],
        env=environ,
        cwd=str(IMPLS),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"monitoring-client {__version__}"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REMOTE_WRITE_URL", "prometheus:9090"),
        ("SCRAPE_INTERVAL_S", "-1"),
        ("PUSH_INTERVAL_S", "soon"),
        ("MAX_RETRY_BATCHES", "0"),
        ("LOG_LEVEL", "chatty"),
        ("HEALTH_PORT", "99999"),
    ],
)
def test_invalid_variable_exits_2_with_one_line(name: str, value: str) -> None:
    result = run_cli(**{name: value, "MONITOR_IMPL": "counting_impl"})
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{name}={value!r} is invalid: ") and "expected " in lines[0]
    assert "Traceback" not in result.stderr


def test_unknown_implementation_exits_2() -> None:
    result = run_cli(MONITOR_IMPL="no_such_impl")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("MONITOR_IMPL='no_such_impl' is invalid")


def test_implementations_own_config_error_exits_2() -> None:
    result = run_cli(MONITOR_IMPL="bad_config_impl.py", IMPL_GAIN="loud")
    assert result.returncode == 2
    assert result.stderr.strip() == "IMPL_GAIN='loud' is invalid: expected a number >= 0"


def test_check_validates_and_exits_0() -> None:
    result = run_cli("--check", MONITOR_IMPL="counting_impl")
    assert result.returncode == 0, result.stderr
    assert "configuration OK" in result.stdout


def test_environment_problem_in_a_thread_exits_3_with_its_paragraph() -> None:
    result = run_cli(
        MONITOR_IMPL="failing_impl",
        FAIL_WITH="environment",
        REMOTE_WRITE_URL=f"http://127.0.0.1:{free_port()}/api/v1/write",
        SCRAPE_INTERVAL_S="0.01",
        SHUTDOWN_TIMEOUT_S="1",
    )
    assert result.returncode == 3
    assert result.stderr.endswith("No RAPL counters under /nonexistent/powercap.\nRun on a machine with RAPL.\n")
    assert "Traceback" not in result.stderr


def test_crash_in_a_thread_exits_1_with_traceback() -> None:
    result = run_cli(
        MONITOR_IMPL="failing_impl",
        REMOTE_WRITE_URL=f"http://127.0.0.1:{free_port()}/api/v1/write",
        SCRAPE_INTERVAL_S="0.01",
        SHUTDOWN_TIMEOUT_S="1",
    )
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "RuntimeError: sensor exploded" in result.stderr


def test_short_sampling_intervals_shorten_the_interpreter_switch_interval() -> None:
    from monitoring_client.cli import tune_switch_interval

    before = sys.getswitchinterval()
    try:
        sys.setswitchinterval(0.005)
        assert tune_switch_interval(0.1) == 0.005  # 10 Hz: the default is short enough
        assert abs(tune_switch_interval(0.01) - 0.0005) < 1e-9  # 100 Hz: a twentieth of the interval
        assert abs(tune_switch_interval(0.001) - 0.0001) < 1e-9  # 1 kHz: not below 0.1 ms
    finally:
        sys.setswitchinterval(before)
