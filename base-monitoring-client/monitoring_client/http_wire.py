"""One HTTP/1.1 request and its answer on an open socket, with as little work per request as possible.

``http.client`` assembles every request header by header and parses every answer's headers through the
``email`` package's parser; on a push a second that work is a large share of the client's CPU, because it
runs with cold caches each time. Here the request head is built once (:func:`request_head`), a request is
one ``sendall`` of head, length and body (:func:`send_request`), and the answer is read with a plain parser
(:func:`read_response`) that keeps only what a remote-write client needs: the status, ``Retry-After``,
``Location``, a bounded prefix of the body, and whether the connection can carry another request
(``Connection: close``, HTTP/1.0, a body that ends with the connection, or one longer than what is kept).

With a ``deadline`` (a ``clock`` time) every send and receive gives up at that moment (``TimeoutError``),
however slowly a peer trickles its bytes. Bodies come with ``Content-Length``, chunked, or up to the
connection's end; at most ``max_body`` bytes of any of them are read, and a longer body is left unread
(the connection is then given up). 1xx interim responses are skipped. Anything malformed raises
:class:`WireError`, an ``http.client.HTTPException``; a connection that ends before a complete response
raises ``http.client.RemoteDisconnected`` or ``http.client.IncompleteRead``; socket timeouts and errors
propagate as ``TimeoutError`` / ``OSError``, all as ``http.client`` would.
"""

from __future__ import annotations

import http.client
import re
import socket
import time
from collections.abc import Callable, Mapping
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
    location: str | None = None


def host_header(host: str, port: int, default_port: int) -> str:
    """The ``Host`` value ``http.client`` would send: IPv6 in brackets, the port only when not the default."""
    name = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return name if port == default_port else f"{name}:{port}"


# What http.client refuses on a request line and in headers (its own checks, applied once per head here).
_BAD_TARGET_RE = re.compile("[\x00-\x20\x7f]")
_HEADER_NAME_RE = re.compile(r"[^:\s][^:\r\n]*")


def request_head(method: str, target: str, host: str, headers: Mapping[str, str]) -> bytes:
    """Everything of a request before its length: ``send_request`` appends ``<length>\\r\\n\\r\\n`` and the body.

    Raises ValueError for what ``http.client`` would refuse to write (a blank or control character in the
    target, a line break in a header, text outside ASCII in the target or Latin-1 in a header); the message
    never quotes the header's value, which may be a secret.
    """
    if _BAD_TARGET_RE.search(target) or not target.isascii():
        raise ValueError("the request target holds a blank, a control or a non-ASCII character")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    for name, value in headers.items():
        if not _HEADER_NAME_RE.fullmatch(name) or "\r" in value or "\n" in value:
            raise ValueError(f"header {name[:40]!r} holds a line break or is not a valid name")
        lines.append(f"{name}: {value}")
    try:
        return ("\r\n".join(lines) + "\r\nContent-Length: ").encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError("a header holds characters outside Latin-1") from None


class _Deadline:
    """Applies a deadline to each socket call: the socket's timeout is set to what is left before it."""

    __slots__ = ("at", "clock")

    def __init__(self, at: float, clock: Callable[[], float]) -> None:
        self.at = at
        self.clock = clock

    def apply(self, sock: socket.socket) -> None:
        left = self.at - self.clock()
        if left <= 0:
            raise TimeoutError("deadline passed")
        sock.settimeout(left)


class _Reader:
    """Buffered reads from the socket (each bounded by the deadline, when there is one)."""

    __slots__ = ("buf", "deadline", "sock")

    def __init__(self, sock: socket.socket, deadline: _Deadline | None) -> None:
        self.sock = sock
        self.deadline = deadline
        self.buf = b""

    def more(self) -> bool:
        if self.deadline is not None:
            self.deadline.apply(self.sock)
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


# The usual answer in one piece: a final status line and well-formed header lines, all already received.
# Matching it whole and picking out the few headers used is a handful of C calls; any other shape (an interim
# response, an answer split across reads, anything unusual or malformed) goes through the line parser below,
# which gives the same result for this shape.
_PLAIN_HEAD_RE = re.compile(rb"HTTP/1\.([0-9]) ([0-9]{3})(?: [^\r\n]*)?\r\n((?:[^\r\n:]*:[^\r\n]*\r\n)*)\r\n")
_USED_HEADER_RE = re.compile(
    rb"^[ \t]*(connection|content-length|transfer-encoding|retry-after|location)[ \t]*:[ \t]*([^\r\n]*?)[ \t]*\r$",
    re.IGNORECASE | re.MULTILINE,
)


def _head(reader: _Reader) -> tuple[int, bool, dict[str, str]]:
    """Status, HTTP/1.0-ness and headers (lower-case names) of the next final response; skips 1xx.

    Of a plain answer received whole only the headers this module uses are kept."""
    while not reader.buf:
        if not reader.more():
            raise http.client.RemoteDisconnected("Remote end closed connection without response")
    plain = _PLAIN_HEAD_RE.match(reader.buf)
    if plain is None or plain.end() > MAX_HEAD_BYTES or plain[2][0] == 0x31:  # 0x31: "1", an interim status
        return _head_by_lines(reader)
    reader.buf = reader.buf[plain.end() :]
    headers: dict[str, str] = {}
    for name, value in _USED_HEADER_RE.findall(plain[3]):
        key = name.lower().decode("latin-1")
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return int(plain[2]), plain[1] == b"0", headers


def _head_by_lines(reader: _Reader) -> tuple[int, bool, dict[str, str]]:
    """:func:`_head` for any answer, line by line."""
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
    """The body of a chunked response up to ``limit`` bytes; True when there was more (left unread)."""
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
        if size + chunk > limit:
            kept.append(reader.exactly(limit - size))
            return b"".join(kept), True
        kept.append(reader.exactly(chunk))
        if reader.line():
            raise WireError("chunk not followed by CRLF")
        size += chunk


def send_request(
    sock: socket.socket,
    head: bytes,
    body: bytes,
    *,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Send ``head`` (from :func:`request_head`), the length and ``body`` in one ``sendall``."""
    if deadline is not None:
        _Deadline(deadline, clock).apply(sock)
    sock.sendall(b"%s%d\r\n\r\n%s" % (head, len(body), body))


def read_response(
    sock: socket.socket,
    *,
    max_body: int = MAX_BODY_BYTES,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> WireResponse:
    """Read the answer to the request sent last (at most ``max_body`` bytes of its body)."""
    reader = _Reader(sock, None if deadline is None else _Deadline(deadline, clock))
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
    return WireResponse(status, headers.get("retry-after"), data, will_close or truncated, headers.get("location"))


def exchange(
    sock: socket.socket,
    head: bytes,
    body: bytes,
    *,
    max_body: int = MAX_BODY_BYTES,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> WireResponse:
    """:func:`send_request`, then :func:`read_response`."""
    send_request(sock, head, body, deadline=deadline, clock=clock)
    return read_response(sock, max_body=max_body, deadline=deadline, clock=clock)
