"""Generate docs/RELIABILITY.md from actual runs: ``.venv/bin/python -m bench.reliability [--long]``.

Run from the repository root with the project's virtual environment (``.venv/bin/python``, created by
``./run-tests.sh``). It runs the fault-injection scenarios of the test suite (same code,
``tests/reliability/scenarios.py``)
against real Prometheus servers it starts on 127.0.0.1, the bad-input cases against the real CLI and the
stack's ``docker-compose_helper.sh``, and writes the figures. Nothing in the document is typed by hand.

Sections can be run separately (``--sections scenarios,bad_input``); the figures of sections not run this
time are taken from the previous run's data file (docs/reliability-data.json), and each section says when
it was measured. ``--long`` adds the 10-minute outage at the default rates (about 12 minutes);
``--render-only`` rewrites the document from the data file without running anything.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench import REPO
from bench.header import measured_line, run_facts
from testkit.prometheus import PrometheusServer, find_prometheus
from tests.reliability import answers, bad_input, neighbours, scenarios, transport_scenarios
from tests.reliability.scenarios import Result

DOC = REPO / "docs" / "RELIABILITY.md"
DATA = REPO / "docs" / "reliability-data.json"

# (name, function, keyword arguments)
SCENARIOS: list[tuple[str, Callable[..., Result], dict[str, Any]]] = [
    ("receiver_down", scenarios.receiver_down, {"outage_s": 60}),
    ("receiver_restarted", scenarios.receiver_restarted, {}),
    ("client_sigkill", scenarios.client_sigkill, {}),
    ("client_sigkill_no_spool", scenarios.client_sigkill, {"spool": False}),
    ("status_429", scenarios.too_many_requests, {}),
    ("status_503", scenarios.service_unavailable, {}),
    ("slow_stored", scenarios.slow_responses, {"forward": True}),
    ("slow_not_stored", scenarios.slow_responses, {"forward": False}),
    ("reset", scenarios.connection_resets, {}),
    ("status_400", scenarios.refused_400, {}),
    ("bad_records", scenarios.bad_records, {}),
    ("counter_wrap", scenarios.counter_wraps, {}),
    ("clock_step_back", scenarios.clock_step_back, {}),
    ("hostile_trickle", transport_scenarios.hostile_answers, {"kind": "trickle"}),
    ("hostile_huge_body", transport_scenarios.hostile_answers, {"kind": "huge_body"}),
    ("hostile_endless_chunked", transport_scenarios.hostile_answers, {"kind": "endless_chunked"}),
    ("redirect_307_same", transport_scenarios.redirected, {"code": 307, "same_origin": True}),
    ("redirect_301_other", transport_scenarios.redirected, {"code": 301, "same_origin": False}),
    # What the client does with each answer, and hostile local inputs: one row per scenario, named after it.
    *(
        (scenario.__name__, scenario, {})
        for scenario in (
            answers.samples_out_of_window,
            answers.refused_sample_split,
            answers.too_large_413,
            answers.conflict_409,
            answers.credentials_refused,
            answers.credentials_fixed_on_the_server,
            answers.refused_for_good,
            answers.never_answered,
            neighbours.health_flood,
            neighbours.hostile_spool_entries,
            neighbours.shared_spool_dir,
            neighbours.second_sigterm,
        )
    ),
    ("second_sigterm_no_spool", neighbours.second_sigterm, {"spool": False}),
]

SUMMARY_KEYS = ("produced", "stored", "lost", "duplicated", "recover_s", "error")

LONG = ("receiver_down_10min", scenarios.receiver_down_default_rates, {"outage_s": 600})

# SIGKILL with the spool, repeated: where the kill lands within a push interval decides the loss.
SIGKILL_PUSH_INTERVALS = (0.1, 0.5, 1.0)
SIGKILL_REPEATS = 5


def sigkill_rows() -> list[dict[str, Any]]:
    rows = []
    for push in SIGKILL_PUSH_INTERVALS:
        runs = [
            run_scenario(
                f"sigkill_push_{push:g}s_{i + 1}",
                scenarios.client_sigkill,
                {"push_interval_s": push, "scrape_interval_s": 0.05},
            )
            for i in range(SIGKILL_REPEATS)
        ]
        ok = [r for r in runs if "error" not in r]
        lost_ticks = sorted(max(r["details"]["lost_per_series"].values(), default=0) for r in ok)
        rows.append(
            {
                "push_interval_s": push,
                "runs": len(runs),
                "failed_runs": len(runs) - len(ok),
                "bound_ticks": ok[0]["details"]["bound_per_series"] if ok else None,
                "lost_ticks": lost_ticks,
                "lost_samples_total": sum(r["lost"] for r in ok),
                "produced_total": sum(r["produced"] for r in ok),
                "duplicated_total": sum(r["duplicated"] for r in ok),
                "within_bound": all(r["lost"] <= r["allowed_loss"] for r in ok) and len(ok) == len(runs),
                "recover_s_max": max((r["recover_s"] for r in ok), default=None),
            }
        )
    return rows


def spool_write_cost(samples: int = 200, payload_bytes: int = 4000) -> dict[str, Any]:
    """Time one durable spool write (temporary file, fsync, rename, directory fsync) on this machine."""
    from monitoring_client.spool import Spool

    with tempfile.TemporaryDirectory(prefix="rel-spool-cost-") as tmp:
        spool = Spool(Path(tmp), max_bytes=10**9, max_age_s=0)
        spool.open()
        body = os.urandom(payload_bytes)
        times = []
        for _ in range(samples):
            started = time.perf_counter()
            entry = spool.put(body, 100)
            times.append(time.perf_counter() - started)
            spool.remove(entry)
    times.sort()
    return {
        "writes": samples,
        "payload_bytes": payload_bytes,
        "p50_ms": round(times[len(times) // 2] * 1000, 3),
        "p99_ms": round(times[int(len(times) * 0.99)] * 1000, 3),
        "max_ms": round(times[-1] * 1000, 3),
        "filesystem_dir": tempfile.gettempdir(),
    }


def run_scenario(name: str, func: Callable[..., Result], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Run one scenario against a fresh Prometheus in a temporary directory; never raise."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"rel-{name}-") as tmp:
        try:
            with PrometheusServer(Path(tmp) / "prometheus") as prom:
                result = func(Path(tmp) / "run", prom, **kwargs)
            out = asdict(result)
            out["name"] = name
        except Exception as exc:  # noqa: BLE001 - a failed scenario is a figure too
            out = {"name": name, "title": name, "error": f"{type(exc).__name__}: {exc}"[:2000]}
    out["duration_s"] = round(time.monotonic() - started, 1)
    print(
        f"[report] {name}: {json.dumps({k: out.get(k) for k in SUMMARY_KEYS})}",
        flush=True,
    )
    return out


# --------------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------------
def _verdict(r: dict[str, Any]) -> str:
    if "error" in r:
        return "FAILED to run"
    if (r.get("details") or {}).get("comparison_only"):
        return "for comparison only"
    ok = r["lost"] <= r["allowed_loss"] and r["duplicated"] == 0 and r["ordered"] and r["exit_status"] == 0
    return "meets target" if ok else "MISSES target"


def _num(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _detail_text(r: dict[str, Any]) -> str:
    d = dict(r.get("details") or {})
    keep = []
    for key, value in d.items():
        if key in ("scrape_interval_s", "push_interval_s", "outage_s"):
            continue
        keep.append(f"{key}: {json.dumps(value, sort_keys=True)}")
    return "; ".join(keep).replace("|", "\\|")


def render_scenarios(rows: list[dict[str, Any]]) -> list[str]:
    out = [
        "| scenario | produced | stored | lost | duplicated | time to recover (s) | loss allowed | verdict |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['title']} | – | – | – | – | – | – | FAILED to run: {r['error'][:300]} |")
            continue
        out.append(
            f"| {r['title']} | {r['produced']} | {r['stored']} | {r['lost']} | {r['duplicated']} | "
            f"{_num(r['recover_s'])} | {r['allowed_loss']} | {_verdict(r)} |"
        )
    out += ["", "Details per scenario (from the same runs):", ""]
    for r in rows:
        if "error" not in r:
            out.append(f"- **{r['title']}** ({r['duration_s']} s run): {_detail_text(r) or 'nothing more'}")
    return out


def render_bad_input(rows: list[dict[str, Any]]) -> list[str]:
    out = [
        "| case | input | what the user sees | exit status |",
        "|---|---|---|---:|",
    ]
    for r in rows:
        seen = r["message"].strip().replace("|", "\\|").replace("\n", "<br>") or "(nothing)"
        given = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in r["input"]).replace("|", "\\|")
        out.append(f"| {r['case']} | `{given}` | {seen} | {r['exit_status']} |")
    return out


def render_summary(sections: dict[str, Any]) -> list[str]:
    """The issue's targets, each with the figure that decides it."""
    out = ["## Summary against the targets", ""]
    scen = (sections.get("scenarios") or {}).get("rows", [])
    ran = [r for r in scen if "error" not in r and not (r.get("details") or {}).get("comparison_only")]
    if scen:
        met = [r for r in ran if _verdict(r) == "meets target"]
        failed = sum(1 for r in scen if "error" in r)
        out.append(
            f"- Fault-injection scenarios meeting their target: {len(met)} of {len(ran)}"
            + (f" ({failed} more failed to run)" if failed else "")
            + f"; duplicates stored across all of them: {sum(r['duplicated'] for r in ran)}."
        )
    long = (sections.get("long") or {}).get("rows", [])
    if long and "error" not in long[0]:
        r = long[0]
        out.append(
            f"- 10-minute outage at the default rates: {r['lost']} of {r['produced']} samples lost,"
            f" {r['duplicated']} duplicated, recovered {_num(r['recover_s'])} s after the receiver was back."
        )
    kill = (sections.get("sigkill") or {}).get("rows", [])
    for r in kill:
        worst = max(r["lost_ticks"], default=0)
        out.append(
            f"- SIGKILL with the spool, PUSH_INTERVAL_S={r['push_interval_s']:g}: at most {worst} ticks lost per"
            f" kill over {r['runs']} kills (bound {r['bound_ticks']}), {r['duplicated_total']} duplicated."
        )
    out.append("")
    return out


