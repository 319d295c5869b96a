"""REMOTE_WRITE_URL as users write it: credentials and secret-looking parameters in it, non-ASCII in it.
Against a real Prometheus: every sample arrives, and nothing secret reaches the log."""

from __future__ import annotations

from pathlib import Path

import pytest

from testkit.client import MonitoringClient
from testkit.prometheus import PrometheusServer

from .helpers import assert_all_stored, complete_run, seq_run

pytestmark = pytest.mark.integration


def test_credentials_and_a_key_in_the_url_work_and_never_reach_the_log(
    tmp_path: Path, prometheus: PrometheusServer
) -> None:
    url = prometheus.write_url.replace("http://", "http://writer:Url-Pw-5e1f@") + "?api_key=Url-Key-77aa&tenant=a"
    tally, client = complete_run(tmp_path, prometheus, url)
    assert_all_stored(tally, client)
    log = client.log_text()
    assert "Url-Pw-5e1f" not in log and "Url-Key-77aa" not in log
    assert "http://***@127.0.0.1:" in log and "api_key=***&tenant=a" in log


def test_a_non_ascii_url_is_encoded_and_works(tmp_path: Path, prometheus: PrometheusServer) -> None:
    tally, client = complete_run(tmp_path, prometheus, prometheus.write_url + "?standort=zürich")
    assert_all_stored(tally, client)
    assert "standort=z%C3%BCrich" in client.log_text()


def test_a_control_character_in_the_url_is_one_line_and_exit_2(tmp_path: Path, prometheus: PrometheusServer) -> None:
    env = seq_run(tmp_path, prometheus).client_env(prometheus.write_url.replace("/write", "/wr\tite"))
    client = MonitoringClient(env, tmp_path / "client.log", cwd=tmp_path).start()
    assert client.wait(60) == 2
    (line,) = client.log_text().splitlines()
    assert line.startswith("REMOTE_WRITE_URL=") and "contains a control character (U+0009)" in line
