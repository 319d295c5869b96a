"""What to do with a failed push, and how long to wait before trying again.

Remote write 1.0: a 5xx or 429 answer, a refused connection or a timeout says "try again later" and the
same request is retried. 2xx is success. The other answers say something about the request:

- 400 (and Thanos Receive's 409, its word for the same refusals) usually means *some* samples are refused
  (out of order, out of bounds, too old) and the receiver refused the whole request for them; 413 means
  the request is too large. Either way the request is split in halves and each half tried again, so
  that only the offending samples are dropped (``SPLIT``).
- 401 and 403 mean the credentials are wrong or lack a permission: a configuration problem, not bad
  data. The request is kept and retried slowly until the credentials are fixed (``AUTH``).
- Any other 4xx, and a redirect the transport does not follow (all but a 307/308 to the same scheme, host
  and port): retrying or splitting cannot help, so the request is dropped (and counted): fix
  REMOTE_WRITE_URL.

Backoff is exponential with decorrelated jitter (each delay drawn uniformly between the base and three
times the previous one, that upper end capped), so many clients that lost the same receiver do not return
in lock step; a receiver's Retry-After (seconds or an HTTP date) is honoured as a lower bound.
"""

from __future__ import annotations

import enum
import random
import time
from email.utils import parsedate_to_datetime


class Verdict(enum.Enum):
    SUCCESS = "success"
    RETRY = "retry"
    SPLIT = "split"
    AUTH = "auth"
    DROP = "drop"


# Answers that refuse part of a request (or its size): split it and send the halves.
SPLIT_STATUSES = frozenset({400, 409, 413})
# Answers that refuse the client's credentials: keep the request, retry slowly.
AUTH_STATUSES = frozenset({401, 403})


# A Retry-After longer than this is treated as this long: a misbehaving receiver must not be able to
# stall the client for hours while the buffer overflows.
RETRY_AFTER_CEILING_S = 300.0


def classify_status(status: int) -> Verdict:
    """Verdict for an HTTP status code."""
    if 200 <= status < 300:
        return Verdict.SUCCESS
    if status == 429 or 500 <= status < 600:
        return Verdict.RETRY
    if status in SPLIT_STATUSES:
        return Verdict.SPLIT
    if status in AUTH_STATUSES:
        return Verdict.AUTH
    return Verdict.DROP


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait according to a Retry-After header (delta-seconds or HTTP-date), None if absent or
    unparsable; never negative, at most ``RETRY_AFTER_CEILING_S``."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isdigit():
        seconds = float(text)
    else:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    return min(max(seconds, 0.0), RETRY_AFTER_CEILING_S)


class Backoff:
    """Decorrelated-jitter exponential backoff: ``next_delay`` grows toward ``cap``, ``reset`` after success."""

    def __init__(self, base_s: float, cap_s: float, rng: random.Random | None = None) -> None:
        if base_s <= 0 or cap_s < base_s:
            raise ValueError("need 0 < base_s <= cap_s")
        self.base_s = base_s
        self.cap_s = cap_s
        self._rng = rng or random.Random()
        self._previous = base_s

    def next_delay(self, retry_after_s: float | None = None) -> float:
        """The wait before the next attempt; at least ``retry_after_s`` when the receiver asked for it."""
        delay = self._rng.uniform(self.base_s, min(self.cap_s, self._previous * 3))
        self._previous = delay
        if retry_after_s is not None:
            delay = max(delay, retry_after_s)
        return delay

    def reset(self) -> None:
        self._previous = self.base_s
