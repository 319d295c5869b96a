"""Remote-write POSTs over one kept-alive HTTP connection, with the standard library's ``http.client``.

Why not ``requests`` for every push: most of its CPU per POST is per-request work a push does not need
(merging proxy, ``.netrc`` and CA-bundle settings from the environment, adapter layers), and at low
sampling rates pushing is a large share of the client's CPU (see the README's design notes).
``requests`` is still used when an HTTP proxy from the environment applies to the URL (see
:func:`proxied`), because it honours ``HTTP(S)_PROXY`` / ``NO_PROXY`` and this module does not.

Covered here: ``http`` and ``https`` (certificates verified against the system trust store, or
``SSL_CERT_FILE`` / ``SSL_CERT_DIR``), ``user:password@`` in the URL (Basic auth), keep-alive with a fresh
connection when the server closed the idle one. Every failure is a :class:`PostError` that says whether the
request can have reached the receiver, which the sender needs to count a retried request correctly.
"""

from __future__ import annotations

import base64
import http.client
import re
import select
import socket
import ssl
import urllib.request
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

from monitoring_client import http_wire


class Response(NamedTuple):
    status: int
    retry_after: str | None
    body: bytes


class PostError(Exception):
    """A POST that got no HTTP answer.

    ``kind`` is ``"timeout"`` or ``"error"`` (the ``requests_total`` status label); ``never_sent`` is True
    when the request certainly did not reach the receiver (no connection was made).
    """

    def __init__(self, kind: str, detail: str, *, never_sent: bool) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.never_sent = never_sent


_ERRNO_RE = re.compile(r"\[Errno -?\d+\] [^'\")\]]+")


def describe(exc: BaseException) -> str:
    """One short line: ``ConnectionError: [Errno 111] Connection refused``."""
    text = str(exc)
    match = _ERRNO_RE.search(text)
    if match:
        detail = match.group(0).strip()
    else:
        lines = text.strip().splitlines()
        detail = lines[0][:200] if lines else exc.__class__.__name__
    return f"ConnectionError: {detail}"


def proxied(url: str) -> bool:
    """True when an HTTP proxy from the environment (``HTTP_PROXY`` etc., minus ``NO_PROXY``) applies."""
    parts = urlsplit(url)
    proxies = urllib.request.getproxies_environment()
    if not proxies.get(parts.scheme.lower()) and not proxies.get("all"):
        return False
    return not urllib.request.proxy_bypass(parts.hostname or "")  # NO_PROXY (from the environment on POSIX)


def _dropped(sock: socket.socket) -> bool:
    """True when an idle kept-alive connection was closed by the server (it is readable: EOF or junk)."""
    poller = select.poll()
    poller.register(sock, select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


class HttpTransport:
    """POSTs to one URL, reusing one connection while the server keeps it open. Not thread-safe."""

    def __init__(self, url: str, headers: dict[str, str], *, ssl_context: ssl.SSLContext | None = None) -> None:
        parts = urlsplit(url)
        self.https = parts.scheme.lower() == "https"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.https else 80)
        self.target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.headers = dict(headers)
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            self.headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        self.ssl_context = (
            ssl_context if ssl_context is not None else (ssl.create_default_context() if self.https else None)
        )
        # http.client opens the connection (and TLS); the requests themselves go through http_wire.
        host = http_wire.host_header(self.host, self.port, 443 if self.https else 80)
        self._head = http_wire.request_head("POST", self.target, host, self.headers)
        self._conn: http.client.HTTPConnection | None = None
        self.connections = 0  # connections opened so far (tests check that keep-alive works)

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        conn = self._conn
        if conn is not None and (conn.sock is None or _dropped(conn.sock)):
            conn.close()
            conn = self._conn = None
        if conn is not None:
            conn.sock.settimeout(timeout)
            return conn
        if self.https:
            conn = http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=self.ssl_context)
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.connect()
        except TimeoutError:
            conn.close()
            raise PostError("timeout", f"no answer within {timeout:g}s (ConnectTimeout)", never_sent=True) from None
        except OSError as exc:  # refused, unreachable, name not resolved, TLS handshake refused
            conn.close()
            raise PostError("error", describe(exc), never_sent=True) from None
        self.connections += 1
        self._conn = conn
        return conn

    def post(self, body: bytes, timeout: float) -> Response:
        """POST ``body``; the answer, or :class:`PostError` when there is none."""
        conn = self._connect(timeout)
        try:
            response = http_wire.exchange(conn.sock, self._head, body)
        except TimeoutError:
            self.close()
            raise PostError("timeout", f"no answer within {timeout:g}s (ReadTimeout)", never_sent=False) from None
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise PostError("error", describe(exc), never_sent=False) from None
        if response.will_close:
            self.close()
        return Response(response.status, response.retry_after, response.body)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
