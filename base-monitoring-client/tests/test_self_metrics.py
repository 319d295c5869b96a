"""Self-metrics as a scrape would see them: pushed with the data and served on /metrics alike."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from monitoring_client.records import DROP_REASONS
from monitoring_client.self_metrics import SelfMetrics


def test_samples_look_like_a_scrape_without_created_series() -> None:
    m = SelfMetrics()
    m.samples_received.inc(5)
    m.dropped("bad_value", 2)
    m.requests.labels("204").inc()
    m.push_duration.observe(0.02)
    samples = {(name, tuple(sorted(labels.items()))): value for name, labels, value in m.samples()}
    assert samples[("monitoring_client_samples_received_total", ())] == 5
    assert samples[("monitoring_client_samples_dropped_total", (("reason", "bad_value"),))] == 2
    assert samples[("monitoring_client_requests_total", (("status", "204"),))] == 1
    assert samples[("monitoring_client_push_duration_seconds_bucket", (("le", "0.025"),))] == 1
    assert samples[("monitoring_client_push_duration_seconds_bucket", (("le", "0.01"),))] == 0
    assert samples[("monitoring_client_push_duration_seconds_count", ())] == 1
    assert not any(name.endswith("_created") for name, _ in samples)
    # every drop reason exists from the start at 0
    assert {dict(k)["reason"] for n, k in samples if n == "monitoring_client_samples_dropped_total"} == set(
        DROP_REASONS
    )
    assert m.dropped_by_reason() == {"bad_value": 2}


def test_metrics_are_private_to_each_instance() -> None:
    a, b = SelfMetrics(), SelfMetrics()
    a.samples_received.inc()
    assert b.value("monitoring_client_samples_received_total") == 0
    assert REGISTRY.get_sample_value("monitoring_client_samples_received_total") is None


def test_metrics_endpoint_serves_the_same_samples_and_other_collectors() -> None:
    from prometheus_client import generate_latest
    from prometheus_client.core import GaugeMetricFamily
    from prometheus_client.parser import text_string_to_metric_families

    class Extra:
        def collect(self):  # type: ignore[no-untyped-def]
            yield GaugeMetricFamily("monitoring_client_extra", "A registered collector.", value=7)

    m = SelfMetrics()
    m.registry.register(Extra())
    m.samples_sent.inc(4)
    m.requests.labels("503").inc(2)
    m.push_duration.observe(0.025)  # on a bound: counted in that bucket, as prometheus-client does
    m.buffered_bytes.set_function(lambda: 1234)
    m.last_success.set(1_700_000_000.5)
    served = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(generate_latest(m.registry).decode())
        for s in family.samples
    }
    pushed = {(name, tuple(sorted(labels.items()))): value for name, labels, value in m.samples()}
    assert served == pushed
    assert pushed[("monitoring_client_push_duration_seconds_bucket", (("le", "0.025"),))] == 1
    assert pushed[("monitoring_client_push_duration_seconds_bucket", (("le", "+Inf"),))] == 1
    assert pushed[("monitoring_client_push_duration_seconds_sum", ())] == 0.025
    assert pushed[("monitoring_client_buffered_bytes", ())] == 1234
    assert pushed[("monitoring_client_extra", ())] == 7
    assert m.value("monitoring_client_requests_total", {"status": "503"}) == 2
    assert m.registry.get_sample_value("monitoring_client_samples_sent_total") == 4
    assert m.value("monitoring_client_no_such_metric") == 0.0


def test_counters_only_go_up() -> None:
    with pytest.raises(ValueError):
        SelfMetrics().retries.inc(-1)
