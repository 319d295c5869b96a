"""Extra headers for every remote-write request (``REMOTE_WRITE_HEADERS``), and the ones nobody may set.

Receivers in front of several tenants need a header of their own (Mimir and Cortex ``X-Scope-OrgID``,
a gateway's API key). The protocol's own headers, the ones HTTP itself manages, and ``Authorization``
(which comes only from the auth settings, so that exactly one place decides it and it is never logged)
cannot be set this way: a configuration that tries is refused at start with the name of the header.
"""

from __future__ import annotations

import re
import unicodedata

# Compared in lower case. The remote-write protocol's headers, hop-by-hop and framing headers that
# http.client writes itself, and the proxy's and the server's authentication headers.
RESERVED_HEADERS = frozenset(
    name.lower()
    for name in (
        "Content-Encoding",
        "Content-Type",
        "Content-Length",
        "X-Prometheus-Remote-Write-Version",
        "User-Agent",
        "Host",
        "Connection",
        "Keep-Alive",
        "Transfer-Encoding",
        "TE",
        "Trailer",
        "Upgrade",
        "Expect",
        "Accept-Encoding",
        "Proxy-Authorization",
        "Proxy-Connection",
        "WWW-Authenticate",
        "Proxy-Authenticate",
    )
)
AUTH_HINT = "set credentials with REMOTE_WRITE_USERNAME + REMOTE_WRITE_PASSWORD_FILE or REMOTE_WRITE_BEARER_TOKEN_FILE"
# RFC 9110 token characters.
_NAME_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


class BadHeaders(ValueError):
    """The setting cannot be used; the message names the item or header, never a value."""


def shown_names(text: str) -> str:
    """The setting as an error line may show it: names kept, every value (and any item without ``=``,
    which may be a value typed without its name) replaced by ``***``."""
    out = []
    for item in text.split(","):
        name, eq, _ = item.partition("=")
        out.append(f"{name.strip()}=***" if eq and _NAME_RE.match(name.strip()) else "***")
    return ",".join(out)


def parse_headers(text: str) -> tuple[tuple[str, str], ...]:
    """``Name=value,Name2=value2`` as (name, value) pairs, in order. Blanks around names and values are
    removed; a value cannot contain a comma."""
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    for number, item in enumerate(text.split(","), start=1):
        if not item.strip():
            continue
        name, eq, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not eq:
            raise BadHeaders(f"item {number} has no '=' (write Name=value)")
        if not _NAME_RE.match(name):
            raise BadHeaders(f"item {number} has no valid header name before '='")
        lower = name.lower()
        if lower == "authorization":
            raise BadHeaders(f"Authorization cannot be set here: {AUTH_HINT}")
        if lower in RESERVED_HEADERS:
            raise BadHeaders(f"{name} is set by the client itself (remote-write protocol or HTTP) and cannot be set")
        if lower in seen:
            raise BadHeaders(f"{name} is given twice")
        if not value:
            raise BadHeaders(f"{name} has an empty value")
        if any(unicodedata.category(ch) == "Cc" for ch in value):
            raise BadHeaders(f"the value of {name} contains a control character")
        if not value.isascii():
            raise BadHeaders(f"the value of {name} is not ASCII (HTTP header values must be)")
        seen.add(lower)
        pairs.append((name, value))
    if not pairs:
        raise BadHeaders("no Name=value pair in it")
    return tuple(pairs)
