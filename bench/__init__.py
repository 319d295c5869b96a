"""Benchmarks of the monitoring stack (issue 6): run ``python bench/run.py`` from the repository root.

Every figure is measured on real processes talking to a real Prometheus on 127.0.0.1, each next to a
baseline measured in the same run, because only ratios from one run on one machine mean anything.
"""
