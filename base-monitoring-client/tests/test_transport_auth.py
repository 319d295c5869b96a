"""Credentials and extra headers on the wire, secret files re-read without a restart, and no secret in any
message."""

from __future__ import annotations

import base64
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from monitoring_client.config import load_config
from monitoring_client.credentials import Credentials, SecretValue
from monitoring_client.errors import ConfigError
from monitoring_client.http_transport import FILE_CHECK_INTERVAL_S, HttpTransport
from monitoring_client.sender import HEADERS
from monitoring_client.transport_setup import build_transport

PASSWORD = "correct-horse-9f3a"
WRONG = "wrong-horse-77c1x"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def file_with(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_settings_put_basic_auth_and_extra_headers_on_every_request(receiver: Any, tmp_path: Path) -> None:
    pw = file_with(tmp_path, "pw", PASSWORD + "\n")  # a final newline is not part of the password
    config = load_config(
        {
            "REMOTE_WRITE_URL": receiver.url,
            "REMOTE_WRITE_USERNAME": "writer",
            "REMOTE_WRITE_PASSWORD_FILE": str(pw),
            "REMOTE_WRITE_HEADERS": "X-Scope-OrgID=lab-a, X-Extra = two words",
        }
    )
    transport = build_transport(config)
    for _ in range(2):
        assert transport.post(b"p", timeout=5).status == 204
    for request in receiver.requests:
        assert request.headers["Authorization"] == basic("writer", PASSWORD)
        assert request.headers["X-Scope-OrgID"] == "lab-a" and request.headers["X-Extra"] == "two words"
        for name, value in HEADERS.items():  # the protocol's own headers, untouched
            assert request.headers[name] == value


def test_a_bearer_token_from_a_value(receiver: Any) -> None:
    config = load_config({"REMOTE_WRITE_URL": receiver.url, "REMOTE_WRITE_BEARER_TOKEN": "tok-1234"})
    build_transport(config).post(b"p", timeout=5)
    assert receiver.requests[0].headers["Authorization"] == "Bearer tok-1234"


def test_a_changed_password_file_is_noticed_without_a_refusal(receiver: Any, tmp_path: Path) -> None:
    pw = file_with(tmp_path, "pw", WRONG)
    clock = Clock()
    creds = Credentials(username="writer", password=SecretValue("REMOTE_WRITE_PASSWORD_FILE", path=pw))
    transport = HttpTransport(receiver.url, HEADERS, credentials=creds, clock=clock)
    transport.post(b"p", timeout=5)
    pw.write_text(PASSWORD + "-longer")  # another size: the status check sees it
    clock.now += FILE_CHECK_INTERVAL_S / 2
    transport.post(b"p", timeout=5)  # not checked again yet: files are looked at once per interval
    clock.now += FILE_CHECK_INTERVAL_S
    transport.post(b"p", timeout=5)
    sent = [r.headers["Authorization"] for r in receiver.requests]
    assert sent == [basic("writer", WRONG), basic("writer", WRONG), basic("writer", PASSWORD + "-longer")]


def test_after_a_refusal_the_file_is_read_again_even_if_its_status_looks_unchanged(
    receiver: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pw = file_with(tmp_path, "pw", WRONG)
    before = os.stat(pw)
    clock = Clock()
    creds = Credentials(username="writer", password=SecretValue("REMOTE_WRITE_PASSWORD_FILE", path=pw))
    transport = HttpTransport(receiver.url, HEADERS, credentials=creds, clock=clock)
    receiver.enqueue(401, body=b"Unauthorized")
    refused = transport.post(b"p", timeout=5)
    assert refused.status == 401
    assert "REMOTE_WRITE_PASSWORD_FILE=" in refused.message() and "read again" in refused.message()
    # Same size, same inode, mtime put back: only a forced re-read can see the new password.
    with open(pw, "r+") as f:
        f.write(PASSWORD[: len(WRONG)].ljust(len(WRONG), "z"))  # the same length as before
    os.utime(pw, ns=(before.st_atime_ns, before.st_mtime_ns))
    with caplog.at_level(logging.INFO):
        assert transport.post(b"p", timeout=5).status == 204
    fixed = PASSWORD[: len(WRONG)].ljust(len(WRONG), "z")
    assert receiver.requests[1].headers["Authorization"] == basic("writer", fixed)
    assert all(WRONG not in r.getMessage() and PASSWORD[:8] not in r.getMessage() for r in caplog.records)


def test_an_unusable_file_at_run_time_keeps_the_last_good_value(
    receiver: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    token = file_with(tmp_path, "token", "first-token-1")
    clock = Clock()
    creds = Credentials(token=SecretValue("REMOTE_WRITE_BEARER_TOKEN_FILE", path=token))
    transport = HttpTransport(receiver.url, HEADERS, credentials=creds, clock=clock)
    token.write_text("")  # an editor truncated it on its way to the new content
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            clock.now += FILE_CHECK_INTERVAL_S
            transport.post(b"p", timeout=5)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "empty" in warnings[0] and "still using" in warnings[0]
    token.write_text("second-token-2\n")
    clock.now += FILE_CHECK_INTERVAL_S
    transport.post(b"p", timeout=5)
    assert [r.headers["Authorization"] for r in receiver.requests] == ["Bearer first-token-1"] * 3 + [
        "Bearer second-token-2"
    ]


def test_an_answer_echoing_the_credentials_is_scrubbed(receiver: Any) -> None:
    header = basic("writer", PASSWORD)
    receiver.enqueue(401, body=f"bad credentials {header} for {PASSWORD}\nmore".encode())
    creds = Credentials(username="writer", password=SecretValue("REMOTE_WRITE_PASSWORD", value=PASSWORD))
    response = HttpTransport(receiver.url, HEADERS, credentials=creds).post(b"p", timeout=5)
    message = response.message()
    assert PASSWORD not in message and header.split()[1] not in message and PASSWORD.encode() not in response.body
    assert message.startswith("HTTP 401: bad credentials Basic *** for ***")


def test_no_credentials_and_a_refusal_says_which_settings_to_use(receiver: Any) -> None:
    receiver.enqueue(401)
    message = HttpTransport(receiver.url, HEADERS).post(b"p", timeout=5).message()
    assert "REMOTE_WRITE_USERNAME" in message and "REMOTE_WRITE_BEARER_TOKEN_FILE" in message


@pytest.mark.parametrize(
    ("content", "why"),
    [("", "empty"), ("  \n", "empty"), ("a" * 70_000, "larger than"), ("line1\nline2", "contains a control character")],
)
def test_an_unusable_secret_file_at_start_is_a_configuration_error(tmp_path: Path, content: str, why: str) -> None:
    path = file_with(tmp_path, "pw", content)
    with pytest.raises(ConfigError) as caught:
        SecretValue("REMOTE_WRITE_PASSWORD_FILE", path=path)
    assert str(caught.value).startswith(f"REMOTE_WRITE_PASSWORD_FILE={path} cannot be used: {why}")
    assert "line1" not in str(caught.value)


def test_a_fifo_in_place_of_a_secret_file_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pw"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="not a regular file"):
        SecretValue("REMOTE_WRITE_PASSWORD_FILE", path=fifo)
