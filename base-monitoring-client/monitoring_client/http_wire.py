"""One HTTP/1.1 request and its response on an open socket, with as little work per request as possible.

``http.client`` assembles every request header by header and parses every response's headers through the
``email`` package's parser; on a push a second that work is a large share of the client's CPU, because it
runs with cold caches each time. Here the request head is built once (:func:`request_head`), a request is
one ``sendall`` of head, length and body, and the response is read with a plain parser that keeps only what
a remote-write client needs: the status, ``Retry-After``, the body, and whether the server closes the
connection (``Connection: close``, HTTP/1.0, or a body that ends with the connection).

Bodies come with ``Content-Length``, chunked, or up to the connection's end; 1xx interim responses are
skipped. Anything malformed raises :class:`WireError`, an ``http.client.HTTPException``; a connection that
ends before a complete response raises ``http.client.RemoteDisconnected`` or ``http.client.IncompleteRead``;
socket timeouts and errors propagate as ``TimeoutError`` / ``OSError``, all as ``http.client`` would.
"""

from __future__ import annotations

import http.client
import socket
from collections.abc import Mapping
from typing import NamedTuple

# Longest status line plus headers accepted, and the most of a body kept (the rest is read past and the
# connection closed, so a misbehaving server cannot make the client hold a large error page).
MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 1024 * 1024
_RECV = 65536


class WireError(http.client.HTTPException):
    """The server's answer is not a well-formed HTTP/1.x response."""


class WireResponse(NamedTuple):
    status: int
    retry_after: str | None
    body: bytes
    will_close: bool  # the connection cannot carry another request


def host_header(host: str, port: int, default_port: int) -> str:
    """The ``Host`` value ``http.client`` would send: IPv6 in brackets, the port only when not the default."""
    name = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return name if port == default_port else f"{name}:{port}"


def request_head(method: str, target: str, host: str, headers: Mapping[str, str]) -> bytes:
    """Everything of a request before its length: ``exchange`` appends ``<length>\\r\\n\\r\\n`` and the body."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    for line in lines:
        if "\r" in line or "\n" in line:
            raise ValueError(f"line break in request header {line!r}")
    return ("\r\n".join(lines) + "\r\nContent-Length: ").encode("latin-1")


class _Reader:
    """Buffered reads from the socket."""

    __slots__ = ("buf", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def more(self) -> bool:
        data = self.sock.recv(_RECV)
        if data:
            self.buf += data
        return bool(data)

    def line(self) -> bytes:
        while True:
            end = self.buf.find(b"\r\n")
            if end >= 0:
                line, self.buf = self.buf[:end], self.buf[end + 2 :]
                return line
            if len(self.buf) > MAX_HEAD_BYTES:
                raise WireError("response line too long")
            if not self.more():
                raise http.client.IncompleteRead(self.buf)

    def exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self.more():
                raise http.client.IncompleteRead(self.buf, n - len(self.buf))
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def to_end(self, limit: int) -> tuple[bytes, bool]:
        """Everything until the connection ends, keeping ``limit`` bytes; True when some were left out."""
        while len(self.buf) <= limit and self.more():
            pass
        return self.buf[:limit], len(self.buf) > limit


def _head(reader: _Reader) -> tuple[int, bool, dict[str, str]]:
    """Status, HTTP/1.0-ness and headers (lower-case names) of the next final response; skips 1xx."""
    while True:
        while not reader.buf:
            if not reader.more():
                raise http.client.RemoteDisconnected("Remote end closed connection without response")
        status_line = reader.line()
        parts = status_line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit() or len(parts[1]) != 3:
            raise WireError(f"bad status line {status_line[:100]!r}")
        status = int(parts[1])
        headers: dict[str, str] = {}
        size = len(status_line)
        while True:
            line = reader.line()
            size += len(line) + 2
            if size > MAX_HEAD_BYTES:
                raise WireError("response headers too long")
            if not line:
                break
            name, sep, value = line.partition(b":")
            if not sep:
                raise WireError(f"bad header line {line[:100]!r}")
            key = name.strip().lower().decode("latin-1")
            text = value.strip().decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        if 100 <= status < 200:
            continue  # interim response (100 Continue, 103 Early Hints): the final one follows
        return status, parts[0] == b"HTTP/1.0", headers


def _chunked(reader: _Reader, limit: int) -> tuple[bytes, bool]:
    """The body of a chunked response, keeping ``limit`` bytes; True when some were left out."""
    kept: list[bytes] = []
    size = 0
    while True:
        size_text = reader.line().split(b";", 1)[0].strip()
        try:
            chunk = int(size_text, 16)
        except ValueError:
            raise WireError(f"bad chunk size {size_text[:20]!r}") from None
        if chunk < 0:
            raise WireError(f"bad chunk size {size_text[:20]!r}")
        if chunk == 0:
            while reader.line():  # trailers, up to the empty line
                pass
            return b"".join(kept), size > limit
        data = reader.exactly(chunk)
        if reader.line():
            raise WireError("chunk not followed by CRLF")
        if size < limit:
            kept.append(data[: limit - size])
        size += chunk


def exchange(sock: socket.socket, head: bytes, body: bytes, *, max_body: int = MAX_BODY_BYTES) -> WireResponse:
    """Send ``head`` (from :func:`request_head`), the length and ``body``; read and return the response."""
    sock.sendall(b"%s%d\r\n\r\n%s" % (head, len(body), body))
    reader = _Reader(sock)
    status, http10, headers = _head(reader)
    connection = headers.get("connection", "").lower()
    will_close = "close" in connection or (http10 and "keep-alive" not in connection)
    truncated = False
    if status in (204, 304):
        data = b""
    elif "chunked" in headers.get("transfer-encoding", "").lower():
        data, truncated = _chunked(reader, max_body)
    elif "content-length" in headers:
        try:
            length = int(headers["content-length"].split(",")[0])
        except ValueError:
            raise WireError(f"bad Content-Length {headers['content-length'][:20]!r}") from None
        if length < 0:
            raise WireError(f"bad Content-Length {length}")
        if length > max_body:
            data, truncated = reader.exactly(max_body), True
        else:
            data = reader.exactly(length)
    else:  # the body ends with the connection
        data, truncated = reader.to_end(max_body)
        will_close = True
    if reader.buf:  # bytes after the response: not something a connection can be reused after
        will_close = True
    return WireResponse(status, headers.get("retry-after"), data, will_close or truncated)
