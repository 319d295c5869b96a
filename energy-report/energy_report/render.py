"""What the user reads: a terminal table, and the JSON and CSV files for scripts and papers."""

from __future__ import annotations

import csv
import json
import math
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from energy_report import __version__
from energy_report.errors import EnvironmentProblem, UsageError
from energy_report.report import WindowReport
from energy_report.timeparse import format_time

REPORT_COLUMNS = (
    "joules",
    "joules_estimated_gaps",
    "avg_watts",
    "peak_watts",
    "samples",
    "coverage",
    "resets",
)
FIRST_LABELS = ("host", "source", "component", "zone", "method", "scope")


def _num(value: float | None, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> list[str]:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    lines = []
    for row in [header, *rows]:
        cells = [
            str(c).rjust(w) if i in right else str(c).ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return lines


def window_table(window: WindowReport) -> str:
    title = f"window {window.name!r}" if window.name else "window"
    lines = [f"{title}: {format_time(window.start)} .. {format_time(window.end)} ({window.seconds:,.1f} s)"]
    if window.command is not None:
        lines[0] += f", command exited {window.exit_status}"
    header = ["host", "kind", "component", "zone", "joules", "est. gaps J", "avg W", "peak W", "samples", "coverage"]
    rows = []
    for s in sorted(window.series, key=lambda s: (s.labels.get("host", ""), s.device_kind, s.labels.get("zone", ""))):
        e = s.energy
        rows.append(
            [
                s.labels.get("host", ""),
                s.device_kind + (" (part)" if s.scope == "part" else ""),
                s.labels.get("component", ""),
                s.labels.get("zone", ""),
                _num(e.joules, 3),
                _num(e.joules_estimated_gaps, 3) if e.joules_estimated_gaps else "-",
                _num(e.avg_watts, 2),
                _num(s.peak_watts, 2),
                f"{e.samples:,}",
                f"{e.coverage:.1%}",
            ]
        )
    lines += _table(header, rows, right=set(range(4, 10)))
    totals = window.totals()
    if totals:
        lines.append('totals per host and device kind (scope="total" series only, parts not added):')
        rows = [
            [t.host, t.device_kind, _num(t.joules, 3), _num(t.joules_estimated_gaps, 3), _num(t.avg_watts, 2)]
            for t in totals
        ]
        lines += ["  " + line for line in _table(["host", "kind", "joules", "est. gaps J", "avg W"], rows, {2, 3, 4})]
    for s in window.series:
        for gap in s.energy.gaps:
            how = "measured by the counter" if gap.measured else "estimated"
            lines.append(
                f"gap {s.labels.get('host', '')}/{s.labels.get('zone', '')}: {format_time(gap.start)} + "
                f"{gap.seconds:,.3f} s ({gap.reason}), {gap.joules:,.3f} J {how}"
            )
    lines += [f"warning: {w}" for w in window.warnings]
    return "\n".join(lines)


def _stat_cells(entry: dict[str, Any]) -> list[str]:
    figures = ("joules_mean", "joules_std", "joules_min", "joules_max")
    return [str(entry["runs"]), *(_num(entry[f], 3) for f in figures)]


def statistics_table(zone_stats: Sequence[dict[str, Any]], total_stats: Sequence[dict[str, Any]]) -> str:
    header = ["host", "kind", "component", "zone", "runs", "mean J", "sd J", "min J", "max J"]
    rows = [
        [z.get("host", ""), z["device_kind"], z.get("component", ""), z.get("zone", ""), *_stat_cells(z)]
        for z in zone_stats
    ]
    rows += [[t["host"], t["device_kind"], "(total)", "", *_stat_cells(t)] for t in total_stats]
    lines = ["statistics across runs (measured joules):"]
    lines += _table(header, rows, right=set(range(4, 9)))
    return "\n".join(lines)


def document(
    windows: Sequence[WindowReport],
    *,
    server_url: str,
    matchers: Sequence[str],
    zone_stats: Sequence[dict[str, Any]] | None = None,
    total_stats: Sequence[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The JSON document: one window's report at the top level, or ``windows`` plus ``statistics``."""
    meta = {"tool": "energy-report", "version": __version__, "prometheus": server_url, "match": list(matchers)}
    if zone_stats is None:
        return {**meta, **windows[0].as_dict()}
    return {
        **meta,
        "windows": [w.as_dict() for w in windows],
        "statistics": {"series": list(zone_stats), "totals": list(total_stats or [])},
    }


@contextmanager
def open_output(target: str, what: str) -> Iterator[IO[str]]:
    """``-`` is standard output; a file is written next to its final name and renamed when complete."""
    if target == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    path = Path(target)
    tmp = path.with_name(f".{path.name}.partial")
    try:
        handle = open(tmp, "w", newline="")  # noqa: SIM115 - closed below, renamed only when complete
    except OSError as exc:
        raise UsageError(f"{what} {target}: cannot write it ({exc.strerror})") from None
    try:
        with handle:
            yield handle
        tmp.replace(path)
    except OSError as exc:  # a full disk or a vanished directory, mid-way
        raise EnvironmentProblem(f"{what} {target}: writing failed ({exc.strerror or exc})") from None
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(target: str, doc: dict[str, Any]) -> None:
    with open_output(target, "--json") as out:
        json.dump(doc, out, indent=2, allow_nan=False)
        out.write("\n")


def report_rows(windows: Sequence[WindowReport]) -> tuple[list[str], list[list[object]]]:
    """The per-series CSV of ``window``/``measure``: one row per window and series."""
    names = sorted({k for w in windows for s in w.series for k in s.labels if k != "__name__"})
    labels = [n for n in FIRST_LABELS if n in names] + [n for n in names if n not in FIRST_LABELS]
    header = ["window", "start", "end", "metric", "device_kind", "scope", *labels, *REPORT_COLUMNS]
    rows: list[list[object]] = []
    for w in windows:
        for s in w.series:
            d = s.as_dict()
            row: list[object] = [w.name, w.start, w.end, s.metric, s.device_kind, s.scope]
            row += [s.labels.get(n, "") for n in labels]
            row += ["" if d[c] is None else d[c] for c in REPORT_COLUMNS]
            rows.append(row)
    return header, rows


def write_report_csv(target: str, windows: Sequence[WindowReport]) -> None:
    header, rows = report_rows(windows)
    with open_output(target, "--csv") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
