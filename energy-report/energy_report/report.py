"""One window's report: find the contract's series, stream their raw samples, compute exact energy.

For every energy counter matching the user's selectors in the window, the counter is read as raw samples
(one sample before the window, every sample inside, one after), and its power gauge inside the window gives
the peak. Totals per host and device kind add only ``scope="total"`` series, so a whole-board rail and its
parts are never counted twice.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from energy_report import contract
from energy_report.contract import SeriesKey
from energy_report.energy import EnergyAccumulator, SeriesEnergy
from energy_report.errors import NoDataError, UsageError
from energy_report.progress import Progress
from energy_report.samples import DEFAULT_TARGET_SAMPLES, fetch_span, iter_chunks, to_ms
from energy_report.server import PromServer
from energy_report.timeparse import format_time

# How far before and after the window to look for the samples that bracket its edges (growing until found).
EDGE_LOOKS_S = (2.0, 30.0, 300.0)
PLOT_POINTS = 2000  # power samples kept per series for a plot (bucket means over the window)


@dataclass
class SeriesReport:
    labels: dict[str, str]
    energy: SeriesEnergy
    peak_watts: float | None = None
    power_points: list[tuple[float, float]] | None = None  # (seconds since window start, watts), for plots
    host_has_psys: bool = False  # set by the window: legacy RAPL series without ``scope`` nest under psys

    @property
    def metric(self) -> str:
        return self.labels.get("__name__", "")

    @property
    def device_kind(self) -> str:
        return contract.device_kind(self.metric)

    @property
    def scope(self) -> str:
        return contract.scope_of(self.labels, self.host_has_psys)

    def identity(self) -> SeriesKey:
        return contract.series_key(self.labels)

    def as_dict(self) -> dict[str, object]:
        e = self.energy
        plain = {k: v for k, v in self.labels.items() if k != "__name__"}
        out: dict[str, object] = {
            "metric": self.metric,
            "device_kind": self.device_kind,
            "scope": self.scope,
            "labels": plain,
            "start": e.start,
            "end": e.end,
            "joules": e.joules,
            "joules_estimated_gaps": e.joules_estimated_gaps,
            "avg_watts": e.avg_watts,
            "peak_watts": self.peak_watts,
            "samples": e.samples,
            "coverage": e.coverage,
            "resets": e.resets,
            "sampling_interval_s": e.sampling_interval_s,
            "gaps": [g.as_dict() for g in e.gaps],
        }
        for name, value in plain.items():  # labels at the top level too, unless they clash with a figure
            out.setdefault(name, value)
        return out


@dataclass
class Total:
    """Sum over one host's ``scope="total"`` series of one device kind."""

    host: str
    device_kind: str
    joules: float
    joules_estimated_gaps: float
    avg_watts: float
    series: int
    zones: list[str]

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


@dataclass
class WindowReport:
    name: str
    start: float
    end: float
    series: list[SeriesReport] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    command: list[str] | None = None
    exit_status: int | None = None

    @property
    def seconds(self) -> float:
        return self.end - self.start

    def totals(self) -> list[Total]:
        groups: dict[tuple[str, str], list[SeriesReport]] = {}
        for s in self.series:
            if s.scope != "part":
                groups.setdefault((s.labels.get("host", ""), s.device_kind), []).append(s)
        out = []
        for (host, kind), members in sorted(groups.items()):
            joules = sum(m.energy.joules for m in members)
            estimated = sum(m.energy.joules_estimated_gaps for m in members)
            out.append(
                Total(
                    host=host,
                    device_kind=kind,
                    joules=joules,
                    joules_estimated_gaps=estimated,
                    avg_watts=(joules + estimated) / self.seconds,
                    series=len(members),
                    zones=[m.labels.get("zone", "") for m in members],
                )
            )
        return out

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "name": self.name,
            "start": self.start,
            "end": self.end,
            "start_rfc3339": format_time(self.start),
            "end_rfc3339": format_time(self.end),
            "seconds": self.seconds,
        }
        if self.command is not None:
            out["command"] = self.command
            out["exit_status"] = self.exit_status
        out["series"] = [s.as_dict() for s in self.series]
        out["totals"] = [t.as_dict() for t in self.totals()]
        out["warnings"] = list(self.warnings)
        return out


