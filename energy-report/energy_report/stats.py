"""Repeated runs: per zone (and per host total), mean, standard deviation, min and max across windows.

The figures summarise the measured ``joules`` of each run; the mean of the estimated gap energy is given
beside them, so a run with a gap stands out instead of being silently filled in.

The standard deviation is the sample standard deviation (n - 1 in the denominator), the one a paper's
"mean ± sd over n runs" means; with a single run it is null.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from energy_report.contract import SeriesKey
from energy_report.report import WindowReport


def _summary(runs: Sequence[tuple[float, float]]) -> dict[str, float | int | None]:
    values = [joules for joules, _ in runs]
    return {
        "runs": len(values),
        "joules_mean": statistics.fmean(values),
        "joules_std": statistics.stdev(values) if len(values) > 1 else None,
        "joules_min": min(values),
        "joules_max": max(values),
        "joules_estimated_gaps_mean": statistics.fmean(estimated for _, estimated in runs),
    }


def zone_statistics(windows: Sequence[WindowReport]) -> list[dict[str, object]]:
    """One entry per series (same labels) present in any window: the joules of each run summarised."""
    runs: dict[SeriesKey, list[tuple[float, float]]] = {}
    labels: dict[SeriesKey, dict[str, str]] = {}
    kinds: dict[SeriesKey, str] = {}
    for window in windows:
        for series in window.series:
            key = series.identity()
            runs.setdefault(key, []).append((series.energy.joules, series.energy.joules_estimated_gaps))
            labels[key] = {k: v for k, v in series.labels.items() if k != "__name__"}
            kinds[key] = series.device_kind
    out = []
    for key in sorted(runs):
        entry: dict[str, object] = {"metric": dict(key).get("__name__", ""), "device_kind": kinds[key]}
        entry["labels"] = labels[key]
        entry.update(_summary(runs[key]))
        for name, value in labels[key].items():
            entry.setdefault(name, value)
        out.append(entry)
    return out


def total_statistics(windows: Sequence[WindowReport]) -> list[dict[str, object]]:
    """The same summary for each host's total per device kind (``scope="total"`` series only)."""
    runs: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for window in windows:
        for total in window.totals():
            runs.setdefault((total.host, total.device_kind), []).append((total.joules, total.joules_estimated_gaps))
    return [{"host": host, "device_kind": kind, **_summary(values)} for (host, kind), values in sorted(runs.items())]
