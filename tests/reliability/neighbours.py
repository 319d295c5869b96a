"""Hostile neighbours on the client's own machine, each a scenario returning a ``Result``.

The real client with the sequence implementation and a real Prometheus, as in ``scenarios.py``, facing:

- a flood of connections to its health endpoint that never send a request, while it runs with few file
  descriptors (a container's limit) and spools every request: /healthz still answers, spool writes go on;
- odd entries with spool file names in SPOOL_DIR at start (a FIFO, links to /dev/zero and to a file
  elsewhere, a file far larger than any request, a directory): start-up is not blocked, they are set
  aside unread and counted, every real left-over is sent;
- a second client started on the same SPOOL_DIR: it exits 2 naming the directory and the holder, the first
  one loses nothing;
- a second SIGTERM during the flush: the client exits at once and says how many samples that costs; with
  a spool they stay on disk and the next start sends them.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import requests

from testkit.client import MonitoringClient
from testkit.ports import free_port
from testkit.prometheus import PrometheusServer
from testkit.wait import wait_until

from .harness import SeqRun
from .scenarios import FAST_RETRY_ENV, Result, _settle, _warm_up

# File descriptors the client gets in the flood scenario: a container with a low limit (``ulimit -n``).
FLOOD_NOFILE = 64


def _with_nofile(client: MonitoringClient, limit: int) -> MonitoringClient:
    """Run the client with at most ``limit`` open files (set in the child, before it becomes the client)."""
    setter = (
        "import os, resource, sys; resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[1]),) * 2);"
        " os.execv(sys.argv[2], sys.argv[2:])"
    )
    command = client.argv if os.path.isabs(client.argv[0]) else [sys.executable, *client.argv]
    client.argv = [sys.executable, "-c", setter, str(limit), *command]
    return client


def _open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def health_flood(
    workdir: Path, prometheus: PrometheusServer, *, connections: int = 300, hold_s: float = 10.0
) -> Result:
    """``connections`` half-open connections to /healthz (connect, never send), held ``hold_s`` seconds."""
    port = free_port()
    spool = Path(workdir) / "spool"
    run = SeqRun(workdir, prometheus, env={**FAST_RETRY_ENV, "HEALTH_PORT": str(port), "SPOOL_DIR": str(spool)})
    flood: list[socket.socket] = []
    try:
        client = MonitoringClient(
            run.client_env(prometheus.write_url), run.workdir / "client1.log", name="client1", cwd=run.workdir
        )
        run.clients.append(client)
        _with_nofile(client, FLOOD_NOFILE).start()
        _warm_up(run, client)
        pid = client.require_pid()
        refused = 0
        for _ in range(connections):
            try:
                flood.append(socket.create_connection(("127.0.0.1", port), timeout=2))
            except OSError:
                refused += 1
        answers: list[str] = []
        most_fds = 0
        deadline = time.monotonic() + hold_s
        while time.monotonic() < deadline:
            client.check_alive()
            most_fds = max(most_fds, _open_fds(pid))
            started = time.monotonic()
            try:
                text = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=3).text.split(":")[0]
            except requests.RequestException as exc:
                text = f"no answer ({exc.__class__.__name__})"
            answers.append(f"{text} in {time.monotonic() - started:.1f}s")
            time.sleep(0.5)
        return _settle(
            run,
            client,
            time.monotonic(),
            "health_flood",
            f"{connections} silent connections to /healthz, client limited to {FLOOD_NOFILE} open files, with spool",
            lambda: {
                "healthz_answers": sorted(set(re.sub(r"[\d.]+s$", "Ns", a) for a in answers)),
                "slowest_healthz_s": max(float(a.rsplit(" ", 1)[1][:-1]) for a in answers if " in " in a),
                "most_open_fds": most_fds,
                "connections_refused_by_kernel": refused,
                "too_many_open_files_in_log": "Too many open files" in client.log_text(),
                "spool_write_errors": run.self_metric("monitoring_client_spool_write_errors_total").get("", 0.0),
            },
        )
    finally:
        for conn in flood:
            conn.close()
        run.cleanup()


def _sequence_file_names(spool: Path, first: int) -> list[Path]:
    return [spool / f"{first + i:020d}.rwp" for i in range(5)]


def hostile_spool_entries(workdir: Path, prometheus: PrometheusServer) -> Result:
    """Left-overs of a first run (receiver down) plus odd entries named like spool files, then a restart."""
    spool = Path(workdir) / "spool"
    outside = Path(workdir) / "outside.rwp"
    run = SeqRun(workdir, prometheus, env={**FAST_RETRY_ENV, "SPOOL_DIR": str(spool)})
    try:
        prometheus.stop()
        first = run.start_client()
        run.wait_ticks(40, first)
        first.stop(20, must_exit=True)
        real = sorted(spool.glob("*.rwp"))
        left_over = len(real)
        # A copy of a real request elsewhere, for a link to a file that looks valid.
        outside.write_bytes(real[0].read_bytes())
        # Odd entries, named to sort before the real left-overs (they would be read first).
        fifo, zero, link, huge, directory = _sequence_file_names(spool, 1)
        os.mkfifo(fifo)
        os.symlink("/dev/zero", zero)
        os.symlink(outside, link)
        with open(huge, "wb") as f:
            f.truncate(1 << 30)  # sparse: 1 GiB that takes no disk
        directory.mkdir()
        prometheus.start()
        started = time.monotonic()
        second = run.start_client()
        ticks_before = run.ticks()
        run.wait_ticks(ticks_before + 10, second, timeout=30)  # it runs: start-up was not blocked
        start_s = time.monotonic() - started

        def details() -> dict[str, Any]:
            replay = re.search(r"spool: \d+ requests \(\d+ samples in \d+ series\) left by", second.log_text())
            return {
                "left_over_requests": left_over,
                "seconds_to_first_ticks": round(start_s, 1),
                "foreign_files": run.self_metric("monitoring_client_spool_foreign_files_total").get("", 0.0),
                "set_aside": sorted(p.name for p in spool.glob("*.foreign")),
                "outside_file_untouched": outside.exists(),
                "replay_log": replay.group(0) if replay else "",
            }

        title = "FIFO, links to /dev/zero and elsewhere, a 1 GiB file and a directory named like spool files"
        return _settle(run, second, started, "hostile_spool", title, details)
    finally:
        run.cleanup()


def shared_spool_dir(workdir: Path, prometheus: PrometheusServer) -> Result:
    """A second client on the same SPOOL_DIR while the first one runs."""
    spool = Path(workdir) / "spool"
    run = SeqRun(workdir, prometheus, env={**FAST_RETRY_ENV, "SPOOL_DIR": str(spool)})
    try:
        first = run.start_client()
        _warm_up(run, first)
        first_pid = first.require_pid()
        second = run.start_client()
        started = time.monotonic()
        second_status = second.wait(30)
        exit_s = time.monotonic() - started
        message = second.log_text().strip().replace(str(spool), "SPOOL_DIR")[:300]
        run.wait_ticks(run.ticks() + 10, first)
        facts = {"second_exit_status": second_status, "second_exit_s": round(exit_s, 1), "first_pid": first_pid}
        title = "a second client started on the same SPOOL_DIR"
        return _settle(run, first, started, "shared_spool", title, lambda: {**facts, "second_message": message})
    finally:
        run.cleanup()


_ABORT_RE = re.compile(r"second SIGTERM: exiting at once without sending; (\d+) samples dropped[^\n]*")


def second_sigterm(workdir: Path, prometheus: PrometheusServer, *, spool: bool = True) -> Result:
    """Receiver down, a backlog built up; SIGTERM starts the flush, a second SIGTERM ends it at once.
    Then the receiver is back and the client is started again (with the same spool, if any)."""
    spool_env = {"SPOOL_DIR": str(Path(workdir) / "spool")} if spool else {}
    run = SeqRun(workdir, prometheus, env={**FAST_RETRY_ENV, **spool_env})
    try:
        client = run.start_client()
        _warm_up(run, client)
        prometheus.stop()
        run.hold(3.0, client)
        client.send(signal.SIGTERM)
        wait_until(lambda: "stopping (SIGTERM)" in client.log_text(), 10, message="the flush started")
        client.send(signal.SIGTERM)
        first_status = client.wait(10)
        stopped_at = run.ticks()
        said = _ABORT_RE.search(client.log_text())
        prometheus.start()
        restarted = time.monotonic()
        again = run.start_client()
        run.wait_ticks(stopped_at + 10, again)
        dropped = int(said.group(1)) if said else -1
        excused = set(range(1, stopped_at + 1)) if not spool else set()
        details = {
            "first_exit_status": first_status,
            "reported_dropped": dropped,
            "message": said.group(0)[:300].replace(str(workdir), "WORKDIR") if said else "",
        }
        return _settle(
            run,
            again,
            restarted,
            "second_sigterm" if spool else "second_sigterm_no_spool",
            "second SIGTERM during the flush " + ("with the spool" if spool else "without a spool"),
            lambda: details,
            excused={str(i): excused for i in range(run.series)},
            # Without a spool the exit loses the backlog: exactly what the line said it dropped.
            allowed_loss=0 if spool else max(dropped, 0),
        )
    finally:
        run.cleanup()
