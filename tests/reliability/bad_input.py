"""Bad input cases for the report: run the real CLI (and the stack's helper) and capture what users see.

Each case sets one variable to a value it must refuse on top of an otherwise valid configuration (the
cases come from the rows of the settings tables: each row's kind gives values of the wrong shape or out of
its bounds, and a row adds values refused when the client starts, such as a module that does not exist), runs
``monitoring-client`` and records its standard error and exit status. A configuration the client accepts
(an unreachable receiver is not a configuration error) keeps running: the case records what it logged in
its first seconds, then stops it with SIGTERM and records that exit status.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from monitoring_client.config import Config
from monitoring_client.settings_table import rows
from monitoring_client.settings_values import FREE_PORT
from testkit.ports import free_port
from testkit.webconfig import make_pki

from .harness import SEQ_IMPL, client_command


def _cpu_settings() -> type[Any] | None:
    try:
        from cpu_pyjoules.settings import Settings
    except ImportError:  # cpu-pyjoules not installed: its cases are left out
        return None
    return Settings


def cases(settings_class: type[Any]) -> list[tuple[str, str, str]]:
    """(why, variable, value) for every value each row of a settings table must refuse, in table order."""
    return [(bad.why, row.variable, bad.value) for row in rows(settings_class) for bad in row.refused()]


def _with_case(env: dict[str, str], settings_class: type[Any], variable: str, value: str) -> dict[str, str]:
    """``env`` with the case's variable set, and the other variables the case needs (HEALTH_HOST only
    matters with HEALTH_PORT set, for instance)."""
    for row in rows(settings_class):
        for bad in row.refused():
            if (row.variable, bad.value) == (variable, value):
                for other, other_value in bad.also.items():
                    env[other] = str(free_port()) if other_value == FREE_PORT else other_value
    env[variable] = value
    return env


# Built from the settings tables: a new row brings its cases with it. test_bad_input.py checks that every
# variable of the base client has at least one.
CLIENT_CASES: list[tuple[str, str, str]] = cases(Config)
# cpu-pyjoules' own variables, run with its monitor_impl.py (when cpu-pyjoules is installed).
CPU_SETTINGS = _cpu_settings()
CPU_CASES: list[tuple[str, str, str]] = cases(CPU_SETTINGS) if CPU_SETTINGS is not None else []


@dataclass
class Outcome:
    case: str
    input: str
    message: str
    exit_status: str


def run_client(env: dict[str, str], cwd: Path, *, grace_s: float = 4.0, max_lines: int = 6) -> tuple[str, str]:
    """Run the CLI; return (what it printed, exit status text). Still running after ``grace_s``: SIGTERM."""
    proc = subprocess.Popen(
        client_command(),
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=grace_s + 8)  # start-up errors come at once
        status = str(proc.returncode)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        status = f"{proc.returncode} (kept running, retrying; stopped with SIGTERM)"
    text = (err or "") + (out or "")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(lines) > max_lines:
        lines = lines[:max_lines] + [f"… ({len(lines) - max_lines} more lines)"]
    return "\n".join(lines), status


def _base_env(tmp: Path, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEQ_", "SPOOL_"))}
    env.update(
        {
            "REMOTE_WRITE_URL": url,
            "MONITOR_IMPL": str(SEQ_IMPL),
            "SEQ_LEDGER": str(tmp / "ledger.json"),
            "HOST_LABEL": "bad-input",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def run_all(root: Path) -> list[dict[str, Any]]:
    """Every case, in table order."""
    rows: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="rel-bad-input-") as tmpdir:
        tmp = Path(tmpdir)
        # A port bound but never listening: connections are refused, and no other process can take it
        # meanwhile (a port that was merely free could be picked up by another test's server).
        holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        holder.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{holder.getsockname()[1]}/api/v1/write"
        try:
            rows.extend(_client_rows(root, tmp, closed))
        finally:
            holder.close()
        rows.extend(env_file_cases(root, tmp))
    return [r.__dict__ for r in rows]


def _client_rows(root: Path, tmp: Path, closed: str) -> list[Outcome]:
    rows: list[Outcome] = []
    # Short grace: a start-up check that passes means the process runs; SIGTERM then ends it with 0.
    for label, var, value in CLIENT_CASES:
        env = _with_case(_base_env(tmp, closed), Config, var, value)
        message, status = run_client(env, tmp, grace_s=3)
        rows.append(Outcome(f"{var}: {label}", f"{var}={value}", message, status))

    env = _base_env(tmp, closed)
    message, status = run_client(env, tmp, grace_s=4)
    rows.append(Outcome("receiver unreachable (nothing listens)", f"REMOTE_WRITE_URL={closed}", message, status))

    # Accepted URLs whose log lines matter: credentials shown redacted, non-ASCII encoded.
    secret_url = closed.replace("http://", "http://writer:not-a-real-password@") + "?api_key=not-a-real-key"
    message, status = run_client(_base_env(tmp, secret_url), tmp, grace_s=4)
    rows.append(
        Outcome("credentials in the URL (user:password@, ?api_key=)", f"REMOTE_WRITE_URL={secret_url}", message, status)
    )
    unicode_url = closed.replace("/api/v1/write", "/schreib/grüße")
    message, status = run_client(_base_env(tmp, unicode_url), tmp, grace_s=4)
    rows.append(Outcome("non-ASCII characters in the URL", f"REMOTE_WRITE_URL={unicode_url}", message, status))

    rows.append(_https_to_http_case(tmp))
    rows.append(_wrong_ca_case(tmp))

    cpu_impl = root / "cpu-pyjoules" / "monitor_impl.py"
    if cpu_impl.exists() and CPU_SETTINGS is not None:
        for label, var, value in CPU_CASES:
            env = _base_env(tmp, closed)
            env["MONITOR_IMPL"] = str(cpu_impl)
            env = _with_case(env, CPU_SETTINGS, var, value)
            message, status = run_client(env, tmp, grace_s=3)
            rows.append(Outcome(f"cpu-pyjoules {var}: {label}", f"{var}={value}", message, status))
    return rows


@contextlib.contextmanager
def _local_server(context: ssl.SSLContext | None = None) -> Iterator[int]:
    """An HTTP server on 127.0.0.1 that answers nothing useful (TLS with ``context``); yields its port."""

    class Quiet(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def _https_to_http_case(tmp: Path) -> Outcome:
    """https:// to a receiver that speaks plain HTTP (a wrong scheme that passes validation)."""
    with _local_server() as port:
        url = f"https://127.0.0.1:{port}/api/v1/write"
        message, status = run_client(_base_env(tmp, url), tmp, grace_s=4)
    return Outcome("wrong scheme for the receiver (https to plain HTTP)", f"REMOTE_WRITE_URL={url}", message, status)


