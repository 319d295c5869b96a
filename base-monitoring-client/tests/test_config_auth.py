"""The credential, TLS and header settings: what goes together, one line per problem, and no secret in any
message, in ``--check`` output or in the settings object's repr."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from monitoring_client.config import load_config
from monitoring_client.errors import ConfigError
from monitoring_client.request_headers import RESERVED_HEADERS
from monitoring_client.sender import HEADERS

IMPLS = Path(__file__).resolve().parent / "impls"
SECRET = "s3cr3t-Value-42"
HTTPS = "https://127.0.0.1:9/api/v1/write"


def problems(env: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(env)
    return str(caught.value).splitlines()


@pytest.fixture
def pw_file(tmp_path: Path) -> Path:
    path = tmp_path / "pw"
    path.write_text(SECRET + "\n")
    return path


def test_valid_combinations(pw_file: Path) -> None:
    cfg = load_config({"REMOTE_WRITE_USERNAME": "writer", "REMOTE_WRITE_PASSWORD_FILE": str(pw_file)})
    assert (cfg.remote_write_username, cfg.remote_write_password_file) == ("writer", pw_file)
    cfg = load_config({"REMOTE_WRITE_BEARER_TOKEN": SECRET, "REMOTE_WRITE_HEADERS": "X-Scope-OrgID=lab-a"})
    assert cfg.remote_write_headers == (("X-Scope-OrgID", "lab-a"),)
    cfg = load_config(
        {
            "REMOTE_WRITE_URL": HTTPS,
            "REMOTE_WRITE_CA_FILE": str(pw_file),
            "REMOTE_WRITE_CERT_FILE": str(pw_file),
            "REMOTE_WRITE_KEY_FILE": str(pw_file),
        }
    )
    assert cfg.remote_write_ca_file == pw_file  # the content is checked when the transport is built


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"REMOTE_WRITE_USERNAME": "writer"}, "REMOTE_WRITE_USERNAME is set without a password"),
        ({"REMOTE_WRITE_PASSWORD": SECRET}, "a password is set without REMOTE_WRITE_USERNAME"),
        (
            {"REMOTE_WRITE_USERNAME": "w", "REMOTE_WRITE_PASSWORD": SECRET, "REMOTE_WRITE_PASSWORD_FILE": "{pw}"},
            "REMOTE_WRITE_PASSWORD and REMOTE_WRITE_PASSWORD_FILE are both set",
        ),
        (
            {"REMOTE_WRITE_BEARER_TOKEN": SECRET, "REMOTE_WRITE_BEARER_TOKEN_FILE": "{pw}"},
            "REMOTE_WRITE_BEARER_TOKEN and REMOTE_WRITE_BEARER_TOKEN_FILE are both set",
        ),
        (
            {"REMOTE_WRITE_USERNAME": "w", "REMOTE_WRITE_PASSWORD": SECRET, "REMOTE_WRITE_BEARER_TOKEN": SECRET},
            "are both set: a request carries one Authorization header",
        ),
        (
            {"REMOTE_WRITE_URL": f"http://u:{SECRET}@h/w", "REMOTE_WRITE_BEARER_TOKEN": "t"},
            "REMOTE_WRITE_URL carries credentials",
        ),
        ({"REMOTE_WRITE_URL": HTTPS, "REMOTE_WRITE_CERT_FILE": "{pw}"}, "REMOTE_WRITE_CERT_FILE and"),
        ({"REMOTE_WRITE_CA_FILE": "{pw}"}, "REMOTE_WRITE_CA_FILE needs an https:// REMOTE_WRITE_URL"),
    ],
)
def test_settings_that_do_not_go_together(pw_file: Path, env: dict[str, str], expected: str) -> None:
    env = {k: v.replace("{pw}", str(pw_file)) for k, v in env.items()}
    lines = problems(env)
    assert any(expected in line for line in lines), lines
    assert all(SECRET not in line for line in lines)


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("REMOTE_WRITE_PASSWORD", f"{SECRET}\x01", "contains a control character"),
        ("REMOTE_WRITE_BEARER_TOKEN", f"{SECRET} x", "contains a blank"),
        ("REMOTE_WRITE_USERNAME", f"{SECRET}:x", "contains ':'"),
        ("REMOTE_WRITE_HEADERS", f"X-Api-Key={SECRET},X-Other:{SECRET}", "item 2 has no '='"),
        ("REMOTE_WRITE_HEADERS", f"x-prometheus-remote-write-version={SECRET}", "set by the client itself"),
        ("REMOTE_WRITE_HEADERS", f"Authorization=Bearer {SECRET}", "Authorization cannot be set here"),
        ("REMOTE_WRITE_HEADERS", f"X-A={SECRET},x-a={SECRET}", "x-a is given twice"),
        ("REMOTE_WRITE_HEADERS", f"X-A={SECRET}\x7f", "contains a control character"),
        ("REMOTE_WRITE_URL", f"http://u:{SECRET}@h/w\r\nX: 1", "contains a control character"),
        ("REMOTE_WRITE_URL", f"http://h/w?api_key={SECRET}&x=\ty", "contains a control character"),
        ("REMOTE_WRITE_URL", f"ftp://{SECRET}@h/w", "does not start with"),
    ],
)
def test_an_invalid_secret_setting_is_one_line_without_the_secret(variable: str, value: str, reason: str) -> None:
    (line,) = problems({variable: value})
    assert line.startswith(variable) and reason in line
    assert SECRET not in line


def test_every_protocol_header_is_reserved() -> None:
    assert {name.lower() for name in HEADERS} <= RESERVED_HEADERS


def test_the_settings_repr_shows_no_secret(pw_file: Path) -> None:
    cfg = load_config(
        {
            "REMOTE_WRITE_USERNAME": "writer",
            "REMOTE_WRITE_PASSWORD": SECRET,
            "REMOTE_WRITE_HEADERS": f"X-Api-Key={SECRET}",
        }
    )
    assert SECRET not in repr(cfg)


def run_check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("REMOTE_WRITE_")}
    environ.update({"MONITOR_IMPL": "counting_impl", **env})
    return subprocess.run(
        [sys.executable, "-m", "monitoring_client", "--check"],
        env=environ,
        cwd=str(IMPLS),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_check_builds_the_transport_and_shows_no_secret(pw_file: Path, tmp_path: Path) -> None:
    ok = run_check(
        {
            "REMOTE_WRITE_URL": f"http://127.0.0.1:9/w?api_key={SECRET}",
            "REMOTE_WRITE_USERNAME": "writer",
            "REMOTE_WRITE_PASSWORD_FILE": str(pw_file),
            "REMOTE_WRITE_HEADERS": f"X-Api-Key={SECRET}",
        }
    )
    assert ok.returncode == 0, ok.stderr
    assert SECRET not in ok.stdout + ok.stderr
    empty = tmp_path / "empty"
    empty.write_text("\n")
    bad = run_check(
        {"REMOTE_WRITE_USERNAME": "writer", "REMOTE_WRITE_PASSWORD_FILE": str(empty), "REMOTE_WRITE_PASSWORD": ""}
    )
    assert bad.returncode == 2
    assert bad.stderr.strip() == f"REMOTE_WRITE_PASSWORD_FILE={empty} cannot be used: empty"
    not_pem = run_check({"REMOTE_WRITE_URL": "https://127.0.0.1:9/w", "REMOTE_WRITE_CA_FILE": str(pw_file)})
    assert not_pem.returncode == 2
    assert not_pem.stderr.startswith(f"REMOTE_WRITE_CA_FILE={pw_file} cannot be used: no PEM CA certificate")
    assert SECRET not in not_pem.stderr and "Traceback" not in not_pem.stderr
