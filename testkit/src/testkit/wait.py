"""Wait on a condition with a deadline instead of sleeping and hoping.

Tests that talk to real processes (Prometheus, the client, Docker) cannot know how long a step takes on a
loaded 2-core CI machine. Polling a predicate until it holds, with a generous timeout, keeps them both fast
when the machine is idle and correct when it is not.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class GiveUp(Exception):
    """Raised by a predicate when waiting longer is pointless (the process it waits for has died)."""


def wait_until(
    predicate: Callable[[], T],
    timeout: float,
    interval: float = 0.05,
    message: str = "",
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Return the first truthy value of ``predicate()``; fail the test if none comes within ``timeout``.

    Exceptions raised by the predicate count as "not yet" (a server that is still starting refuses
    connections), but the last one is reported if the deadline passes, because it usually explains why.
    ``GiveUp`` is the exception: it propagates at once, so a dead process fails the test immediately.
    """
    deadline = clock() + timeout
    last_error: BaseException | None = None
    last_value: object = None
    while True:
        try:
            value = predicate()
            if value:
                return value
            last_value = value
            last_error = None
        except GiveUp:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready yet"
            last_error = exc
        if clock() >= deadline:
            detail = f"last error: {last_error!r}" if last_error else f"last value: {last_value!r}"
            raise AssertionError(f"condition not met within {timeout:g}s: {message} ({detail})")
        sleep(interval)
