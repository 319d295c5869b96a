"""Problems an implementation reports turn /healthz unhealthy while the client runs on."""

from __future__ import annotations

from monitoring_client import impl_health
from monitoring_client.health import HealthState
from monitoring_client.impl_health import ImplementationHealth


def test_reported_problems_make_the_state_unhealthy_until_cleared() -> None:
    own = ImplementationHealth()
    state = HealthState(implementation=own)
    state.success()
    assert state.check()[0]
    own.report("gpu 1", "GPU 1 fell off the bus")
    own.report("gpu 2", "GPU 2 fell off the bus")
    assert state.check() == (False, "implementation reports: GPU 1 fell off the bus; GPU 2 fell off the bus")
    own.clear("gpu 1")
    own.clear("never reported")
    assert state.check() == (False, "implementation reports: GPU 2 fell off the bus")
    own.clear("gpu 2")
    assert state.check()[0]


def test_the_module_functions_use_the_process_wide_object_that_health_state_reads_by_default() -> None:
    state = HealthState()
    impl_health.report_problem("test key", "something is gone")
    try:
        assert state.check() == (False, "implementation reports: something is gone")
    finally:
        impl_health.clear_problem("test key")
    assert state.check()[0]
