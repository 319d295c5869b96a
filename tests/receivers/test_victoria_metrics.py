"""The client against the real victoria-metrics binary on 127.0.0.1, without and with its basic auth:
every sample arrives and is read back through VictoriaMetrics' own PromQL API."""

from __future__ import annotations

from pathlib import Path

import pytest

from testkit.victoriametrics import VictoriaMetricsServer, find_victoria_metrics

from .helpers import PASSWORD, USER, assert_all_stored, complete_run, password_file

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(find_victoria_metrics() is None, reason="victoria-metrics not installed (./run-tests.sh does)"),
]


@pytest.mark.parametrize("auth", [False, True], ids=["open", "basic-auth"])
def test_every_sample_arrives(tmp_path: Path, auth: bool) -> None:
    env = {}
    if auth:
        env = {"REMOTE_WRITE_USERNAME": USER, "REMOTE_WRITE_PASSWORD_FILE": str(password_file(tmp_path / "s"))}
    with VictoriaMetricsServer(tmp_path / "vm", auth=(USER, PASSWORD) if auth else None) as vm:
        tally, client = complete_run(tmp_path / "run", vm, **env)
    assert_all_stored(tally, client)
    assert PASSWORD not in client.log_text()
