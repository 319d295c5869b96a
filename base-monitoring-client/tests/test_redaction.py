"""What a message may show of a URL or a text: no credentials, whatever shape they come in."""

from __future__ import annotations

import pytest

from monitoring_client.redaction import printable, redact_url, scrub


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://h/w", "http://h/w"),
        ("https://u:secret@h:9/w", "https://***@h:9/w"),
        ("https://TOKEN123@h/w", "https://***@h/w"),  # a token given as the user name
        ("http://h/w?api_key=K&tenant=a", "http://h/w?api_key=***&tenant=a"),
        (
            "http://h/w?X-Amz-Signature=abc&access_token=t&sig=s&q=1",
            "http://h/w?X-Amz-Signature=***&access_token=***&sig=***&q=1",
        ),
        ("http://[::1]:9090/w?password=p", "http://[::1]:9090/w?password=***"),
        ("http://u:p@h:99999/w", "http://***@h/w"),  # an invalid port: still no password
        ("http://h/w#frag", "http://h/w"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redact_url_never_raises_and_hides_userinfo_in_unparsable_text() -> None:
    assert redact_url("http://[u:pw@bad") == "http://[u:pw@bad".replace("[u:pw@", "***@")


def test_scrub_removes_known_secrets_and_userinfo() -> None:
    text = "refused Basic d3JpdGVy for hunter22 at https://a:b@h/w"
    assert scrub(text, ["hunter22", "d3JpdGVy", "ab"]) == "refused Basic *** for *** at https://***@h/w"


def test_printable_escapes_control_characters_and_bounds_length() -> None:
    assert printable("a\r\nb\x1b[31m") == "a\\r\\nb\\x1b[31m"
    assert len(printable("x" * 1000, 50)) == 50


def test_tabs_and_line_breaks_stay_visible_in_the_redacted_url() -> None:
    assert redact_url("http://u:pw@h/w\r\nX: 1") == "http://***@h/w\r\nX: 1"
