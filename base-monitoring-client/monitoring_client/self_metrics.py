"""The client's own metrics, pushed with the data (and served on /metrics with HEALTH_PORT set).

The stack has no scrape job for its clients (they push), so these metrics ride the same remote write as
the implementation's samples: every SELF_METRICS_INTERVAL_S they are read and turned into records stamped
with the current time, exactly the samples a scrape would have produced (counters as ``_total``,
histograms as ``_bucket``/``_sum``/``_count``; no ``_created`` series).

They are kept in a few plain objects rather than prometheus-client's: updating one is a lock and an
addition (the sender updates several on every push), reading them all is a loop over a list (not one
metric-family object per metric and a sample object per value), and prometheus-client, whose import pulls
in an HTTP server, is only imported to serve /metrics. ``registry`` takes other collectors (the spool's)
and is what /metrics serves.

Accounting covers the implementation's samples only: received = sent + dropped (by reason) + still
buffered, and the client's own samples do not blur that equation.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from monitoring_client.records import DROP_REASONS

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

PREFIX = "monitoring_client_"
PUSH_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

Sample = tuple[str, dict[str, str], float]


class Collector(Protocol):
    """What ``SelfRegistry.register`` takes: a prometheus-client custom collector."""

    def collect(self) -> Iterator[Metric]: ...


class _Metric:
    """One metric (or one labelled child of a metric): its value under a lock shared by all of them."""

    __slots__ = ("labels_dict", "value", "_lock")

    def __init__(self, lock: threading.Lock, labels: dict[str, str] | None = None) -> None:
        self._lock = lock
        self.labels_dict = labels or {}
        self.value = 0.0


class Counter(_Metric):
    __slots__ = ()

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        with self._lock:
            self.value += amount


class Gauge(_Metric):
    __slots__ = ("_function",)

    def __init__(self, lock: threading.Lock) -> None:
        super().__init__(lock)
        self._function: Callable[[], float] | None = None

    def set(self, value: float) -> None:
        self.value = float(value)

    def set_function(self, function: Callable[[], float]) -> None:
        """Read the value from ``function`` whenever the metric is read."""
        self._function = function

    def get(self) -> float:
        return float(self._function()) if self._function is not None else self.value


class LabelledCounter:
    """A counter with one label; ``labels(value)`` is the child for that value (created on first use)."""

    def __init__(self, label: str, lock: threading.Lock) -> None:
        self.label = label
        self._lock = lock
        self.children: dict[str, Counter] = {}

    def labels(self, value: str) -> Counter:
        child = self.children.get(value)
        if child is None:
            with self._lock:
                child = self.children.setdefault(value, Counter(self._lock, {self.label: value}))
        return child


class Histogram:
    """Observations counted in cumulative buckets (``le``), with their sum and count."""

    def __init__(self, buckets: Sequence[float], lock: threading.Lock) -> None:
        self.bounds = [float(b) for b in buckets]
        self._lock = lock
        self.counts = [0] * (len(self.bounds) + 1)  # per bucket, not cumulative; the last is +Inf
        self.sum = 0.0

    def observe(self, amount: float) -> None:
        index = bisect.bisect_left(self.bounds, amount)
        with self._lock:
            self.counts[index] += 1
            self.sum += amount


def _le(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(float(bound))


class SelfMetrics:
    """The client's metrics; one instance per pipeline (never global: an implementation may have its own)."""

    def __init__(self) -> None:
        lock = self._lock = threading.Lock()
        self.samples_received = Counter(lock)
        self.samples_sent = Counter(lock)
        self.samples_dropped = LabelledCounter("reason", lock)
        self.requests = LabelledCounter("status", lock)
        self.retries = Counter(lock)
        self.push_duration = Histogram(PUSH_DURATION_BUCKETS, lock)
        self.buffered_payloads = Gauge(lock)
        self.buffered_bytes = Gauge(lock)
        self.last_success = Gauge(lock)
        for reason in DROP_REASONS:  # every reason exists from the start, so rate() and alerts see 0
            self.samples_dropped.labels(reason)
        # (name, help, kind, metric): the order of the samples and of /metrics.
        self.described: list[tuple[str, str, str, Any]] = [
            ("samples_received", "Samples the implementation handed to the client.", "counter", self.samples_received),
            ("samples_sent", "Implementation samples the receiver accepted (2xx).", "counter", self.samples_sent),
            (
                "samples_dropped",
                "Implementation samples that will never be sent, by reason.",
                "counter",
                self.samples_dropped,
            ),
            (
                "requests",
                "Remote-write requests by outcome: the HTTP status code, or 'error' / 'timeout'.",
                "counter",
                self.requests,
            ),
            ("retries", "Requests sent again after a retryable failure.", "counter", self.retries),
            (
                "push_duration_seconds",
                "Duration of one remote-write HTTP request (every attempt).",
                "histogram",
                self.push_duration,
            ),
            ("buffered_payloads", "Encoded requests waiting to be sent.", "gauge", self.buffered_payloads),
            ("buffered_bytes", "Bytes of encoded requests waiting to be sent.", "gauge", self.buffered_bytes),
            (
                "last_success_timestamp_seconds",
                "Unix time of the last request the receiver accepted.",
                "gauge",
                self.last_success,
            ),
        ]
        self.registry = SelfRegistry(self)

    def dropped(self, reason: str, count: int = 1) -> None:
        if count:
            self.samples_dropped.labels(reason).inc(count)

    def own_samples(self) -> Iterator[Sample]:
        """The samples of this object's metrics (see :meth:`samples`)."""
        for name, _help, kind, metric in self.described:
            full = PREFIX + name
            if kind == "gauge":
                yield full, {}, metric.get()
            elif kind == "histogram":
                cumulative = 0
                for bound, count in zip([*metric.bounds, math.inf], metric.counts, strict=True):
                    cumulative += count
                    yield full + "_bucket", {"le": _le(bound)}, float(cumulative)
                yield full + "_count", {}, float(cumulative)
                yield full + "_sum", {}, metric.sum
            elif isinstance(metric, LabelledCounter):
                for child in list(metric.children.values()):
                    yield full + "_total", child.labels_dict, child.value
            else:
                yield full + "_total", {}, metric.value

    def samples(self) -> Iterator[Sample]:
        """Every current sample as (name, labels, value), as a scrape would see them (no ``_created``),
        the registered collectors' (the spool's) after the client's own."""
        yield from self.own_samples()
        for collector in self.registry.others:
            for family in collector.collect():
                for sample in family.samples:
                    if not sample.name.endswith("_created"):
                        yield sample.name, dict(sample.labels), float(sample.value)

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        """Current value of one sample (0 when absent): for the exit summary and tests."""
        wanted = labels or {}
        for sample_name, sample_labels, value in self.samples():
            if sample_name == name and sample_labels == wanted:
                return value
        return 0.0

    def dropped_by_reason(self) -> dict[str, int]:
        return {
            reason: int(child.value) for reason, child in list(self.samples_dropped.children.items()) if child.value
        }


