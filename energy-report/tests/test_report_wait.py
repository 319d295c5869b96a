"""measure's wait for data past the window's end: done when every series has some, bounded otherwise.

A stand-in server (unit test of the waiting logic) answers the series and raw-sample queries from an
in-memory store whose series "arrive" at given times of a fake clock; the real servers are in the
integration tests.
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


def run(arrivals: dict[str, float | None], wait_s: float) -> tuple[list[str], float]:
    clock = [END]

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    reporter = Reporter(Store(arrivals, clock), [])  # type: ignore[arg-type]
    warnings = wait_for_data(reporter, END - 10, END, wait_s, clock=lambda: clock[0], sleep=sleep)
    return warnings, clock[0] - END


def test_returns_as_soon_as_every_series_has_data_past_the_end() -> None:
    warnings, waited = run({"a": END + 1.0, "b": END + 2.0}, wait_s=60)
    assert warnings == [] and 2.0 <= waited <= 2.5


def test_a_series_that_stopped_gets_a_grace_period_not_the_whole_wait() -> None:
    warnings, waited = run({"a": END + 1.0, "b": None}, wait_s=60)
    assert 16.0 <= waited <= 16.6
    (warning,) = warnings
    assert warning.startswith("h/b: no sample after the end")


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