def describe_matchers(matchers: Sequence[str]) -> str:
    return "{" + ",".join(matchers) + "}" if matchers else "(no --match)"


class Reporter:
    """Builds window reports from one server for one set of ``--match`` selectors."""

    def __init__(
        self,
        server: PromServer,
        matchers: Sequence[str] = (),
        *,
        progress: Progress | None = None,
        keep_power: bool = False,
        target_samples: int = DEFAULT_TARGET_SAMPLES,
    ) -> None:
        self.server = server
        self.matchers = contract.check_matchers(matchers)
        self.progress = progress or Progress(enabled=False)
        self.keep_power = keep_power
        self.target_samples = target_samples

    def discover(self, start: float, end: float) -> list[dict[str, str]]:
        """Label sets of the matching energy counters with data in the window; NoDataError saying why not."""
        if not end > start:
            raise UsageError(f"the window must end after it starts ({format_time(start)} .. {format_time(end)})")
        found = self.server.series(contract.energy_selector(self.matchers), start, end)
        if found:
            return sorted(found, key=lambda labels: contract.series_key(labels))
        window = f"{format_time(start)} .. {format_time(end)}"
        # Where else to look: any time from a year before the window (or now) to now.
        lo, hi = min(start, time.time()) - 365 * 86400, max(end, time.time())
        ever = self.server.series(contract.energy_selector(self.matchers), lo, hi)
        if ever:
            raise NoDataError(
                f"the window {window} holds no data: {len(ever)} energy series match "
                f"{describe_matchers(self.matchers)} at other times; check --start/--end (RFC 3339 times are UTC "
                "unless they carry an offset)"
            )
        everything = self.server.series(contract.energy_selector([]), start - 7 * 86400, end + 86400)
        if not everything:
            everything = self.server.series(contract.energy_selector([]), lo, hi)
        hosts = sorted({s.get("host", "") for s in everything} - {""})
        sources = sorted({s.get("source", "") for s in everything} - {""})
        if not everything:
            raise NoDataError(
                f"no series of the naming contract (*{contract.ENERGY_SUFFIX}) on {self.server.url}: "
                "is a power client pushing to this server?"
            )
        raise NoDataError(
            f"no energy series matches {describe_matchers(self.matchers)} in {window}; "
            f"hosts with data: {', '.join(hosts) or 'none'}; sources: {', '.join(sources) or 'none'}"
        )

    def report(self, name: str, start: float, end: float) -> WindowReport:
        labels = self.discover(start, end)
        keys = [contract.series_key(lbl) for lbl in labels]
        accs = {key: EnergyAccumulator(start, end) for key in keys}
        selector = contract.energy_selector(self.matchers)
        start_ms, end_ms = to_ms(start), to_ms(end)
        window = WindowReport(name=name, start=start, end=end)

        for key, (t_ms, value) in self._edge(selector, keys, start_ms, before=True).items():
            accs[key].add(t_ms / 1000, float(value))
        fetched = 0
        for chunk in iter_chunks(self.server, selector, start_ms, end_ms, target_samples=self.target_samples):
            for key, samples in chunk.series.items():
                acc = accs.get(key)
                if acc is None:  # a series that appeared after discovery: report it too
                    acc = accs[key] = EnergyAccumulator(start, end)
                    labels.append(dict(key))
                    keys.append(key)
                for t_ms, value in samples:
                    acc.add(t_ms / 1000, float(value))
                fetched += len(samples)
            self._progress(name, "energy", chunk.hi_ms, start_ms, end_ms, fetched)
        for key, (t_ms, value) in self._edge(selector, keys, end_ms, before=False).items():
            accs[key].add(t_ms / 1000, float(value))

        peaks, points = self._power(name, start_ms, end_ms)
        psys_hosts = {lbl.get("host", "") for lbl in labels if lbl.get("component") == "psys" and not lbl.get("scope")}
        for lbl, key in zip(labels, keys, strict=True):
            energy = accs[key].finish()
            if energy.last_sample_t is None or energy.last_sample_t <= start:
                continue  # the series ended before the window (the series API answers per chunk, not sample)
            power_key = contract.series_key({**lbl, "__name__": contract.power_name(lbl["__name__"])})
            peak = peaks.get(power_key, energy.peak_interval_watts)
            window.series.append(
                SeriesReport(
                    lbl,
                    energy,
                    peak,
                    points.get(power_key) if self.keep_power else None,
                    host_has_psys=lbl.get("host", "") in psys_hosts,
                )
            )
            if energy.covered_s == 0:
                window.warnings.append(f"{_short_labels(lbl)}: no data covers the window")
        self.progress.done()
        if not window.series:
            raise NoDataError(
                f"the window {format_time(start)} .. {format_time(end)} holds no data of "
                f"{describe_matchers(self.matchers)}: the matching series ended before it started"
            )
        return window

    def _progress(self, name: str, what: str, at_ms: int, lo_ms: int, hi_ms: int, count: int) -> None:
        share = (at_ms - lo_ms) / max(1, hi_ms - lo_ms)
        label = f" {name!r}" if name else ""
        self.progress.update(f"energy-report: window{label}: {what} samples {share:4.0%} ({count:,} read)")

    def _edge(
        self, selector: str, keys: Iterable[SeriesKey], at_ms: int, *, before: bool
    ) -> dict[SeriesKey, tuple[int, str]]:
        """The last sample at or before ``at_ms`` (``before``) or the first after it, per series."""
        wanted = set(keys)
        found: dict[SeriesKey, tuple[int, str]] = {}
        for look_s in EDGE_LOOKS_S:
            look_ms = int(look_s * 1000)
            lo, hi = (at_ms - look_ms, at_ms) if before else (at_ms, at_ms + look_ms)
            chunk = fetch_span(self.server, selector, lo, hi)
            for key, samples in chunk.series.items():
                if key in wanted and key not in found:
                    found[key] = samples[-1] if before else samples[0]
            if wanted <= set(found):
                break
        return found

    def _power(
        self, name: str, start_ms: int, end_ms: int
    ) -> tuple[dict[SeriesKey, float], dict[SeriesKey, list[tuple[float, float]]]]:
        """Peak watts per power series inside the window, and bucket means for plots when asked for."""
        peaks: dict[SeriesKey, float] = {}
        buckets: dict[SeriesKey, dict[int, list[float]]] = {}
        width_ms = max(1, (end_ms - start_ms) // PLOT_POINTS)
        fetched = 0
        selector = contract.power_selector(self.matchers)
        for chunk in iter_chunks(self.server, selector, start_ms - 1, end_ms, target_samples=self.target_samples):
            for key, samples in chunk.series.items():
                values = [(t, float(v)) for t, v in samples]
                top = max(v for _, v in values)
                if key not in peaks or top > peaks[key]:
                    peaks[key] = top
                if self.keep_power:
                    series_buckets = buckets.setdefault(key, {})
                    for t, v in values:
                        acc = series_buckets.setdefault((t - start_ms) // width_ms, [0.0, 0.0, 0.0])
                        acc[0] += (t - start_ms) / 1000
                        acc[1] += v
                        acc[2] += 1
                fetched += len(samples)
            self._progress(name, "power", chunk.hi_ms, start_ms, end_ms, fetched)
        points = {
            key: [(acc[0] / acc[2], acc[1] / acc[2]) for _, acc in sorted(b.items())] for key, b in buckets.items()
        }
        return peaks, points


def _short_labels(labels: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{labels[k]}"' for k in contract.CONTRACT_LABELS if k in labels) + "}"
