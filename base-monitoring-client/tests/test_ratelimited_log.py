"""Rate-limited warnings: first one at once, then summaries with exact suppressed counts."""

from __future__ import annotations

import logging

import pytest

from monitoring_client.ratelimited_log import RateLimitedLog


def test_first_logged_then_summarised(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    rl = RateLimitedLog(logging.getLogger("t"), 10.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="t"):
        rl.report("bad", "first")
        for i in range(99):
            rl.report("bad", f"n{i}")
        assert [r.getMessage() for r in caplog.records] == ["first"]
        now[0] = 10.5
        rl.report("bad", "last")
        assert caplog.records[-1].getMessage() == "100 more bad in the last 10s; latest: last"
        rl.report("bad", "after")
        rl.report("other", "x", count=3)
        rl.flush()
    assert (rl.total("bad"), rl.total("other"), rl.total("never")) == (102, 3, 0)
    messages = [r.getMessage() for r in caplog.records]
    assert messages[2:] == [
        "x",
        "1 more bad in the last 0s; latest: after",
        "2 more other in the last 0s; latest: x",
    ]
