"""Times and durations as people type them: RFC 3339, Unix seconds, or relative to now.

Accepted times: ``2024-05-01T12:00:00Z`` (any RFC 3339 offset, fractional seconds, ``T`` or a space),
``1714564800`` or ``1714564800.25`` (Unix seconds), ``now``, and ``-15m`` / ``now-1h30m`` (relative to
now). Durations are a number with a unit (``ms``, ``s``, ``m``, ``h``, ``d``, ``w``), several may be
chained (``1h30m``); a bare number means seconds. Every error names the value and the formats accepted.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable

from energy_report.errors import UsageError

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_NUMBER = re.compile(r"^[+-]?\d+(?:\.\d+)?$")
_RFC3339 = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")

TIME_FORMATS = "RFC 3339 (2024-05-01T12:00:00Z), Unix seconds (1714564800), or relative (now, -15m, now-1h)"


def parse_duration(text: str) -> float:
    """``"1h30m"`` -> 5400.0; ``"90"`` -> 90.0. Raises ValueError (callers add context)."""
    text = text.strip()
    if _NUMBER.match(text):
        return float(text)
    pos = 0
    total = 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"bad duration {text!r}: expected a number with a unit, e.g. 90s, 15m, 1h30m")
    return total


def parse_time(text: str, what: str = "time", *, now: Callable[[], float] = time.time) -> float:
    """A time as Unix seconds; raises UsageError naming ``what`` and the accepted formats."""
    value = text.strip()
    try:
        if value.lower() == "now":
            return now()
        lowered = value.lower()
        if lowered.startswith("now-") or (value.startswith("-") and not _NUMBER.match(value)):
            return now() - parse_duration(value.split("-", 1)[1])
        if _NUMBER.match(value):
            seconds = float(value)
            if seconds < 0:
                raise ValueError("negative Unix time")
            if seconds > 1e11:  # milliseconds typed by mistake: 2024 is ~1.7e9 s, ~1.7e12 ms
                raise ValueError("this looks like milliseconds; give seconds")
            return seconds
        match = _RFC3339.match(value)
        if match:
            return _rfc3339_seconds(match)
        raise ValueError("unknown format")
    except ValueError as exc:
        raise UsageError(f"{what} {text!r} is not a time ({exc}): use {TIME_FORMATS}") from None


def _rfc3339_seconds(match: re.Match[str]) -> float:
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, offset = match.group(7), match.group(8)
    tz = dt.timezone.utc
    if offset not in ("Z", "z"):
        sign = -1 if offset[0] == "-" else 1
        tz = dt.timezone(sign * dt.timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])))
    moment = dt.datetime(year, month, day, hour, minute, second, tzinfo=tz)  # ValueError if out of range
    return moment.timestamp() + (float(fraction) if fraction else 0.0)


def format_time(seconds: float) -> str:
    """Unix seconds as RFC 3339 UTC with milliseconds, for tables and plot titles."""
    moment = dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def promql_duration(seconds: float) -> str:
    """A PromQL duration: an integer with a unit (PromQL rejects ``1.5s``); rounded up to the millisecond."""
    millis = max(1, int(-(-seconds * 1000 // 1)))
    if millis % 1000 == 0:
        return f"{millis // 1000}s"
    return f"{millis}ms"