def render(data: dict[str, Any]) -> str:
    lines = [
        "# Reliability report",
        "",
        "<!-- Generated by `python -m bench.reliability`. Do not edit by hand: re-run it. -->",
        "",
        "Generated by `.venv/bin/python -m bench.reliability` (add `--long` for the 10-minute outage)",
        "from actual runs of the fault-injection scenarios in `tests/reliability/` (the same code the test",
        "suite asserts on), the real `monitoring-client` CLI and a real Prometheus on 127.0.0.1. Nothing",
        "below is typed by hand.",
        "",
        "How the figures are counted: the test implementation (`tests/reliability/seq_impl.py`, written from",
        "the seed contract only) emits one sample per series per tick whose value is the tick's sequence",
        "number, and records how many ticks it produced in a ledger file before handing each over. *Produced*",
        "is ticks × series; *stored* is what Prometheus holds afterwards; *lost* counts sequence numbers",
        "missing from a series; *duplicated* counts a sequence number stored more than once. *Time to",
        "recover* runs from the end of the fault (receiver ready again, last faulty answer, restart) until",
        "Prometheus holds every sample produced up to then. Unless the row says otherwise: 3 series, one",
        "tick every 0.05 s, a push every 0.5 s, retry backoff 0.2 s to 2 s, Prometheus without an",
        "out-of-order window (the strictest receiver).",
        "",
    ]
    sections = data.get("sections", {})
    lines += render_summary(sections)
    for title, key, body, missing in (
        ("Fault-injection scenarios", "scenarios", _scenarios_body, "Not run yet."),
        ("Client SIGKILL with the spool: loss against the push interval", "sigkill", _sigkill_body, "Not run yet."),
        (
            "10-minute outage at the default rates",
            "long",
            _long_body,
            "Not run yet: `.venv/bin/python -m bench.reliability --sections long`.",
        ),
        ("Bad input: what the user sees", "bad_input", _bad_input_body, "Not run yet."),
    ):
        section = sections.get(key)
        lines += [f"## {title}", "", *([measured_line(section["env"]), *body(section)] if section else [missing]), ""]
    lines.append("")
    return "\n".join(lines)


