"""cpu_pyjoules.ratelimit: the first event is logged at once, later ones summarised once per period."""

from __future__ import annotations

import logging

from cpu_pyjoules.ratelimit import RateLimitedWarning


def test_first_event_then_periodic_summaries(caplog):
    now = [0.0]
    warning = RateLimitedWarning(logging.getLogger("t"), "things dropped", period_s=60, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING):
        assert warning.event("first") is True
        for i in range(500):
            now[0] += 0.1
            warning.event(f"n{i}")
    assert warning.total == 501
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["things dropped: 1 (further ones are summarised every 60 s); latest: first"]
    now[0] += 11
    with caplog.at_level(logging.WARNING):
        assert warning.event("late") is True
    last = caplog.records[-1].getMessage()
    assert last == "things dropped: 501 in the last 60 s (502 in total); latest: late"


def test_level_is_configurable(caplog):
    warning = RateLimitedWarning(logging.getLogger("t"), "merged", level=logging.INFO)
    with caplog.at_level(logging.INFO):
        warning.event()
    assert caplog.records[-1].levelno == logging.INFO
