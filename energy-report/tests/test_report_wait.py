"""Which series a window waits for and reports: data past the end, stopped clients, ended series.

Stand-in servers (unit tests of this logic) answer the series and raw-sample queries from memory, with
series that "arrive" at given times of a fake clock; the real servers are in the integration tests.
"""

from __future__ import annotations

from typing import Any

import pytest

from energy_report.api import wait_for_data
from energy_report.errors import NoDataError
from energy_report.report import Reporter

END = 1000.0


class Store:
    """Series ``zone`` -> (time its data past END becomes visible, or None for never)."""

    def __init__(self, arrivals: dict[str, float | None], clock: list[float]) -> None:
        self.arrivals = arrivals
        self.clock = clock
        self.url = "stand-in"

    def labels(self, zone: str) -> dict[str, str]:
        return {"__name__": "x_energy_joules_total", "host": "h", "zone": zone}

    def series(self, selector: str, start: float, end: float) -> list[dict[str, str]]:
        return [self.labels(z) for z in self.arrivals] if end >= END - 10 else []

    def query(self, promql: str, at: float) -> dict[str, Any]:
        assert promql.endswith("ms]") or promql.endswith("s]"), promql
        result = [
            {"metric": self.labels(z), "values": [[END + 0.1, "1"]]}
            for z, t in self.arrivals.items()
            if t is not None and self.clock[0] >= t
        ]
        return {"resultType": "matrix", "result": result}


def run(arrivals: dict[str, float | None], wait_s: float) -> tuple[list[dict[str, str]], float]:
    clock = [END]

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    reporter = Reporter(Store(arrivals, clock), [])  # type: ignore[arg-type]
    late = wait_for_data(reporter, END - 10, END, wait_s, clock=lambda: clock[0], sleep=sleep)
    return [dict(key) for key in late], clock[0] - END


def test_returns_as_soon_as_every_series_has_data_past_the_end() -> None:
    warnings, waited = run({"a": END + 1.0, "b": END + 2.0}, wait_s=60)
    assert warnings == [] and 2.0 <= waited <= 2.5


def test_a_series_that_stopped_gets_a_grace_period_not_the_whole_wait() -> None:
    warnings, waited = run({"a": END + 1.0, "b": None}, wait_s=60)
    assert 16.0 <= waited <= 16.6
    assert [w["zone"] for w in warnings] == ["b"]


def test_wait_is_bounded_when_nothing_arrives() -> None:
    warnings, waited = run({"a": None}, wait_s=5)
    assert len(warnings) == 1 and 5.0 <= waited <= 5.6


def test_no_matching_series_after_waiting_is_no_data() -> None:
    clock = [END + 100]
    reporter = Reporter(Store({}, clock), [])  # type: ignore[arg-type]
    with pytest.raises(NoDataError):
        wait_for_data(
            reporter, END, END + 1, 1.0, clock=lambda: clock[0], sleep=lambda s: clock.__setitem__(0, clock[0] + s)
        )


class Memory:
    """Energy counters in memory, answering the two endpoints the reporter uses (instant range queries)."""

    def __init__(self, series: dict[str, list[tuple[float, float]]]) -> None:
        self.data = {zone: samples for zone, samples in series.items()}
        self.url = "memory"

    def labels(self, zone: str) -> dict[str, str]:
        return {"__name__": "x_energy_joules_total", "host": "h", "zone": zone}

    def series(self, selector: str, start: float, end: float) -> list[dict[str, str]]:
        return [self.labels(z) for z in self.data] if "_energy_joules_total" in selector else []

    def query(self, promql: str, at: float) -> dict[str, Any]:
        if "_energy_joules_total" not in promql:
            return {"resultType": "matrix", "result": []}
        span = promql.rsplit("[", 1)[1].rstrip("]")
        seconds = int(span[:-2]) / 1000 if span.endswith("ms") else int(span[:-1])
        result = []
        for zone, samples in self.data.items():
            values = [[t, str(v)] for t, v in samples if at - seconds <= t <= at]
            if values:
                result.append({"metric": self.labels(zone), "values": values})
        return {"resultType": "matrix", "result": result}


def test_series_that_ended_before_the_window_are_left_out() -> None:
    live = [(END - 20 + 0.1 * i, 5.0 * 0.1 * i) for i in range(300)]
    dead = [(END - 20 + 0.1 * i, 3.0 * 0.1 * i) for i in range(50)]  # stops 5 s before the window
    reporter = Reporter(Memory({"live": live, "dead": dead}), [])  # type: ignore[arg-type]
    report = reporter.report("w", END - 10, END)
    assert [s.labels["zone"] for s in report.series] == ["live"]
    assert report.series[0].energy.joules == pytest.approx(50.0)
    with pytest.raises(NoDataError, match="ended before it started"):
        Reporter(Memory({"dead": dead}), []).report("w", END - 10, END)  # type: ignore[arg-type]