def _scenarios_body(scen: dict[str, Any]) -> list[str]:
    return [
        "",
        *render_scenarios(scen["rows"]),
        "",
        "Where a loss is allowed, and why:",
        "",
        "- *SIGKILL with the spool*: the samples not yet handed to the sender (grouped since the last",
        "  push, plus the tick in transit); everything handed over survives in SPOOL_DIR. The row",
        "  without a spool shows what the spool saves.",
        "- *400 among good ones* and *413*, *409*: nothing; the client sends the refused request's halves",
        "  (and theirs, when refused again), which the proxy lets through.",
        "- *every request refused for good (422)*: exactly the samples of the refused requests (the proxy",
        "  decodes what it refused); the client drops them as `rejected`, says so in ERROR lines with counts,",
        "  and every later sample arrives.",
        "- *second SIGTERM without a spool*: exactly the samples the client's last line says it dropped",
        "  (the backlog held in memory while the receiver was down); with the spool, nothing.",
        "- *out of window*, *refused sample*: the two-day-old and ten-years-ahead samples are in a series",
        "  of their own, not counted as produced; the details show them dropped (`too_old`,",
        "  `too_far_ahead`, `rejected`) and never stored.",
        "- *clock steps back*: samples stamped at or before the last one accepted for their series",
        "  are dropped by the ordering guard and counted (`out_of_order`), so Prometheus never refuses",
        "  a whole request; the stored series stay strictly ordered.",
        "- *redirect to another host*: exactly the samples of the redirected request (it is not followed:",
        "  only 307/308 to the same scheme, host and port are); the log line says where it pointed.",
        "- *hostile answers* (trickled, 200 MB, endless): nothing; the details show the client's memory",
        "  before the faults and at its peak, and how much of each answer it took before hanging up.",
        "- *counter wraps*: produced is what cpu-pyjoules handed to the client",
        "  (`monitoring_client_samples_received_total`); the details compare the stored energy with",
        "  the energy the fake powercap tree really drew, across the wraps.",
    ]


