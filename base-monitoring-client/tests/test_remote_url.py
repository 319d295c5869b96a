"""REMOTE_WRITE_URL as the wire needs it: control characters and blanks refused, non-ASCII encoded."""

from __future__ import annotations

import pytest

from monitoring_client.remote_url import BadUrl, normalise_url, origin, request_target


@pytest.mark.parametrize(
    "url",
    [
        "http://h:9090/api/v1/wr\nite",
        "http://h:9090/api/v1/write\r\nX-Injected: 1",
        "http://h:9090/api v1/write",
        "http://h\t:9090/write",
        "http://h:9090/write\x7f",
        "http://h:9090/wr\u2028ite",
        "http://h:9090/wr\u200bite",  # a zero-width space pasted from a web page
        "http://h:9090/write\u00a0x",
    ],
)
def test_control_characters_and_blanks_inside_are_refused_without_echo(url: str) -> None:
    with pytest.raises(BadUrl) as caught:
        normalise_url(url)
    assert "U+" in str(caught.value) and "h:9090" not in str(caught.value)


def test_non_ascii_is_encoded() -> None:
    url = normalise_url("http://bücher.example:9090/schreib/grüße?mandant=zürich")
    assert url == "http://xn--bcher-kva.example:9090/schreib/gr%C3%BC%C3%9Fe?mandant=z%C3%BCrich"
    assert normalise_url("http://wrïter:pässword@h/w") == "http://wr%C3%AFter:p%C3%A4ssword@h/w"


def test_surrounding_blanks_are_trimmed_and_ascii_urls_kept_as_given() -> None:
    assert normalise_url("  http://Prometheus:9090/api/v1/write%20x \n") == "http://Prometheus:9090/api/v1/write%20x"


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://h/w", "does not start with"),
        ("http:///w", "has no host"),
        ("http://u:p@/w", "has no host"),
        ("http://h:0/w", "invalid port"),
        ("http://h:99999/w", "invalid port"),
        ("http://[::1/w", "not a valid URL"),
    ],
)
def test_other_invalid_urls(url: str, why: str) -> None:
    with pytest.raises(BadUrl, match=why):
        normalise_url(url)


def test_origin_and_request_target() -> None:
    assert origin("HTTPS://Host.Example/w") == origin("https://host.example:443/x")
    assert origin("http://h/w") != origin("http://h:8080/w")
    assert request_target("http://h") == "/"
    assert request_target("http://h/a?b=1#c") == "/a?b=1"