class SelfRegistry:
    """What /metrics serves (``prometheus_client.generate_latest`` takes it): the client's metrics and the
    collectors registered here, as prometheus-client metric families (imported only when asked)."""

    def __init__(self, metrics: SelfMetrics) -> None:
        self.metrics = metrics
        self.others: list[Collector] = []

    def register(self, collector: Collector) -> None:
        self.others.append(collector)

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        m = self.metrics
        for name, help_text, kind, metric in m.described:
            full = PREFIX + name
            if kind == "gauge":
                yield GaugeMetricFamily(full, help_text, value=metric.get())
            elif kind == "histogram":
                cumulative, buckets = 0.0, []
                for bound, count in zip([*metric.bounds, math.inf], metric.counts, strict=True):
                    cumulative += count
                    buckets.append((_le(bound), cumulative))
                yield HistogramMetricFamily(full, help_text, buckets=buckets, sum_value=metric.sum)
            elif isinstance(metric, LabelledCounter):
                family = CounterMetricFamily(full, help_text, labels=[metric.label])
                for value, child in list(metric.children.items()):
                    family.add_metric([value], child.value)
                yield family
            else:
                yield CounterMetricFamily(full, help_text, value=metric.value)
        for collector in self.others:
            yield from collector.collect()

    def get_sample_value(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        """The value of one sample, or None (prometheus-client's registry method of that name)."""
        wanted = labels or {}
        for sample_name, sample_labels, value in self.metrics.samples():
            if sample_name == name and sample_labels == wanted:
                return value
        return None