def _sigkill_body(kill: dict[str, Any]) -> list[str]:
    lines = [
        "The client is killed with SIGKILL while the receiver is down (so a backlog is spooled), restarted",
        "with the same SPOOL_DIR, and the receiver comes back. What the kill can take is what was not yet",
        "handed to the sender: the samples grouped since the last push (at most one push interval) plus the",
        "tick in transit in the queues; the bound below is those ticks. Ticks every",
        f"0.05 s, 3 series, {SIGKILL_REPEATS} kills per row at random points of the push cycle.",
        "",
        "| PUSH_INTERVAL_S | bound (ticks) | ticks lost per kill (sorted) | samples lost / produced | duplicated"
        " | within bound | slowest recovery (s) |",
        "|---:|---:|---|---:|---:|---|---:|",
    ]
    for r in kill["rows"]:
        failed = f" ({r['failed_runs']} runs failed)" if r["failed_runs"] else ""
        lines.append(
            f"| {r['push_interval_s']:g} | {r['bound_ticks']} | {', '.join(map(str, r['lost_ticks']))} | "
            f"{r['lost_samples_total']} / {r['produced_total']} | {r['duplicated_total']} | "
            f"{'yes' if r['within_bound'] else 'NO'}{failed} | {_num(r['recover_s_max'])} |"
        )
    cost = kill.get("write_cost")
    if cost:
        lines += [
            "",
            f"Cost of spooling, measured the same day: one durable write of a {cost['payload_bytes']}-byte",
            f"payload (temporary file, fsync, rename, directory fsync) takes {cost['p50_ms']} ms at the median,",
            f"{cost['p99_ms']} ms at p99 ({cost['writes']} writes in {cost['filesystem_dir']}). The spool writes",
            "once per push, on the batcher thread, never on the collector's.",
        ]
    return lines


