"""Problems an implementation reports so that ``/healthz`` turns unhealthy while the client keeps running.

An implementation sometimes loses part of what it measures without losing all of it (one GPU of four fell
off the bus): stopping the whole client would also stop the others' series, but staying healthy would
hide the loss from the container's healthcheck. It reports the problem here instead::

    from monitoring_client import impl_health
    impl_health.report_problem("gpu GPU-1234", "GPU 1 (GPU-1234) fell off the bus")
    impl_health.clear_problem("gpu GPU-1234")  # when it is back, if it ever is

``HealthState.check`` (``/healthz``) answers 503 with the reasons while any problem is reported. The
implementation has no handle on the pipeline (the seed's contract passes only queues and an event), so
the problems live in one object per process, like the process's exit status.
"""

from __future__ import annotations

import threading


class ImplementationHealth:
    """Problems by key, thread-safe; an empty set means the implementation is healthy."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._problems: dict[str, str] = {}

    def report(self, key: str, reason: str) -> None:
        """Mark ``key`` unhealthy with a one-line ``reason`` (a later report replaces the reason)."""
        with self._lock:
            self._problems[key] = reason

    def clear(self, key: str) -> None:
        """``key`` is healthy again (no effect if it was not reported)."""
        with self._lock:
            self._problems.pop(key, None)

    def problems(self) -> list[str]:
        """The reasons currently reported, in the order they were first reported."""
        with self._lock:
            return list(self._problems.values())


IMPLEMENTATION_HEALTH = ImplementationHealth()


def report_problem(key: str, reason: str) -> None:
    """Make ``/healthz`` unhealthy with ``reason`` until ``clear_problem(key)``."""
    IMPLEMENTATION_HEALTH.report(key, reason)


def clear_problem(key: str) -> None:
    """Withdraw the problem reported under ``key``."""
    IMPLEMENTATION_HEALTH.clear(key)
