"""Times and durations as people type them, and the one-line errors for the rest."""

from __future__ import annotations

import pytest

from energy_report.errors import UsageError
from energy_report.timeparse import format_time, parse_duration, parse_time, promql_duration

NOW = 1_714_564_800.0  # 2024-05-01T12:00:00Z


def at(text: str) -> float:
    return parse_time(text, "--start", now=lambda: NOW)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T12:00:00Z", NOW),
        ("2024-05-01t12:00:00z", NOW),
        ("2024-05-01 12:00:00Z", NOW),
        ("2024-05-01T14:00:00+02:00", NOW),
        ("2024-05-01T11:30:00-00:30", NOW),
        ("2024-05-01T12:00:00.25Z", NOW + 0.25),
        ("2024-05-01T12:00:00.123456789Z", NOW + 0.123456789),
        ("1714564800", NOW),
        ("1714564800.5", NOW + 0.5),
        ("now", NOW),
        ("NOW", NOW),
        ("-15m", NOW - 900),
        ("now-1h30m", NOW - 5400),
        ("-500ms", NOW - 0.5),
        ("-2d", NOW - 172800),
        (" -1w ", NOW - 604800),
    ],
)
def test_accepted_times(text: str, expected: float) -> None:
    assert at(text) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("yesterday", "unknown format"),
        ("2024-05-01", "unknown format"),
        ("2024-13-01T00:00:00Z", "month must be in 1..12"),
        ("2024-05-01T12:00:00", "unknown format"),  # no offset: ambiguous, refused
        ("1714564800000", "milliseconds"),
        ("-15", "negative"),
        ("-15x", "bad duration"),
        ("now-", "bad duration"),
        ("", "unknown format"),
    ],
)
def test_rejected_times_name_the_option_the_value_and_the_formats(text: str, reason: str) -> None:
    with pytest.raises(UsageError) as err:
        at(text)
    message = str(err.value)
    assert message.startswith(f"--start {text!r} is not a time") and reason in message
    assert "RFC 3339" in message and "Unix seconds" in message and "\n" not in message


def test_durations_and_their_promql_form() -> None:
    assert parse_duration("1h30m") == 5400 and parse_duration("90") == 90 and parse_duration("1.5s") == 1.5
    with pytest.raises(ValueError):
        parse_duration("1h 30m")
    assert promql_duration(1.5) == "1500ms" and promql_duration(60) == "60s" and promql_duration(0.0001) == "1ms"
    assert promql_duration(12.3456) == "12346ms"  # rounded up to whole milliseconds, never a decimal


def test_format_time_is_rfc3339_utc_with_milliseconds() -> None:
    assert format_time(NOW + 0.25) == "2024-05-01T12:00:00.250Z"
    assert at(format_time(NOW + 0.25)) == pytest.approx(NOW + 0.25)
