"""Fault-injection suite; its scenarios also feed the reliability report (``python -m bench.reliability``)."""
