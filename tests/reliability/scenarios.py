"""The fault-injection scenarios, each a plain function returning its figures.

Every scenario runs the real ``monitoring-client`` (in a subprocess) with the sequence implementation
(``seq_impl.py``) against a real Prometheus it is given, injects one kind of fault, waits for recovery,
stops the client with SIGTERM and compares what was produced with what Prometheus stores. The pytest suite
asserts the targets on the returned ``Result``; ``bench/reliability.py`` runs the same functions and writes the
figures to docs/RELIABILITY.md.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testkit import fault_proxy
from testkit.client import MonitoringClient
from testkit.fault_proxy import FaultProxy
from testkit.prometheus import PrometheusServer
from testkit.wait import wait_until

from .harness import SeqRun, Tally

# Client settings that keep the scenarios short: retries are capped at a second or two so the client
# notices a recovered receiver quickly. Everything else stays at the base client's defaults.
FAST_RETRY_ENV = {"RETRY_BASE_S": "0.2", "RETRY_MAX_S": "2"}


@dataclass
class Result:
    """The figures of one scenario run."""

    name: str
    title: str
    produced: int
    stored: int
    lost: int
    duplicated: int
    recover_s: float | None
    allowed_loss: int = 0
    exit_status: int | None = None
    ordered: bool = True
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_tally(cls, name: str, title: str, tally: Tally, recover_s: float | None, **kw: Any) -> Result:
        details = kw.pop("details", {})
        if tally.missing:
            details.setdefault("missing", {k: _ranges(v) for k, v in tally.missing.items()})
        return cls(
            name=name,
            title=title,
            produced=tally.produced,
            stored=tally.stored,
            lost=tally.lost,
            duplicated=tally.duplicated,
            recover_s=recover_s,
            ordered=not tally.out_of_order_series,
            details=details,
            **kw,
        )


def _ranges(values: list[int]) -> str:
    """Compact "3-7, 12" form of a sorted list of sequence numbers, for messages and the report."""
    parts: list[str] = []
    start = prev = None
    for v in values:
        if start is None:
            start = prev = v
        elif v == prev + 1:  # type: ignore[operator]
            prev = v
        else:
            parts.append(f"{start}-{prev}" if start != prev else f"{start}")
            start = prev = v
    if start is not None:
        parts.append(f"{start}-{prev}" if start != prev else f"{start}")
    return ", ".join(parts)


def _finish(run: SeqRun, client: MonitoringClient) -> int:
    """Let the backlog arrive, then SIGTERM: the client drains and exits; return its exit status."""
    status = client.stop(20, must_exit=True)
    if status != 0:
        raise AssertionError(f"client exited with {status} after SIGTERM:\n{client.log_tail()}")
    return status


def _settle(
    run: SeqRun,
    client: MonitoringClient,
    since: float,
    name: str,
    title: str,
    details: Callable[[], dict[str, Any]] = dict,
    *,
    excused: dict[str, set[int]] | None = None,
    allowed_loss: int = 0,
) -> Result:
    """Wait until Prometheus holds every sample produced so far (but ``excused`` ones), SIGTERM the client,
    and tally; recovery is counted from ``since``. ``details`` runs after the exit (logs, self-metrics final)."""
    done = run.wait_stored_through(run.ticks(), timeout=60, client=client, excused=excused)
    status = _finish(run, client)
    extra = details()
    return Result.from_tally(
        name, title, run.tally(), done - since, exit_status=status, allowed_loss=allowed_loss, details=extra
    )


def _warm_up(run: SeqRun, client: MonitoringClient, ticks: int = 10) -> int:
    """Produce a few ticks and see them stored, so each fault hits a client in full flow."""
    run.wait_ticks(ticks, client)
    run.wait_stored_through(ticks, timeout=60, client=client)
    return run.ticks()


# --------------------------------------------------------------------------------------------------
# Receiver outages and restarts (client talks to Prometheus directly)
# --------------------------------------------------------------------------------------------------
def receiver_down(
    workdir: Path,
    prometheus: PrometheusServer,
    *,
    outage_s: float = 60.0,
    scrape_interval_s: float = 0.05,
    push_interval_s: float = 0.5,
    series: int = 3,
    env: dict[str, str] | None = None,
    title: str | None = None,
) -> Result:
    """Prometheus stopped for ``outage_s`` seconds, then started again on the same port and data."""
    run = SeqRun(
        workdir,
        prometheus,
        scrape_interval_s=scrape_interval_s,
        push_interval_s=push_interval_s,
        series=series,
        env=FAST_RETRY_ENV if env is None else env,
    )
    try:
        client = run.start_client()
        _warm_up(run, client)
        prometheus.stop()
        run.hold(outage_s, client)
        prometheus.start()
        back = time.monotonic()
        target = run.ticks()
        done = run.wait_stored_through(target, timeout=120 + outage_s / 2, client=client)
        status = _finish(run, client)
        return Result.from_tally(
            "receiver_down",
            title or f"receiver down {outage_s:g} s, then back",
            run.tally(),
            done - back,
            exit_status=status,
            details={
                "outage_s": outage_s,
                "scrape_interval_s": scrape_interval_s,
                "push_interval_s": push_interval_s,
                "series": series,
                "peak_buffered_payloads": run.peak("monitoring_client_buffered_payloads"),
                "peak_buffered_bytes": run.peak("monitoring_client_buffered_bytes"),
            },
        )
    finally:
        run.cleanup()


def receiver_down_default_rates(
    workdir: Path, prometheus: PrometheusServer, *, outage_s: float = 600.0, series: int = 24
) -> Result:
    """The issue's target: a 10-minute outage at the default rates (SCRAPE_INTERVAL_S=0.1,
    PUSH_INTERVAL_S=1, default retry and buffer settings) with 24 series, i.e. cpu-pyjoules on a machine
    with 8 zones (3 series each), 240 samples/s."""
    return receiver_down(
        workdir,
        prometheus,
        outage_s=outage_s,
        scrape_interval_s=0.1,
        push_interval_s=1.0,
        series=series,
        env={},
        title=f"receiver down {outage_s / 60:g} min at default rates ({series} series)",
    )


def receiver_restarted(workdir: Path, prometheus: PrometheusServer, *, restarts: int = 2) -> Result:
    """Prometheus restarted (SIGTERM, then started again at once) while the client keeps pushing."""
    run = SeqRun(workdir, prometheus, env=FAST_RETRY_ENV)
    try:
        client = run.start_client()
        _warm_up(run, client)
        worst = 0.0
        for _ in range(restarts):
            stopped = time.monotonic()
            prometheus.stop()
            prometheus.start()
            target = run.ticks()
            done = run.wait_stored_through(target, timeout=60, client=client)
            worst = max(worst, done - stopped)
        status = _finish(run, client)
        return Result.from_tally(
            "receiver_restarted",
            f"receiver restarted {restarts} times",
            run.tally(),
            worst,
            exit_status=status,
            details={"restarts": restarts},
        )
    finally:
        run.cleanup()


def client_sigkill(
    workdir: Path,
    prometheus: PrometheusServer,
    *,
    push_interval_s: float = 0.5,
    scrape_interval_s: float = 0.05,
    spool: bool = True,
    during_outage: bool = True,
    env: dict[str, str] | None = None,
) -> Result:
    """Client killed with SIGKILL (while the receiver is down, so a backlog exists) and restarted with
    the same spool directory; the receiver comes back after the restart.

    Samples still in the implementation's queues when the kill lands are gone by definition; the spool
    must keep everything handed to the sender. The bound asserted is one push interval of samples plus the
    tick in transit.
    """
    spool_env = {"SPOOL_DIR": str(Path(workdir) / "spool")} if spool else {}
    run = SeqRun(
        workdir,
        prometheus,
        scrape_interval_s=scrape_interval_s,
        push_interval_s=push_interval_s,
        env={**FAST_RETRY_ENV, **spool_env, **(env or {})},
    )
    try:
        client = run.start_client()
        _warm_up(run, client)
        if during_outage:
            prometheus.stop()
        # A random phase: where the kill lands within the push cycle decides how much it can take.
        run.hold(max(3.0, 6 * push_interval_s) + random.uniform(0, push_interval_s), client)
        client.kill()
        killed_at_tick = run.ticks()  # the ledger is written before each hand-over: final after the kill
        if during_outage:
            prometheus.start()
        restarted = time.monotonic()
        client2 = run.start_client()
        run.wait_ticks(killed_at_tick + 20, client2)
        target = run.ticks()
        # Only the tail before the kill may be missing; wait with twice the asserted bound, assert later.
        # The bound: the ticks of one push interval (grouped, not yet handed to the sender) plus the one
        # tick that may be on its way through the queues when the kill lands.
        bound = _ticks_per_push(run) + 1
        first_excused = killed_at_tick - 2 * bound + 1 if spool else 1  # no spool: the whole backlog may go
        tail = set(range(max(1, first_excused), killed_at_tick + 1))
        done = run.wait_stored_through(
            target, timeout=120, client=client2, excused={str(i): tail for i in range(run.series)}
        )
        status = _finish(run, client2)
        tally = run.tally()
        return Result.from_tally(
            "client_sigkill" if spool else "client_sigkill_no_spool",
            f"client SIGKILLed {'during an outage ' if during_outage else ''}and restarted"
            + (" with the spool" if spool else " without a spool"),
            tally,
            done - restarted,
            exit_status=status,
            allowed_loss=bound * run.series,
            details={
                "killed_at_tick": killed_at_tick,
                "push_interval_s": push_interval_s,
                "lost_per_series": {k: len(v) for k, v in tally.missing.items()},
                "bound_per_series": bound,
                "lost_only_at_kill": all(set(v) <= tail for v in tally.missing.values()),
                **({} if spool else {"comparison_only": True}),
            },
        )
    finally:
        run.cleanup()


def _ticks_per_push(run: SeqRun) -> int:
    return max(1, round(run.push_interval_s / run.scrape_interval_s))


# --------------------------------------------------------------------------------------------------
# Receiver misbehaving (through the fault proxy in front of Prometheus)
# --------------------------------------------------------------------------------------------------
def _proxied(
    name: str,
    title: str,
    workdir: Path,
    prometheus: PrometheusServer,
    inject: Callable[[FaultProxy, SeqRun, MonitoringClient], float],
    *,
    env: dict[str, str] | None = None,
    excused_from: Callable[[FaultProxy], dict[str, set[int]]] | None = None,
    details: Callable[[FaultProxy, SeqRun], dict[str, Any]] | None = None,
) -> Result:
    """Common frame: client -> proxy -> Prometheus; ``inject`` applies faults and returns when they end."""
    run = SeqRun(workdir, prometheus, env={**FAST_RETRY_ENV, **(env or {})})
    with FaultProxy(prometheus.url) as proxy:
        try:
            client = run.start_client(proxy.write_url)
            _warm_up(run, client)
            fault_end = inject(proxy, run, client)
            target = run.ticks()
            excused = excused_from(proxy) if excused_from else {}
            done = run.wait_stored_through(target, timeout=90, client=client, excused=excused)
            status = _finish(run, client)
            extra = {"proxy": dict(proxy.counts)}
            if details:
                extra.update(details(proxy, run))
            return Result.from_tally(
                name,
                title,
                run.tally(),
                done - fault_end,
                exit_status=status,
                allowed_loss=sum(len(v) for v in excused.values()),
                details=extra,
            )
        finally:
            run.cleanup()


def _after_faults(proxy: FaultProxy, client: MonitoringClient, timeout: float = 60) -> float:
    """Wait until every queued fault has been used; return the time of the last faulty exchange."""

    def used() -> bool:
        client.check_alive()
        return proxy.pending() == 0

    wait_until(used, timeout, interval=0.05, message="all queued faults used")
    return max(e.at for e in proxy.snapshot() if e.fault != "pass")


def too_many_requests(workdir: Path, prometheus: PrometheusServer, *, retry_after_s: int = 2, count: int = 3) -> Result:
    """Receiver answers 429 with Retry-After a few times in a row."""

    def inject(proxy: FaultProxy, run: SeqRun, client: MonitoringClient) -> float:
        proxy.enqueue(*[fault_proxy.status(429, retry_after=str(retry_after_s), body="slow down")] * count)
        return _after_faults(proxy, client)

    def gaps(proxy: FaultProxy, run: SeqRun) -> dict[str, Any]:
        ex = proxy.snapshot()
        waits = [round(b.at - a.at, 2) for a, b in itertools.pairwise(ex) if a.fault == "status_429"]
        return {"retry_after_s": retry_after_s, "waits_after_429_s": waits}

    return _proxied(
        "status_429",
        f"429 with Retry-After: {retry_after_s} ({count} in a row)",
        workdir,
        prometheus,
        inject,
        details=gaps,
    )


def service_unavailable(workdir: Path, prometheus: PrometheusServer, *, window_s: float = 5.0) -> Result:
    """Receiver answers 503 to every request for ``window_s`` seconds."""

    def inject(proxy: FaultProxy, run: SeqRun, client: MonitoringClient) -> float:
        proxy.fail_for(window_s, fault_proxy.status(503, body="unavailable"))
        run.hold(window_s, client)
        wait_until(
            lambda: proxy.count("pass") > 0 and proxy.snapshot()[-1].fault == "pass",
            30,
            message="a request passed after the 503 window",
        )
        return max(e.at for e in proxy.snapshot() if e.fault != "pass")

    return _proxied("status_503", f"503 for {window_s:g} s", workdir, prometheus, inject)


def slow_responses(
    workdir: Path, prometheus: PrometheusServer, *, timeout_s: float = 1.0, count: int = 3, forward: bool = True
) -> Result:
    """Receiver answers later than the client's request timeout (``count`` requests in a row).

    With ``forward`` the receiver has stored the data before its answer is lost: the client's retry then
    re-sends samples Prometheus already holds, which must neither be stored twice nor block later data.
    """

    def inject(proxy: FaultProxy, run: SeqRun, client: MonitoringClient) -> float:
        proxy.enqueue(*[fault_proxy.slow(timeout_s * 4, forward=forward)] * count)
        return _after_faults(proxy, client)

    def statuses(proxy: FaultProxy, run: SeqRun) -> dict[str, Any]:
        return {
            "upstream_statuses": sorted({str(e.upstream_status) for e in proxy.snapshot()}),
            "request_timeout_s": timeout_s,
        }

    how = "after storing" if forward else "without storing"
    return _proxied(
        "slow",
        f"answers slower than the {timeout_s:g} s timeout, {how} ({count} in a row)",
        workdir,
        prometheus,
        inject,
        env={"REQUEST_TIMEOUT_S": str(timeout_s)},
        details=statuses,
    )


def connection_resets(workdir: Path, prometheus: PrometheusServer, *, count: int = 3) -> Result:
    """Connections reset (TCP RST) instead of answered, before and after the receiver stored the data."""

    def inject(proxy: FaultProxy, run: SeqRun, client: MonitoringClient) -> float:
        proxy.enqueue(*[fault_proxy.reset()] * count, *[fault_proxy.reset(forward=True)] * count)
        return _after_faults(proxy, client)

    return _proxied("reset", f"connection reset ({count} before, {count} after storing)", workdir, prometheus, inject)


def refused_400(workdir: Path, prometheus: PrometheusServer) -> Result:
    """One request refused with 400 among good ones (a receiver that refuses a whole request for some of its
    samples): the client sends its halves instead, which pass here, so nothing is lost."""

    def inject(proxy: FaultProxy, run: SeqRun, client: MonitoringClient) -> float:
        proxy.enqueue(fault_proxy.status(400, body="out of order sample (injected)"))
        return _after_faults(proxy, client)

    def details(proxy: FaultProxy, run: SeqRun) -> dict[str, Any]:
        dropped = run.self_metric("monitoring_client_samples_dropped_total", by="reason")
        refused = [ex for ex in proxy.snapshot() if ex.fault == "status_400"]
        n = sum(len(v) for ex in refused for v in decode_sequence_numbers(ex.body).values())
        return {"refused_request_samples": n, "client_dropped_by_reason": {k: v for k, v in dropped.items() if v}}

    return _proxied(
        "status_400",
        "one request refused with 400 among good ones (split, halves sent)",
        workdir,
        prometheus,
        inject,
        details=details,
    )


def decode_sequence_numbers(body: bytes) -> dict[str, set[int]]:
    """Sequence numbers per series ``k`` inside one remote-write request body (snappy + protobuf)."""
    import snappy

    from monitoring_client import remote_pb2

    req = remote_pb2.WriteRequest()
    req.ParseFromString(snappy.uncompress(body))
    out: dict[str, set[int]] = {}
    for ts in req.timeseries:
        labels = {lab.name: lab.value for lab in ts.labels}
        if labels.get("__name__") == "reliability_sequence":
            out.setdefault(labels.get("k", "?"), set()).update(int(s.value) for s in ts.samples)
    return out


# --------------------------------------------------------------------------------------------------
# Misbehaving inputs (direct to Prometheus)
# --------------------------------------------------------------------------------------------------
def bad_records(workdir: Path, prometheus: PrometheusServer, *, every: int = 5, ticks: int = 100) -> Result:
    """The implementation mixes bad items (not a dict, missing key, non-numeric value, invalid metric or
    label name) into its output; the good samples must all arrive and every bad one be counted."""
    run = SeqRun(workdir, prometheus, env={"SEQ_BAD_EVERY": str(every), "SEQ_TICKS": str(ticks)})
    try:
        client = run.start_client()
        run.wait_ticks(ticks, client)
        start = time.monotonic()
        done = run.wait_stored_through(ticks, timeout=60, client=client)
        status = _finish(run, client)
        bad = run.ledger_state()["bad"]
        dropped = run.self_metric("monitoring_client_samples_dropped_total", by="reason")
        return Result.from_tally(
            "bad_records",
            f"implementation emits bad items ({bad} of 5 kinds)",
            run.tally(),
            done - start,
            exit_status=status,
            details={"bad_items_emitted": bad, "client_dropped_by_reason": dropped},
        )
    finally:
        run.cleanup()


def clock_step_back(workdir: Path, prometheus: PrometheusServer, *, step_s: float = 2.0, at_tick: int = 40) -> Result:
    """The host's wall clock jumps back ``step_s`` seconds after tick ``at_tick``: samples stamped before
    the last accepted one are dropped by the ordering guard (counted) instead of making Prometheus reject
    whole requests; samples after the clock catches up arrive; what is stored stays ordered per series."""
    run = SeqRun(
        workdir,
        prometheus,
        env={**FAST_RETRY_ENV, "SEQ_CLOCK_STEP_BACK_S": str(step_s), "SEQ_CLOCK_STEP_AT_TICK": str(at_tick)},
    )
    try:
        client = run.start_client()
        run.wait_ticks(at_tick, client)
        stepped = time.monotonic()
        # Caught up once the stamps pass the last pre-step stamp: about step_s of ticks later.
        caught_up_tick = at_tick + int(step_s / run.scrape_interval_s) + 10
        run.wait_ticks(caught_up_tick + 10, client)
        target = run.ticks()

        def recovered() -> float:
            client.check_alive()
            stored = run.stored()
            ok = len(stored) == run.series and all(
                {int(v) for _, v in s} >= set(range(caught_up_tick, target + 1)) for s in stored.values()
            )
            return time.monotonic() if ok else 0.0

        done = wait_until(recovered, 60, interval=0.1, message="samples after the clock caught up stored")
        status = _finish(run, client)
        tally = run.tally()
        dropped = run.self_metric("monitoring_client_samples_dropped_total", by="reason")
        rejected = run.self_metric("monitoring_client_requests_total", by="status")
        return Result.from_tally(
            "clock_step_back",
            f"host clock steps back {step_s:g} s",
            tally,
            done - stepped,
            exit_status=status,
            allowed_loss=tally.lost,
            details={
                "client_dropped_by_reason": dropped,
                "requests_by_status": rejected,
                "expected_guard_drops_max": int(step_s / run.scrape_interval_s + 2) * run.series,
            },
        )
    finally:
        run.cleanup()


def counter_wraps(
    workdir: Path, prometheus: PrometheusServer, *, run_s: float = 8.0, wrap_joules: float = 10.0
) -> Result:
    """cpu-pyjoules on a fake powercap tree whose counters wrap every fraction of a second to a few
    seconds: every sample the implementation hands over is stored, no energy or power is negative, the
    joules counter never goes down, and the energy stored matches what the fake tree drew."""
    from cpu_pyjoules.fake_powercap import FakePowercap

    root = Path(__file__).resolve().parents[2]
    impl = root / "cpu-pyjoules" / "monitor_impl.py"
    watts = {"package-0": 20.0, "core": 12.0, "dram": 3.0}
    tree = Path(workdir) / "powercap"
    run = SeqRun(workdir, prometheus, env=FAST_RETRY_ENV)
    with FakePowercap(tree, watts=watts, wrap_joules=wrap_joules, start_fraction=0.9) as fake:
        try:
            client = run.start_client(MONITOR_IMPL=str(impl), POWERCAP_ROOT=str(tree), SERVICE_LABEL="cpu-pyjoules")
            started = time.monotonic()
            run.hold(run_s, client)
            status = _finish(run, client)
        finally:
            run.cleanup()
    prefix = "pyjoules_remote_write"
    wraps = {z.name: int((z.initial_uj + z.energy_uj) // z.max_range_uj) for z in fake.zones.values()}
    received = run.self_metric("monitoring_client_samples_received_total")
    stored_series = {
        key: samples for key, samples in prometheus.raw_samples(f'{{__name__=~"{prefix}_.*"}}', window="2h").items()
    }
    stored = sum(len(v) for v in stored_series.values())
    negative = sum(1 for samples in stored_series.values() for _, v in samples if v < 0)
    decreasing = 0
    energy_error: dict[str, float] = {}
    power_median: dict[str, float] = {}
    for key, samples in stored_series.items():
        labels = dict(key)
        if labels["__name__"] == f"{prefix}_energy_joules_total":
            values = [v for _, v in samples]
            decreasing += sum(1 for a, b in itertools.pairwise(values) if b < a)
            span_s = (samples[-1][0] - samples[0][0]) / 1000
            got = values[-1] - values[0]
            want = watts[labels["component"]] * span_s
            energy_error[labels["component"]] = round((got - want) / want * 100, 2) if want else 0.0
        if labels["__name__"] == f"{prefix}_power_watts":
            ordered = sorted(v for _, v in samples)
            power_median[labels["component"]] = round(ordered[len(ordered) // 2], 2)
    produced = int(sum(received.values())) if received else 0
    return Result(
        name="counter_wrap",
        title=f"RAPL counters wrap (cpu-pyjoules, fake tree wrapping every {wrap_joules:g} J)",
        produced=produced,
        stored=stored,
        lost=max(0, produced - stored),
        duplicated=max(0, stored - produced),
        recover_s=None,
        exit_status=status,
        ordered=decreasing == 0 and negative == 0,
        details={
            "wraps_per_zone": wraps,
            "negative_values": negative,
            "joules_total_decreases": decreasing,
            "energy_error_percent": energy_error,
            "median_power_w": power_median,
            "true_watts": watts,
            "run_s": round(time.monotonic() - started, 1),
        },
    )
