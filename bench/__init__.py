"""Benchmarks and the reliability report: the generators of docs/ (run from the repository root).

    python -m bench.run            # docs/BENCHMARKS.md
    python -m bench.reliability    # docs/RELIABILITY.md

Every figure is measured on real processes talking to a real Prometheus on 127.0.0.1, each next to a
baseline measured in the same run, because only ratios from one run on one machine mean anything.
"""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
