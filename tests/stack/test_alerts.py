"""The alerting rules shipped with Prometheus (prometheus/alerts.yml) and the dashboard's table of them.

``promtool`` checks the rules and runs their unit tests (prometheus/alerts.test.yml). Each alert must have a
case where it fires and one where it does not, and both must matter: an alert whose expression never holds,
or always holds, has to fail its unit tests. Then a real client that drops samples makes a real Prometheus
(with these rules) fire, and the dashboard's "Firing alerts" query shows it.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from testkit.prometheus import PrometheusServer, find_prometheus
from testkit.wait import wait_until
from tests.reliability.harness import SeqRun

from .stack_dashboard import load_dashboards, panel_queries, regex_for, substitute

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "prometheus" / "alerts.yml"
RULE_TESTS = ROOT / "prometheus" / "alerts.test.yml"
# What the client drops the sequence implementation's bad records for (one reason per kind of mistake).
BAD_RECORD_REASONS = {"not_a_dict", "missing_key", "bad_value", "bad_metric_name", "bad_label_name"}


def promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.skip("promtool not installed (it comes with the prometheus package ./run-tests.sh installs)")
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def alert_rules(groups: dict[str, Any]) -> list[dict[str, Any]]:
    return [rule for group in groups["groups"] for rule in group["rules"] if "alert" in rule]


def test_rules_pass_promtool_check() -> None:
    done = promtool("check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(alert_rules(yaml.safe_load(RULES.read_text())))} rules found" in done.stdout


def test_rule_unit_tests_pass_and_cover_every_alert_firing_and_silent() -> None:
    done = promtool("test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    cases = [case for test in yaml.safe_load(RULE_TESTS.read_text())["tests"] for case in test["alert_rule_test"]]
    for rule in alert_rules(yaml.safe_load(RULES.read_text())):
        mine = [case for case in cases if case["alertname"] == rule["alert"]]
        assert any(case["exp_alerts"] for case in mine), f"no case where {rule['alert']} fires"
        assert any(not case["exp_alerts"] for case in mine), f"no case where {rule['alert']} stays silent"


@pytest.mark.parametrize("replacement", ["vector(1) < 0", "vector(1)"], ids=["never", "always"])
def test_each_alert_unit_test_fails_when_its_expression_is_wrong(tmp_path: Path, replacement: str) -> None:
    rules = yaml.safe_load(RULES.read_text())
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    for rule in alert_rules(rules):
        original = rule["expr"]
        rule["expr"] = replacement
        (tmp_path / RULES.name).write_text(yaml.safe_dump(rules))
        done = promtool("test", "rules", RULE_TESTS.name, cwd=tmp_path)
        assert done.returncode != 0, f"{rule['alert']} with expr {replacement!r} still passes its unit tests"
        rule["expr"] = original


@pytest.mark.integration
@pytest.mark.skipif(find_prometheus() is None, reason="Prometheus binary not found (./run-tests.sh installs it)")
def test_a_client_dropping_samples_fires_and_the_dashboard_lists_it(tmp_path: Path) -> None:
    dashboard = load_dashboards()["power.json"]
    (alerts_query,) = [q.expr for q in panel_queries(dashboard) if q.panel == "Firing alerts"]
    with PrometheusServer(tmp_path / "prometheus", rule_files=[RULES], evaluation_interval="1s") as prom:
        # The sequence implementation mixes in bad records, which the client drops (and counts) by reason.
        run = SeqRun(tmp_path / "run", prom, env={"SEQ_BAD_EVERY": "5", "SELF_METRICS_INTERVAL_S": "1"})
        try:
            client = run.start_client()

            def firing() -> list[dict[str, Any]]:
                client.check_alive()
                return [
                    a
                    for a in prom.alerts()
                    if a["labels"]["alertname"] == "MonitoringClientDroppingSamples" and a["state"] == "firing"
                ]

            fired = wait_until(firing, 60, interval=0.5, message="MonitoringClientDroppingSamples firing")
            reasons = {a["labels"]["reason"] for a in fired}
            assert reasons <= BAD_RECORD_REASONS
            assert {a["labels"]["host"] for a in fired} == {"reliability-host"}
            values = {"host": regex_for(["reliability-host"]), "source": regex_for(["reliability-seq"])}

            def shown() -> list[dict[str, Any]]:
                # The ALERTS series is written when the rule group's evaluation ends, just after the API
                # reports the alert: wait for the next evaluation rather than race it.
                return prom.query(substitute(alerts_query, values))

            rows = wait_until(shown, 30, interval=0.5, message="the dashboard's alerts query lists the alert")
            assert {r["metric"]["alertname"] for r in rows} == {"MonitoringClientDroppingSamples"}
            assert {r["metric"]["reason"] for r in rows} <= BAD_RECORD_REASONS
            other_host = prom.query(substitute(alerts_query, {**values, "host": "another-host"}))
            assert other_host == [], "the table must follow the dashboard's host variable"
        finally:
            run.cleanup()
