"""``--plot FILE.png``: power per zone over the window, ready for a slide (matplotlib, an optional extra).

One window: every zone's power on one set of axes. Several windows (``--windows``): one panel per zone,
stacked, with the runs overlaid against the time since each run's start, so runs compare at a glance.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from energy_report.contract import SeriesKey
from energy_report.errors import EnvironmentProblem, UsageError
from energy_report.report import SeriesReport, WindowReport
from energy_report.timeparse import format_time

MAX_PANELS = 12


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise EnvironmentProblem("--plot needs matplotlib: pip install 'energy-report[plot]'") from None
    return plt


def _zone_label(series: SeriesReport) -> str:
    lbl = series.labels
    return f"{lbl.get('host', '')} {series.device_kind} {lbl.get('component', '')} ({lbl.get('zone', '')})"


def _style(ax: Any) -> None:
    """Grid, and a y axis from zero with headroom so that flat lines do not sit on the frame."""
    ax.grid(True, alpha=0.3)
    top = max((max(line.get_ydata(), default=0) for line in ax.lines), default=1.0)
    ax.set_ylim(0, (top or 1.0) * 1.12)


def plot_windows(windows: Sequence[WindowReport], path: str) -> list[str]:
    """Draw and save; returns warnings (zones without a power series, panels left out)."""
    plt = _pyplot()
    warnings: list[str] = []
    if len(windows) == 1:
        window = windows[0]
        fig, ax = plt.subplots(figsize=(10, 5), constrained_layout=True)
        for series in window.series:
            if not series.power_points:
                warnings.append(f"plot: {_zone_label(series)} has no power series in the window")
                continue
            xs, ys = zip(*series.power_points, strict=True)
            ax.plot(xs, ys, label=_zone_label(series), linewidth=1.2)
        name = f" - {window.name}" if window.name else ""
        ax.set_title(f"Power per zone{name} ({format_time(window.start)} + {window.seconds:,.1f} s)")
        ax.set_xlabel("time since window start (s)")
        ax.set_ylabel("power (W)")
        _style(ax)
        if ax.lines:
            ax.legend(fontsize="small", loc="best")
    else:
        zones: dict[SeriesKey, str] = {}
        for window in windows:
            for series in window.series:
                zones.setdefault(series.identity(), _zone_label(series))
        keys = sorted(zones)[:MAX_PANELS]
        if len(zones) > MAX_PANELS:
            warnings.append(f"plot: {len(zones)} zones, only the first {MAX_PANELS} drawn (narrow with --match)")
        fig, axes = plt.subplots(
            max(1, len(keys)), 1, figsize=(10, 2.4 * max(1, len(keys)) + 1), sharex=True, constrained_layout=True
        )
        axes = list(axes) if len(keys) > 1 else [axes]
        for ax, key in zip(axes, keys, strict=True):
            for window in windows:
                match = [s for s in window.series if s.identity() == key and s.power_points]
                if match:
                    xs, ys = zip(*(match[0].power_points or []), strict=True)
                    ax.plot(xs, ys, label=window.name, linewidth=1.0)
            ax.set_title(zones[key], fontsize="medium")
            ax.set_ylabel("power (W)")
            _style(ax)
        axes[-1].set_xlabel("time since run start (s)")
        if axes[0].lines:
            axes[0].legend(fontsize="small", ncol=min(4, len(windows)), loc="best")
        fig.suptitle(f"Power per zone, {len(windows)} runs overlaid")
    try:
        fig.savefig(path, dpi=150)
    except OSError as exc:
        raise UsageError(f"--plot {path}: cannot write it ({exc.strerror})") from None
    finally:
        plt.close(fig)
    return warnings
