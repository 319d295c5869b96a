"""The VictoriaMetrics launcher: ready only when it answers, its basic auth on when asked, samples countable."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests

from testkit.victoriametrics import VictoriaMetricsServer, find_victoria_metrics

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(find_victoria_metrics() is None, reason="victoria-metrics not installed (./run-tests.sh does)"),
]


@pytest.mark.parametrize("auth", [None, ("writer", "vm-test-pw")], ids=["open", "basic-auth"])
def test_written_samples_are_counted_and_auth_is_enforced(tmp_path: Path, auth: tuple[str, str] | None) -> None:
    with VictoriaMetricsServer(tmp_path / "vm", auth=auth) as vm:
        now_ms = int(time.time() * 1000)
        lines = "".join(f'probe_total{{k="a"}} {i} {now_ms - 1000 * (5 - i)}\n' for i in range(5))
        resp = vm.session.post(f"{vm.url}/api/v1/import/prometheus", data=lines, timeout=10)
        assert resp.status_code == 204, resp.text
        assert vm.count_samples("probe_total") == 5
        anonymous = requests.post(f"{vm.url}/api/v1/import/prometheus", data=lines, timeout=10)
        assert anonymous.status_code == (401 if auth else 204)
    assert vm.pid is None
