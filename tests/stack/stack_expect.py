"""What each dashboard query must show for a stack whose fake hardware draws known watts.

One rule per panel query, checked on every series the query returns, and for the power and energy panels
also which zones and device kinds must be there: the end-to-end test (the stack on Docker) and the
integration test of the device panels (three real clients on their fake hardware, a real Prometheus) run
every query of the dashboard through :func:`implausible` with Grafana's variables substituted.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .stack_dashboard import load_dashboards, panel_queries, regex_for, substitute


@dataclass(frozen=True)
class Expected:
    """The stack under test: what its fake hardware draws and how often its clients read and push.

    ``zones``: watts per zone (zone ids are unique on a host); ``kinds``: per client (``source``), the
    watts of its zones that are not part of another (``scope!="part"``), i.e. the device kind counted
    once; ``series``: per client, the samples one reading makes (zones x series per zone).
    """

    zones: Mapping[str, float]
    kinds: Mapping[str, float]
    series: Mapping[str, int]
    scrape_interval_s: float
    push_interval_s: float
    range_s: float

    def samples_per_s(self, source: str) -> float:
        return self.series[source] / self.scrape_interval_s


def near(value: float, expected: float, rel: float) -> bool:
    return abs(value - expected) <= rel * expected


Check = Callable[[Expected, Mapping[str, str], float], bool]


@dataclass(frozen=True)
class Rule:
    """``check(expected, labels, value)`` for each series; ``covers``: the label whose values must be exactly
    the expected zones (``zone``) or device kinds (``source``), so a missing device fails too."""

    check: Check
    covers: str | None = None


def _kind(rel: float, scale: Callable[[Expected], float] = lambda e: 1.0) -> Rule:
    return Rule(lambda e, lab, v: near(v, e.kinds[lab["source"]] * scale(e), rel), covers="source")


def _zone(rel: float, scale: Callable[[Expected], float] = lambda e: 1.0) -> Rule:
    return Rule(lambda e, lab, v: near(v, e.zones[lab["zone"]] * scale(e), rel), covers="zone")


def _interval_energy(e: Expected, lab: Mapping[str, str], v: float) -> bool:
    # One sampling interval's energy: near watts x interval; the max of a window allows a late reading.
    return 0.5 <= v / (e.zones[lab["zone"]] * e.scrape_interval_s * 1e6) <= 3


def _requests(e: Expected, lab: Mapping[str, str], v: float) -> bool:
    # 2xx at the push rate; other statuses may exist from start-up (a client does not wait for Prometheus,
    # it retries) but must have stopped.
    if lab["status"].startswith("2"):
        return 0.3 / e.push_interval_s <= v <= 3 / e.push_interval_s
    return v == 0


RULES: dict[tuple[str, str], Rule] = {
    ("Power by device kind", "A"): _kind(0.05),
    ("Power now by device kind", "A"): _kind(0.05),
    ("Power per zone", "A"): _zone(0.05),
    ("Energy by device kind over the selected range", "A"): _kind(0.12, lambda e: e.range_s),
    ("Energy over the selected range (J)", "A"): _zone(0.12, lambda e: e.range_s),
    ("Energy over the selected range (Wh)", "A"): _zone(0.12, lambda e: e.range_s / 3600),
    ("Energy per sampling interval (µJ)", "A"): Rule(_interval_energy),
    ("Samples sent and dropped per second", "A"): Rule(
        lambda e, lab, v: 0.5 * e.samples_per_s(lab["source"]) <= v <= 1.5 * e.samples_per_s(lab["source"]),
        covers="source",
    ),
    ("Samples sent and dropped per second", "B"): Rule(lambda e, lab, v: v == 0 and bool(lab.get("reason"))),
    ("Push latency", "A"): Rule(lambda e, lab, v: 0 < v < 5),
    ("Push latency", "B"): Rule(lambda e, lab, v: 0 < v < 10),
    ("Remote-write requests per second by status", "A"): Rule(_requests),
    ("Remote-write requests per second by status", "B"): Rule(lambda e, lab, v: v == 0),
    ("Buffered while the receiver is unreachable", "A"): Rule(lambda e, lab, v: 0 <= v <= 5),
    ("Buffered while the receiver is unreachable", "B"): Rule(lambda e, lab, v: 0 <= v <= 1_000_000),
    ("Time since last successful push", "A"): Rule(lambda e, lab, v: 0 <= v <= 60, covers="source"),
}
# Queries whose plausible answer is no series at all: a healthy stack fires no alert.
EMPTY = {("Firing alerts", "A")}


def without_rule() -> list[tuple[str, str]]:
    """Queries of the dashboard that no rule here checks (a new panel needs one)."""
    return [
        (q.panel, q.ref_id)
        for q in panel_queries(load_dashboards()["power.json"])
        if (q.panel, q.ref_id) not in RULES.keys() | EMPTY
    ]


def _plausible(rule: Rule, expected: Expected, labels: Mapping[str, str], value: float) -> bool:
    try:
        return math.isfinite(value) and rule.check(expected, labels, value)
    except KeyError:  # a zone or client the test did not expect
        return False


def implausible(
    query: Callable[[str], list[dict[str, Any]]], values: Mapping[str, str], expected: Expected
) -> list[str]:
    """Every query of the dashboard, with ``values`` for Grafana's variables, run through ``query``: one line
    per query whose answer is empty, incomplete or implausible (an empty list: every panel is right)."""
    problems = []
    for q in panel_queries(load_dashboards()["power.json"]):
        key = (q.panel, q.ref_id)
        expr = substitute(q.expr, values)
        result = query(expr)
        shown = [(s["metric"], float(s["value"][1])) for s in result]
        if key in EMPTY:
            if result:
                problems.append(f"{q.panel}/{q.ref_id}: expected nothing, got {shown}")
            continue
        rule = RULES[key]
        wrong = [(lab, v) for lab, v in shown if not _plausible(rule, expected, lab, v)]
        covered = {lab.get(rule.covers, "") for lab, _ in shown} if rule.covers else set()
        wanted = set(expected.zones if rule.covers == "zone" else expected.kinds) if rule.covers else set()
        if not result or wrong or covered != wanted:
            problems.append(f"{q.panel}/{q.ref_id}: {expr}\n   -> {shown}" + (f"\n   wrong: {wrong}" if wrong else ""))
    return problems


RAPL_ZONES = {"package-0": "intel-rapl:0", "core": "intel-rapl:0:0", "dram": "intel-rapl:0:1"}


def rapl_only(watts: Mapping[str, float], scrape_interval_s: float, push_interval_s: float, range_s: float) -> Expected:
    """A stack whose only client is cpu-pyjoules on a fake RAPL tree drawing ``watts`` per zone name
    (package-0, core, dram): its package and DRAM are the CPU's totals, core is inside the package."""
    return Expected(
        zones={RAPL_ZONES[name]: w for name, w in watts.items()},
        kinds={"cpu-pyjoules": watts["package-0"] + watts.get("dram", 0.0)},
        series={"cpu-pyjoules": len(watts) * 3},
        scrape_interval_s=scrape_interval_s,
        push_interval_s=push_interval_s,
        range_s=range_s,
    )


def dashboard_values(hosts: list[str], sources: list[str], range_s: float) -> dict[str, str]:
    """Grafana's variables for the dashboard's queries: the hosts and sources selected, the energy range,
    and the intervals Grafana derives from the datasource's timeInterval (10s)."""
    return {
        "host": regex_for(hosts),
        "source": regex_for(sources),
        "__range": f"{range_s:g}s",
        "__rate_interval": "40s",
        "__interval": "5s",
    }
