"""Redirects: 307/308 followed to the same scheme, host and port only; every other one is reported with
where it points (redacted), never followed and never a crash."""

from __future__ import annotations

from typing import Any

from monitoring_client.http_transport import MAX_REDIRECTS, HttpTransport
from testkit.ports import free_port

HEADERS = {"Content-Type": "application/x-protobuf"}


def test_a_307_to_the_same_origin_is_followed_with_the_same_body_and_credentials(receiver: Any) -> None:
    receiver.enqueue(307, headers={"Location": "/moved/write?x=1"})
    url = receiver.url.replace("http://", "http://writer:s3cret-pw@")
    transport = HttpTransport(url, HEADERS)
    response = transport.post(b"payload", timeout=5)
    assert response.status == 204
    first, second = receiver.requests
    assert (first.path, second.path) == ("/api/v1/write", "/moved/write?x=1")
    assert first.body == second.body == b"payload"
    assert first.headers["Authorization"] == second.headers["Authorization"]
    assert transport.connections == 1  # same host and port: the kept-alive connection is reused


def test_a_308_with_an_absolute_same_origin_url_is_followed(receiver: Any) -> None:
    receiver.enqueue(308, headers={"Location": receiver.url.replace("/api/v1/write", "/v2/write")})
    assert HttpTransport(receiver.url, HEADERS).post(b"p", timeout=5).status == 204
    assert [r.path for r in receiver.requests] == ["/api/v1/write", "/v2/write"]


def test_a_307_to_another_port_is_not_followed_and_says_where(receiver: Any) -> None:
    elsewhere = f"http://127.0.0.1:{free_port()}/api/v1/write"
    receiver.enqueue(307, headers={"Location": elsewhere})
    response = HttpTransport(receiver.url, HEADERS).post(b"p", timeout=5)
    assert response.status == 307 and response.location == elsewhere
    assert f"redirect to {elsewhere}" in response.message()
    assert "same scheme, host and port" in response.message()
    assert len(receiver.requests) == 1


def test_a_301_is_not_followed_and_its_location_is_shown_without_secrets(receiver: Any) -> None:
    receiver.enqueue(301, headers={"Location": "https://user:hunter2-pw@example.invalid/w?api_key=K3Y-VALUE&org=a"})
    message = HttpTransport(receiver.url, HEADERS).post(b"p", timeout=5).message()
    assert "redirect to https://***@example.invalid/w?api_key=***&org=a" in message
    assert "hunter2-pw" not in message and "K3Y-VALUE" not in message
    assert "set REMOTE_WRITE_URL" in message
    assert len(receiver.requests) == 1


def test_a_redirect_loop_ends(receiver: Any) -> None:
    for _ in range(MAX_REDIRECTS + 5):
        receiver.enqueue(307, headers={"Location": "/api/v1/write"})
    response = HttpTransport(receiver.url, HEADERS).post(b"p", timeout=5)
    assert response.status == 307 and f"more than {MAX_REDIRECTS} redirects" in response.message()
    assert len(receiver.requests) == MAX_REDIRECTS + 1


def test_an_unusable_location_is_reported_not_followed(receiver: Any) -> None:
    for location in ("http://[::1", "/a\x7fb", "http://127.0.0.1:99999/w", ""):
        receiver.enqueue(307, headers={"Location": location} if location else {})
        response = HttpTransport(receiver.url, HEADERS).post(b"p", timeout=5)
        assert response.status == 307, location
        assert "REMOTE_WRITE_URL" in response.message()


def test_a_non_ascii_location_is_encoded_and_followed(receiver: Any) -> None:
    receiver.enqueue(307, headers={"Location": "/schreib/grüße"})
    assert HttpTransport(receiver.url, HEADERS).post(b"p", timeout=5).status == 204
    assert receiver.requests[1].path == "/schreib/gr%C3%BC%C3%9Fe"
