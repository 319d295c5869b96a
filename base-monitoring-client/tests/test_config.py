"""Configuration: defaults, valid values, and one precise line per invalid variable."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from monitoring_client import settings_table
from monitoring_client.config import (
    Config,
    env_bool,
    env_bytes,
    env_float,
    env_int,
    env_path,
    env_url,
    load_config,
)
from monitoring_client.errors import ConfigError
from monitoring_client.settings_values import Bad, CommaList, Invalid

README = Path(__file__).resolve().parents[1] / "README.md"


def test_defaults_when_nothing_is_set() -> None:
    cfg = load_config({})
    assert cfg == Config(host_label=cfg.host_label)
    assert cfg.host_label  # the machine's hostname
    assert cfg.shutdown_timeout_s < 10  # Docker's default stop timeout


def test_empty_values_count_as_unset() -> None:
    assert load_config({"PUSH_INTERVAL_S": "", "LOG_LEVEL": "  "}).push_interval_s == Config().push_interval_s


def test_values_are_parsed() -> None:
    cfg = load_config(
        {
            "REMOTE_WRITE_URL": "https://user:pw@example.test:9090/api/v1/write",
            "SCRAPE_INTERVAL_S": "0.05",
            "PUSH_INTERVAL_S": "2",
            "MAX_RETRY_BATCHES": "7",
            "MAX_BUFFER_BYTES": "2MiB",
            "LOG_LEVEL": "debug",
            "SERVICE_LABEL": "gpu",
            "HOST_LABEL": "node-1",
            "HEALTH_PORT": "9100",
            "SELF_METRICS_INTERVAL_S": "0",
        }
    )
    assert cfg.remote_write_url.startswith("https://")
    assert (cfg.scrape_interval_s, cfg.push_interval_s, cfg.max_retry_batches) == (0.05, 2.0, 7)
    assert cfg.max_buffer_bytes == 2 * 1024 * 1024
    assert (cfg.log_level, cfg.service_label, cfg.host_label, cfg.health_port) == ("DEBUG", "gpu", "node-1", 9100)
    assert cfg.self_metrics_interval_s == 0


INVALID = [
    ("REMOTE_WRITE_URL", "ftp://prometheus/api/v1/write", "http or https URL"),
    ("REMOTE_WRITE_URL", "prometheus:9090/api/v1/write", "http or https URL"),
    ("REMOTE_WRITE_URL", "http://:9090/x", "http or https URL"),
    ("SCRAPE_INTERVAL_S", "0", "> 0"),
    ("SCRAPE_INTERVAL_S", "fast", "a number"),
    ("SCRAPE_INTERVAL_S", "nan", "a number"),
    ("PUSH_INTERVAL_S", "-1", ">= 0.01"),
    ("MAX_RETRY_BATCHES", "0", ">= 1"),
    ("MAX_RETRY_BATCHES", "2.5", "a whole number"),
    ("MAX_BUFFER_BYTES", "lots", "a size in bytes"),
    ("MAX_BUFFER_BYTES", "10PB", "a size in bytes"),
    ("RAW_QUEUE_SIZE", "0", ">= 1"),
    ("PROC_QUEUE_SIZE", "many", "a whole number"),
    ("LOG_LEVEL", "verbose", "one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
    ("REQUEST_TIMEOUT_S", "0", "> 0"),
    ("MAX_SAMPLES_PER_REQUEST", "0", ">= 1"),
    ("MAX_REQUEST_BYTES", "100", "a size in bytes"),
    ("RETRY_BASE_S", "-0.5", "> 0"),
    ("RETRY_MAX_S", "x", "a number"),
    ("SHUTDOWN_TIMEOUT_S", "0", "> 0"),
    ("HEALTH_PORT", "70000", "<= 65535"),
    ("HEALTH_PORT", "http", "a whole number"),
    ("SELF_METRICS_INTERVAL_S", "-1", ">= 0"),
    ("SERVICE_LABEL", " padded ", "printable label value"),
    ("HOST_LABEL", "a\tb", "printable label value"),
]


@pytest.mark.parametrize(("name", "value", "accepted"), INVALID)
def test_each_invalid_variable_gives_one_line_naming_it(name: str, value: str, accepted: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config({name: value})
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{name}={value!r} is invalid: ")
    assert f"expected {accepted}" in message or accepted in message.split("expected ", 1)[1]
    assert err.value.exit_status == 2


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as err:
        load_config({"SCRAPE_INTERVAL_S": "0", "LOG_LEVEL": "loud", "HEALTH_PORT": "0"})
    lines = str(err.value).splitlines()
    assert [line.split("=")[0] for line in lines] == ["SCRAPE_INTERVAL_S", "LOG_LEVEL", "HEALTH_PORT"]


def test_retry_cap_must_not_be_below_base() -> None:
    with pytest.raises(ConfigError, match=r"^RETRY_MAX_S='1' is invalid: expected a number >= RETRY_BASE_S \(2\)$"):
        load_config({"RETRY_BASE_S": "2", "RETRY_MAX_S": "1"})


def test_helpers_for_implementations() -> None:
    env = {"A": "1.5", "B": "42", "C": "yes", "D": "off", "E": "/tmp", "F": "512k", "U": "http://h:1/w"}
    assert env_float("A", 0.0, minimum=1, environ=env) == 1.5
    assert env_float("MISSING", 3.0, environ=env) == 3.0
    assert env_int("B", 0, maximum=42, environ=env) == 42
    assert env_bool("C", False, environ=env) is True
    assert env_bool("D", True, environ=env) is False
    assert str(env_path("E", "/nowhere", must_exist=True, environ=env)) == "/tmp"
    assert env_bytes("F", 0, environ=env) == 512 * 1024
    assert env_url("U", "", environ=env) == "http://h:1/w"
    with pytest.raises(ConfigError, match=r"^B='42' is invalid: expected a whole number <= 41$"):
        env_int("B", 0, maximum=41, environ=env)
    with pytest.raises(ConfigError, match=r"^C='yes' is invalid"):
        env_float("C", 0.0, environ=env)
    with pytest.raises(ConfigError, match=r"^A='1.5' is invalid: expected true or false"):
        env_bool("A", False, environ=env)
    with pytest.raises(ConfigError, match=r"^E='/tmp/no/such' is invalid: expected an existing path$"):
        env_path("E", "/", must_exist=True, environ={"E": "/tmp/no/such"})


def test_readme_table_is_the_settings_table() -> None:
    text = README.read_text()
    assert settings_table.update_readme(text, Config) == text, (
        "README.md's settings table is out of date: run"
        " python -m monitoring_client.settings_table monitoring_client.config:Config base-monitoring-client/README.md"
    )


def test_every_field_is_a_row_and_every_row_has_values_to_refuse() -> None:
    rows = settings_table.rows(Config)
    assert [r.field for r in rows] == [f.name for f in dataclasses.fields(Config)]
    assert all(r.variable == r.field.upper() for r in rows)
    for row in rows:
        assert row.refused(), f"{row.variable}: no value to refuse, so the reliability report cannot show one"
        for bad in row.refused():
            if bad in row.refused_at_start:
                continue  # refused when the client starts (a missing module), not when it parses
            with pytest.raises(ConfigError, match=f"^{row.variable}[= ]"):
                load_config({**bad.also, row.variable: bad.value})


def test_comma_list_kind() -> None:
    kind = CommaList(r"\d+|GPU-\w+", "indexes or UUIDs", everything="all", bad=(Bad("not an index", "x"),))
    assert kind(" 0, 2 ,") == ("0", "2") and kind("GPU-ab,1") == ("GPU-ab", "1")
    assert kind("all") == () and kind.show(()) == "all" and kind.show(("0", "2")) == "0,2"
    assert kind.expected == "'all' or indexes or UUIDs" and [b.value for b in kind.refused()] == ["x"]
    for text in ("x", "all,1", ",", "0;1", "GPU-"):
        with pytest.raises(Invalid):
            kind(text)
    names = CommaList(r"[A-Z_]+", "rail names")
    assert names("VDD_IN") == ("VDD_IN",) and names.show(("A", "B")) == "A,B" and names.expected == "rail names"
    with pytest.raises(Invalid):
        names("all")
