"""energy-report: exact joules per run from the power-monitoring stack's counters in Prometheus.

The command line is ``energy-report`` (see ``energy_report.cli``); code that marks its own phases uses
:class:`EnergyWindow`. Both return the same :class:`WindowReport` objects.
"""

from __future__ import annotations

__version__ = "0.1.0"

from energy_report.api import EnergyWindow  # noqa: E402 - after __version__, which it imports
from energy_report.report import SeriesReport, WindowReport  # noqa: E402

__all__ = ["EnergyWindow", "SeriesReport", "WindowReport", "__version__"]
