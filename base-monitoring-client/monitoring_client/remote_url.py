"""The receiver's URL as the wire needs it: checked once at start, non-ASCII encoded, origins compared.

Decision for characters HTTP cannot carry: a control character or a blank anywhere in ``REMOTE_WRITE_URL``
is a configuration error (exit 2): it is almost always a paste accident (a newline, a tab, a stray
``\\r`` from a Windows file), and no encoding of it is what the user meant. Non-ASCII characters are encoded
the way browsers do (an IRI becomes a URI): the host name with IDNA (``bücher.example`` becomes
``xn--bcher-kva.example``), the path, query and user information as UTF-8 percent-escapes; the encoded URL
is what is sent and what the log shows.
"""

from __future__ import annotations

import re
import unicodedata
from typing import NamedTuple
from urllib.parse import quote, urlsplit, urlunsplit

_NON_ASCII_RE = re.compile(r"[^\x00-\x7f]+")
DEFAULT_PORTS = {"http": 80, "https": 443}


class BadUrl(ValueError):
    """The text cannot be a remote-write URL; the message says why, without repeating the text."""


class Origin(NamedTuple):
    scheme: str
    host: str
    port: int


def _forbidden_character(text: str) -> str | None:
    for ch in text:
        if ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            kind = "a blank" if ch.isspace() and unicodedata.category(ch) != "Cc" else "a control character"
            return f"contains {kind} (U+{ord(ch):04X}); remove it"
    return None


def _percent_encode(part: str) -> str:
    return _NON_ASCII_RE.sub(lambda m: quote(m.group(0), safe=""), part)


def _encode_host(host: str) -> str:
    if host.isascii():
        return host
    try:
        labels = host.split(".")
        return ".".join(label if label.isascii() else label.encode("idna").decode("ascii") for label in labels)
    except UnicodeError:
        raise BadUrl("has a host name that cannot be encoded for DNS (IDNA)") from None


def _encode_netloc(netloc: str) -> str:
    userinfo, at, hostport = netloc.rpartition("@")
    if hostport.startswith("["):  # IPv6 literal: ASCII by definition
        host, rest = hostport, ""
    else:
        host, colon, port = hostport.rpartition(":")
        if not colon or not port.isdigit():
            host, rest = hostport, ""
        else:
            rest = colon + port
    return (_percent_encode(userinfo) + at if at else "") + _encode_host(host) + rest


def normalise_url(text: str, schemes: tuple[str, ...] = ("http", "https")) -> str:
    """The URL ready to send: surrounding blanks removed, non-ASCII encoded; ``BadUrl`` when it cannot be
    one (a control character or blank inside, wrong scheme, no host, invalid port)."""
    url = text.strip()
    problem = _forbidden_character(url)
    if problem:
        raise BadUrl(problem)
    try:
        parts = urlsplit(url)
    except ValueError:
        raise BadUrl("is not a valid URL") from None
    if parts.scheme.lower() not in schemes:
        raise BadUrl(f"does not start with {' or '.join(s + '://' for s in schemes)}")
    if not parts.netloc.rpartition("@")[2] or not parts.hostname:
        raise BadUrl("has no host")
    if not url.isascii():
        parts = parts._replace(
            netloc=_encode_netloc(parts.netloc),
            path=_percent_encode(parts.path),
            query=_percent_encode(parts.query),
            fragment=_percent_encode(parts.fragment),
        )
        url = urlunsplit(parts)
        parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise BadUrl("has an invalid port") from None
    if port == 0:
        raise BadUrl("has an invalid port")
    return url


def origin(url: str) -> Origin:
    """Scheme, host (lower case) and port (the scheme's default when absent) of an absolute URL."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return Origin(scheme, (parts.hostname or "").lower(), parts.port or DEFAULT_PORTS.get(scheme, 0))


def request_target(url: str) -> str:
    """What goes on the request line: the path (``/`` when empty) and the query; never the fragment."""
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
