"""Self-metrics as a scrape would see them, from a private registry."""

from __future__ import annotations

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


def test_registry_is_private() -> None:
    SelfMetrics()
    SelfMetrics()  # a second instance would clash if both registered in the global registry
    assert REGISTRY.get_sample_value("monitoring_client_samples_received_total") is None
