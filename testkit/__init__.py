"""Shared helpers for the project's tests and benchmarks.

Kept outside the shipped packages on purpose: nothing here runs in production, but every test suite
(base client, cpu-pyjoules, the stack) and every benchmark needs the same real Prometheus launcher and
the same condition-waiting helper, so they live in one place instead of one copy per suite.
"""