def _wrong_ca_case(tmp: Path) -> Outcome:
    """A TLS receiver whose certificate another CA signed than the one REMOTE_WRITE_CA_FILE holds."""
    what = "TLS receiver signed by another CA than REMOTE_WRITE_CA_FILE"
    if shutil.which("openssl") is None:
        return Outcome(what, "(openssl not installed)", "not measured", "–")
    pki = make_pki(tmp / "pki")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server.cert, pki.server.key)
    with _local_server(context) as port:
        env = _base_env(tmp, f"https://127.0.0.1:{port}/api/v1/write")
        env["REMOTE_WRITE_CA_FILE"] = str(pki.other_ca.cert)
        message, status = run_client(env, tmp, grace_s=4)
    shown = message.replace(str(tmp) + "/", "")
    return Outcome(what, f"REMOTE_WRITE_CA_FILE={pki.other_ca.cert.relative_to(tmp)}", shown, status)


# --------------------------------------------------------------------------------------------------
# Malformed .env lines, through the stack's helper (run, never edited)
# --------------------------------------------------------------------------------------------------
ENV_LINES: list[tuple[str, str]] = [
    ("line without =", "CLIENT_CPU_PYJOULES_URL"),
    ("space around =", "PRIVILEGED = true"),
    ("unterminated quote", 'GRAFANA_IMAGE="grafana/grafana:11.2.0'),
    ("invalid variable name", "1ST_VALUE=x"),
    ("shell command substitution", "HOST_LABEL=$(touch {marker})"),
    ("invalid mode", "RAPL_ACCESS=container"),
]
# Lines written to .env.local (the operator's own file, where secrets live): (label, file content).
ENV_LOCAL_FILES: list[tuple[str, str]] = [
    ("byte-order mark at the start of .env.local", "\ufeffHOST_LABEL=lab-a\n"),
    ("a secret on a line without =", "PROMETHEUS_AUTH_PASSWORD not-a-real-secret-7f3a\n"),
    ("a 1 MB line", "HOST_LABEL=" + "a" * 1_000_000 + "\n"),
]


