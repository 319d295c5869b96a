"""``EnergyWindow``: the report of a phase that code marks itself, the same object ``measure`` prints.

    from energy_report import EnergyWindow

    with EnergyWindow("train", match=['{host="lab-7"}']) as window:
        train()
    print(window.result.series[0].energy.joules)

or ``w = EnergyWindow("eval").begin(); ...; report = w.end()``. ``end()`` waits (up to ``wait_s``) until
every matching series has a sample after the end, because clients push in batches, then reports the window.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence

from energy_report import contract
from energy_report.contract import SeriesKey
from energy_report.errors import NoDataError, ReportError, UsageError
from energy_report.progress import Progress
from energy_report.record import WindowRecorder
from energy_report.report import Reporter, WindowReport
from energy_report.samples import fetch_span, to_ms
from energy_report.server import DEFAULT_URL, Connection, PromServer

DEFAULT_WAIT_S = 60.0
POLL_S = 0.5
GRACE_S = 15.0  # once some series have data past the end, how much longer the others are waited for


def wait_for_data(
    reporter: Reporter,
    start: float,
    end: float,
    wait_s: float,
    *,
    grace_s: float = GRACE_S,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> list[SeriesKey]:
    """Wait until every series matching in the window has a sample after ``end``, for at most ``wait_s``.

    Once some series have data past the end, the others get ``grace_s`` more: a client that stopped during
    the window (or pushes far less often) should not hold up the report for the whole ``wait_s``. Returns the
    series that still had none (their tail becomes a gap). Raises NoDataError when no series matches even
    after waiting.
    """
    progress = reporter.progress
    deadline = clock() + wait_s
    selector = contract.energy_selector(reporter.matchers)
    end_ms = to_ms(end)
    while True:
        now = clock()
        try:
            keys = {contract.series_key(labels) for labels in reporter.discover(start, end)}
        except NoDataError:
            if now >= deadline:
                raise
            keys = set()
        if keys:
            done = set(fetch_span(reporter.server, selector, end_ms, max(to_ms(now), end_ms + 1)).series)
            missing = keys - done
            if not missing:
                progress.done()
                return []
            if done and deadline > now + grace_s:
                deadline = now + grace_s  # the others had their chance: wait a little more, not wait_s
            if now >= deadline:
                progress.done()
                return sorted(missing)
            progress.update(
                f"energy-report: waiting for data past the end: {len(keys) - len(missing)}/{len(keys)} series "
                f"({now - end:.0f} s of at most {wait_s:g} s)"
            )
        sleep(POLL_S)


class EnergyWindow:
    """A window from ``begin()`` to ``end()`` on this machine's clock, reported from the store."""

    def __init__(
        self,
        name: str = "",
        *,
        prometheus: str | Connection | None = None,
        match: Sequence[str] = (),
        wait_s: float = DEFAULT_WAIT_S,
        write_url: str | None = None,
        progress: bool | Progress = False,
        keep_power: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if isinstance(prometheus, Connection):
            conn = prometheus
        else:
            conn = Connection(url=prometheus or os.environ.get("PROMETHEUS_URL") or DEFAULT_URL)
        self.name = name
        self.conn = conn
        self.match = list(match)
        self.wait_s = wait_s
        self.write_url = write_url
        self.progress = progress if isinstance(progress, Progress) else Progress(enabled=progress)
        self.keep_power = keep_power
        self.clock = clock
        self.start: float | None = None
        self.stop: float | None = None
        self.result: WindowReport | None = None
        self._recorder: WindowRecorder | None = None
        contract.check_matchers(self.match)  # a bad selector fails at once, not after the work

    def begin(self) -> EnergyWindow:
        if self.start is not None:
            raise UsageError("this EnergyWindow has already begun")
        if self.write_url:
            self._recorder = WindowRecorder(self.write_url, self.conn, self.name, clock=self.clock)
        self.start = self.clock()
        if self._recorder is not None:
            self._recorder.begin(self.start)
        return self

    def end(self) -> WindowReport:
        """Close the window, wait for the data, and return its report (also kept in ``result``)."""
        if self.start is None:
            raise UsageError("end() before begin()")
        if self.stop is None:
            self.stop = self.clock()
            if self._recorder is not None:
                self._recorder.end(self.stop)
        server = PromServer(self.conn)
        try:
            reporter = Reporter(server, self.match, progress=self.progress, keep_power=self.keep_power)
            late = set(wait_for_data(reporter, self.start, self.stop, self.wait_s, clock=self.clock))
            report = reporter.report(self.name, self.start, self.stop)
        finally:
            server.close()
        warnings = [
            f"{s.labels.get('host', '')}/{s.labels.get('zone', '')}: no sample after the end within the wait; "
            "the time after its last sample counts as a gap"
            for s in report.series
            if s.identity() in late  # series that ended before the window are not in the report at all
        ]
        report.warnings[:0] = warnings + (self._recorder.warnings if self._recorder else [])
        self.result = report
        return report

    def __enter__(self) -> EnergyWindow:
        return self.begin()

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.end()
        elif self._recorder is not None and self.stop is None:
            self.stop = self.clock()
            try:
                self._recorder.end(self.stop)
            except ReportError:
                pass
