"""Fault-injection suite and reliability report (issue 5); see report.py for the generated document."""