def env_file_cases(root: Path, tmp: Path) -> list[Outcome]:
    """Copy the stack files to a scratch directory, append one malformed line to its .env, run the helper."""
    helper = root / "docker-compose_helper.sh"
    if not helper.exists():
        return [Outcome(".env lines", "(docker-compose_helper.sh not present)", "not measured", "–")]
    rows = []
    for label, line in ENV_LINES:
        scratch = tmp / f"stack-{len(rows)}"
        _copy_stack(root, scratch)
        env_path = scratch / ".env"
        base = env_path.read_text() if env_path.exists() else ""
        marker = scratch / "code-ran"
        line = line.replace("{marker}", str(marker))
        env_path.write_text(base.rstrip("\n") + "\n" + line + "\n")
        status, text, _ = _run_helper(scratch)
        if "{marker}" in ENV_LINES[len(rows)][1]:
            text += "\n(the command in the value " + ("RAN" if marker.exists() else "did not run") + ")"
            line = line.replace(str(marker), "/path/marker")
        rows.append(Outcome(f".env: {label}", line, text, status))
    for label, content in ENV_LOCAL_FILES:
        scratch = tmp / f"stack-{len(rows)}"
        _copy_stack(root, scratch)
        (scratch / ".env.local").write_text(content, encoding="utf-8")
        status, text, seconds = _run_helper(scratch)
        if len(content) > 200:
            text += f"\n(parsed in {seconds:.1f} s)"
            shown = content[:24] + f"… ({len(content):,} characters)"
        else:
            shown = content.strip().replace("\ufeff", "<U+FEFF>")
        rows.append(Outcome(f".env.local: {label}", shown, text, status))
    return rows


def _run_helper(scratch: Path) -> tuple[str, str, float]:
    """The helper's checks on a scratch copy of the stack (``--print-command``: parse the .env files and
    check them, then print the compose command instead of running it): exit status, what it said, seconds."""
    started = time.monotonic()
    proc = subprocess.run(
        ["bash", str(scratch / "docker-compose_helper.sh"), "--print-command", "config"],
        cwd=scratch,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    seconds = time.monotonic() - started
    text = (proc.stderr or "").strip().replace(str(scratch) + "/", "")
    if proc.returncode == 0:
        text = (text + "\n" if text else "") + "(accepted; stdout: " + proc.stdout.strip()[:200] + ")"
    lines = [ln if len(ln) <= 300 else ln[:300] + "…" for ln in text.splitlines()]
    if len(lines) > 6:
        lines = lines[:6] + [f"… ({len(lines) - 6} more lines)"]
    return str(proc.returncode), "\n".join(lines), seconds


def _copy_stack(root: Path, dest: Path) -> None:
    dest.mkdir(parents=True)
    for item in root.iterdir():
        if item.name in (".git", ".venv", "docs", "bench", "tests", "testkit", "node_modules"):
            continue
        target = dest / item.name
        if item.is_dir():
            shutil.copytree(item, target, symlinks=True, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(item, target)
