"""Fault-injection scenarios about the exchange itself: receivers that trickle, flood or redirect.

Same frame as ``scenarios.py`` (the real client and the sequence implementation, the fault proxy in front of
a real Prometheus, every sample counted), plus the client's memory: its resident size just before the
faults and its peak (``VmHWM``) once they are over, so a client that read a hostile answer whole would show
it. The pytest suite asserts the targets (``test_transport_faults.py``); ``bench/reliability.py`` writes the
figures to docs/RELIABILITY.md.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from testkit import fault_proxy
from testkit.client import MonitoringClient
from testkit.fault_proxy import FaultProxy
from testkit.prometheus import PrometheusServer
from testkit.wait import wait_until

from .harness import SeqRun
from .scenarios import Result, _after_faults, _proxied, decode_sequence_numbers

MB = 1024 * 1024
HUGE = 200 * MB
# What each hostile receiver does to the next requests, and the client settings it is run with.
HOSTILE: dict[str, tuple[str, list[fault_proxy.Fault], dict[str, str]]] = {
    "trickle": (
        "answer trickled 1 byte / 0.5 s after storing (REQUEST_TIMEOUT_S=2, 2 in a row)",
        [fault_proxy.trickle(0.5, forward=True)] * 2,
        {"REQUEST_TIMEOUT_S": "2"},
    ),
    "huge_body": (
        "500 with a 200 MB body (3 in a row)",
        [fault_proxy.huge_body(HUGE, status=500)] * 3,
        {},
    ),
    "endless_chunked": (
        "503 with a chunked body that never ends (3 in a row)",
        [fault_proxy.endless_chunked(status=503)] * 3,
        {},
    ),
}


def _kib(pid: int, field: str) -> int:
    """A ``/proc/<pid>/status`` memory field (VmRSS, VmHWM) in KiB."""
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.M)
    return int(match.group(1)) if match else 0


def hostile_answers(workdir: Path, prometheus: PrometheusServer, *, kind: str) -> Result:
    """The receiver answers the next requests in one of the ``HOSTILE`` ways; every sample must still arrive,
    each hostile exchange must end (the client drops the connection), and memory must stay flat."""
    title, faults, env = HOSTILE[kind]
    memory: dict[str, Any] = {}

    def inject(proxy: FaultProxy, run: SeqRun, client: MonitoringClient) -> float:
        pid = client.require_pid()
        memory["rss_before_mib"] = round(_kib(pid, "VmRSS") / 1024, 1)
        proxy.enqueue(*faults)
        end = _after_faults(proxy, client, timeout=120)

        def all_ended() -> bool:
            client.check_alive()
            hostile = [e for e in proxy.snapshot() if e.fault == faults[0].name]
            return len(hostile) == len(faults) and all(e.answer_bytes > 0 for e in hostile)

        wait_until(all_ended, 60, message="every hostile answer ended: the client hung up")
        memory["peak_rss_mib"] = round(_kib(pid, "VmHWM") / 1024, 1)
        return end

    def details(proxy: FaultProxy, run: SeqRun) -> dict[str, Any]:
        taken = [e.answer_bytes for e in proxy.snapshot() if e.fault == faults[0].name]
        offered = {"huge_body": HUGE, "trickle": 1_000_000}.get(kind)
        return {
            **memory,
            "peak_rss_growth_mib": round(memory["peak_rss_mib"] - memory["rss_before_mib"], 1),
            "answer_bytes_sent_before_hang_up": taken,
            **({"answer_bytes_offered": offered} if offered else {"answer_bytes_offered": "endless"}),
        }

    return _proxied(f"hostile_{kind}", f"receiver: {title}", workdir, prometheus, inject, env=env, details=details)


def redirected(workdir: Path, prometheus: PrometheusServer, *, code: int = 307, same_origin: bool = True) -> Result:
    """The receiver redirects one request: a 307/308 to the same scheme, host and port is followed (nothing
    lost); any other redirect is not, its request is refused for good like a 400 (the loss allowed is that
    request's samples) and the log says where it pointed."""
    where = "/api/v1/write?moved=1" if same_origin else "http://127.0.0.1:9/api/v1/write?api_key=not-a-key"

    def inject(proxy: FaultProxy, run: SeqRun, client: MonitoringClient) -> float:
        proxy.enqueue(fault_proxy.redirect(code, where))
        return _after_faults(proxy, client)

    def refused(proxy: FaultProxy) -> dict[str, set[int]]:
        if same_origin and code in (307, 308):
            return {}
        out: dict[str, set[int]] = {}
        for ex in proxy.snapshot():
            if ex.fault == f"status_{code}":
                for k, values in decode_sequence_numbers(ex.body).items():
                    out.setdefault(k, set()).update(values)
        return out

    def details(proxy: FaultProxy, run: SeqRun) -> dict[str, Any]:
        log = "\n".join(c.log_text() for c in run.clients)
        said = [line.split(": ", 1)[-1] for line in log.splitlines() if "redirect" in line][:1]
        moved = [e.path for e in proxy.snapshot() if "moved=1" in e.path]
        return {"followed_to": moved[:1], "log_line": said}

    how = "to the same host" if same_origin else "to another host"
    return _proxied(
        f"redirect_{code}_{'same' if same_origin else 'other'}",
        f"receiver redirects one request ({code} {how})",
        workdir,
        prometheus,
        inject,
        excused_from=refused,
        details=details,
    )
