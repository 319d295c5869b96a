"""Hostile neighbours on the client's machine (``neighbours.py``): nothing good lost, nothing blocked."""

from __future__ import annotations

from pathlib import Path

import pytest

from testkit.prometheus import PrometheusServer

from . import neighbours
from .test_reliability import assert_complete

pytestmark = pytest.mark.integration


def test_a_flood_of_silent_health_connections_takes_no_descriptor_the_pipeline_needs(
    tmp_path: Path, prometheus: PrometheusServer
) -> None:
    result = neighbours.health_flood(tmp_path, prometheus, connections=300, hold_s=8)
    d = result.details
    assert result.allowed_loss == 0
    assert_complete(result)
    assert d["healthz_answers"] == ["ok in Ns"], d
    assert d["most_open_fds"] < neighbours.FLOOD_NOFILE, d
    assert not d["too_many_open_files_in_log"] and d["spool_write_errors"] == 0, d


def test_odd_entries_in_the_spool_directory_are_set_aside_unread(tmp_path: Path, prometheus: PrometheusServer) -> None:
    result = neighbours.hostile_spool_entries(tmp_path, prometheus)
    d = result.details
    assert d["left_over_requests"] > 0
    assert result.allowed_loss == 0
    assert_complete(result)
    assert d["foreign_files"] == 5 and len(d["set_aside"]) == 5, d
    assert d["outside_file_untouched"], d
    assert d["replay_log"], "the replay is logged with its samples and series"


def test_a_second_client_on_the_same_spool_directory_exits_2_naming_the_holder(
    tmp_path: Path, prometheus: PrometheusServer
) -> None:
    result = neighbours.shared_spool_dir(tmp_path, prometheus)
    d = result.details
    assert d["second_exit_status"] == 2, d
    message = d["second_message"]
    assert message.count("\n") == 0 and "Traceback" not in message, message
    assert f"SPOOL_DIR=SPOOL_DIR is in use by another monitoring-client (pid {d['first_pid']} on host" in message
    assert result.allowed_loss == 0
    assert_complete(result)


@pytest.mark.parametrize("spool", [True, False], ids=["spool", "memory"])
def test_a_second_sigterm_says_what_it_drops_and_the_spool_keeps_it(
    tmp_path: Path, prometheus: PrometheusServer, spool: bool
) -> None:
    result = neighbours.second_sigterm(tmp_path, prometheus, spool=spool)
    d = result.details
    assert d["first_exit_status"] == 1 and d["message"], d
    if spool:
        assert "stay in the spool" in d["message"] and "sent after the next start" in d["message"], d
        assert result.lost == 0, "everything stayed in the spool and was sent after the restart"
    else:
        assert d["reported_dropped"] > 0, d
        assert result.lost == d["reported_dropped"], "the line says exactly what was lost"
    assert_complete(result)