def _long_body(long: dict[str, Any]) -> list[str]:
    series = long["rows"][0].get("details", {}).get("series", "?")
    return [
        "The client runs with its defaults (SCRAPE_INTERVAL_S=0.1, PUSH_INTERVAL_S=1, default retry and buffer",
        f"bounds) and the sequence implementation with {series} series, i.e. the sample rate of cpu-pyjoules",
        "on an 8-zone machine; Prometheus is stopped for 600 s.",
        "",
        *render_scenarios(long["rows"]),
    ]


def _bad_input_body(bad: dict[str, Any]) -> list[str]:
    return [
        "Measured by running the real `monitoring-client` (and the stack's `docker-compose_helper.sh` for `.env`",
        "lines) and capturing its standard error and exit status.",
        "",
        *render_bad_input(bad["rows"]),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long", action="store_true", help="also run the 10-minute outage at default rates")
    parser.add_argument(
        "--sections",
        default="scenarios,sigkill,bad_input",
        help="comma-separated: scenarios, sigkill, bad_input, long (default: all but long)",
    )
    parser.add_argument("--only", default="", help="comma-separated scenario names (default: all)")
    parser.add_argument("--output", type=Path, default=DOC)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--render-only", action="store_true", help="rewrite the document from --data, run nothing")
    args = parser.parse_args(argv)
    if args.render_only:
        args.output.write_text(render(json.loads(args.data.read_text())))
        print(f"[report] wrote {args.output} from {args.data}")
        return 0
    wanted = {s.strip() for s in args.sections.split(",") if s.strip()}
    if args.long:
        wanted.add("long")
    if find_prometheus() is None:
        print(
            "Prometheus binary not found: run ./run-tests.sh first (it installs it) or set PROMETHEUS_BIN",
            file=sys.stderr,
        )
        return 3

    data: dict[str, Any] = {"sections": {}}
    if args.data.exists():
        data = json.loads(args.data.read_text())
    env = run_facts(find_prometheus())
    if "scenarios" in wanted:
        only = {s for s in args.only.split(",") if s}
        previous = {r["name"]: r for r in data.get("sections", {}).get("scenarios", {}).get("rows", [])}
        rows = []
        for name, func, kwargs in SCENARIOS:
            if only and name not in only:
                if name in previous:
                    rows.append(previous[name])
                continue
            rows.append(run_scenario(name, func, kwargs))
        data["sections"]["scenarios"] = {"env": env, "rows": rows}
    if "sigkill" in wanted:
        data["sections"]["sigkill"] = {"env": env, "rows": sigkill_rows(), "write_cost": spool_write_cost()}
    if "long" in wanted:
        name, func, kwargs = LONG
        data["sections"]["long"] = {"env": env, "rows": [run_scenario(name, func, kwargs)]}
    if "bad_input" in wanted:
        data["sections"]["bad_input"] = {"env": env, "rows": bad_input.run_all(REPO)}
    args.data.parent.mkdir(parents=True, exist_ok=True)
    args.data.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    args.output.write_text(render(data))
    print(f"[report] wrote {args.output} and {args.data}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
