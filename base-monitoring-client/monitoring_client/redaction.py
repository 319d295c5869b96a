"""What may be shown of a URL or a message: the one place that decides, used by every log and error line.

A remote-write URL can carry credentials in three places: ``user:password@`` (sent as Basic auth), a token
given as the user name (some services take ``https://TOKEN@host``), and query parameters such as
``?api_key=``. ``redact_url`` hides all of them and keeps what a person needs to recognise the address
(scheme, host, port, path, the names of the parameters). ``scrub`` removes known secret values from any
other text (an exception message, or a receiver's answer that echoes what it was sent).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import SplitResult, urlsplit, urlunsplit

HIDDEN = "***"

# Query parameter names that look like they hold a credential (matched anywhere in the name, any case):
# api_key, apikey, access_token, X-Amz-Signature, sig, password, auth, client_secret, session_id, jwt...
_SECRET_PARAM_RE = re.compile(r"key|token|secret|pass|pwd|auth|sig|credential|session|cookie|jwt|bearer", re.I)
# ``scheme://userinfo@`` inside free text (an exception message that quotes a URL).
_USERINFO_IN_TEXT_RE = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/?#\s@]*@")
# Secrets shorter than this are not searched for in free text: replacing every "ab" in a message would
# garble it without hiding anything a reader could not guess.
MIN_SCRUB_LENGTH = 4
_DROPPED_BY_URLSPLIT = "\t\r\n"


def _netloc(parts: SplitResult) -> str:
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    userinfo = f"{HIDDEN}@" if "@" in parts.netloc else ""
    return userinfo + host + (f":{port}" if port is not None else "")


def _query(query: str) -> str:
    if not query:
        return query
    out = []
    for item in query.split("&"):
        name, eq, _value = item.partition("=")
        out.append(f"{name}={HIDDEN}" if eq and _SECRET_PARAM_RE.search(name) else item)
    return "&".join(out)


def redact_url(url: str) -> str:
    """``url`` without credentials: any ``userinfo@`` becomes ``***@``, secret-looking query values ``***``.

    Never raises; a string that does not parse as a URL is returned with anything that looks like
    ``scheme://userinfo@`` hidden. Tabs and line breaks are kept where they were (``urlsplit`` alone would
    drop them, and a message about them would then show a URL without them)."""
    kept = {ch: chr(0xE000 + i) for i, ch in enumerate(_DROPPED_BY_URLSPLIT) if ch in url}
    for ch, stand_in in kept.items():
        url = url.replace(ch, stand_in)
    try:
        parts = urlsplit(url)
        shown = urlunsplit(parts._replace(netloc=_netloc(parts), query=_query(parts.query), fragment=""))
    except ValueError:
        parts = None
    if parts is None or not parts.netloc:
        shown = _USERINFO_IN_TEXT_RE.sub(lambda m: m.group("scheme") + HIDDEN + "@", url)
    for ch, stand_in in kept.items():
        shown = shown.replace(stand_in, ch)
    return shown


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of each secret (at least ``MIN_SCRUB_LENGTH`` long) replaced by ``***``,
    and any ``scheme://userinfo@`` hidden."""
    for secret in secrets:
        if len(secret) >= MIN_SCRUB_LENGTH and secret in text:
            text = text.replace(secret, HIDDEN)
    return _USERINFO_IN_TEXT_RE.sub(lambda m: m.group("scheme") + HIDDEN + "@", text)


def printable(text: str, limit: int = 300) -> str:
    """One line for a message: control characters escaped (a hostile answer cannot forge log lines),
    at most ``limit`` characters."""
    out = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)
    return out if len(out) <= limit else out[: limit - 3] + "..."
