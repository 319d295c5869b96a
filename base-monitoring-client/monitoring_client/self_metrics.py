"""The client's own metrics, kept with prometheus-client and pushed with the data.

The stack has no scrape job for its clients (they push), so these metrics ride the same remote write as
the implementation's samples: every SELF_METRICS_INTERVAL_S the registry is read and turned into records
stamped with the current time, exactly the samples a scrape would have produced (counters as ``_total``,
histograms as ``_bucket``/``_sum``/``_count``; the ``_created`` series are left out). With HEALTH_PORT
set, the same registry is also served on /metrics.

Accounting covers the implementation's samples only: received = sent + dropped (by reason) + still
buffered, and the client's own samples do not blur that equation.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from monitoring_client.records import DROP_REASONS

PREFIX = "monitoring_client_"


class SelfMetrics:
    """One private registry (never the global one, which the implementation may use for itself)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.samples_received = Counter(
            PREFIX + "samples_received", "Samples the implementation handed to the client.", registry=r
        )
        self.samples_sent = Counter(
            PREFIX + "samples_sent", "Implementation samples the receiver accepted (2xx).", registry=r
        )
        self.samples_dropped = Counter(
            PREFIX + "samples_dropped",
            "Implementation samples that will never be sent, by reason.",
            ["reason"],
            registry=r,
        )
        self.requests = Counter(
            PREFIX + "requests",
            "Remote-write requests by outcome: the HTTP status code, or 'error' / 'timeout'.",
            ["status"],
            registry=r,
        )
        self.retries = Counter(PREFIX + "retries", "Requests sent again after a retryable failure.", registry=r)
        self.push_duration = Histogram(
            PREFIX + "push_duration_seconds",
            "Duration of one remote-write HTTP request (every attempt).",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=r,
        )
        self.buffered_payloads = Gauge(PREFIX + "buffered_payloads", "Encoded requests waiting to be sent.", registry=r)
        self.buffered_bytes = Gauge(
            PREFIX + "buffered_bytes", "Bytes of encoded requests waiting to be sent.", registry=r
        )
        self.last_success = Gauge(
            PREFIX + "last_success_timestamp_seconds",
            "Unix time of the last request the receiver accepted.",
            registry=r,
        )
        for reason in DROP_REASONS:  # every reason exists from the start, so rate() and alerts see 0
            self.samples_dropped.labels(reason)

    def dropped(self, reason: str, count: int = 1) -> None:
        if count:
            self.samples_dropped.labels(reason).inc(count)

    def samples(self) -> Iterator[tuple[str, dict[str, str], float]]:
        """Every current sample as (name, labels, value), as a scrape would see them (no ``_created``)."""
        for family in self.registry.collect():
            for sample in family.samples:
                if sample.name.endswith("_created"):
                    continue
                yield sample.name, dict(sample.labels), float(sample.value)

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        """Current value of one sample (0 when absent): for the exit summary and tests."""
        got = self.registry.get_sample_value(name, labels or {})
        return 0.0 if got is None else float(got)

    def dropped_by_reason(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for name, labels, value in self.samples():
            if name == PREFIX + "samples_dropped_total" and value:
                out[labels["reason"]] = int(value)
        return out
