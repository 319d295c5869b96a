"""cpu-pyjoules: exact RAPL energy and power per zone, read through pyJoules, correct across counter wraps.

The package holds the pieces that ``monitor_impl.py`` (the seed's entry file, loaded by the base
``monitoring-client``) wires together: settings, zone discovery through pyJoules's RAPL device, a reader that
keeps the counter files open, wraparound correction, an absolute sampling schedule, record building, and a
fake powercap tree for machines without RAPL.
"""

from __future__ import annotations

__version__ = "0.2.0"
