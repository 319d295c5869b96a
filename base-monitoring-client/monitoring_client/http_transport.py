"""Remote-write POSTs over one kept-alive connection: opened here (TLS, proxy tunnel), requests written and
answers read by ``http_wire`` (a request head built once, one ``sendall``, a plain bounded answer parser).

Why not ``requests`` or ``http.client`` for each request: most of their CPU per POST is per-request work a
push does not need (merging proxy, ``.netrc`` and CA-bundle settings from the environment, adapter layers;
assembling headers one by one, parsing answers through the ``email`` package), and at low sampling rates
pushing is a large share of the client's CPU (see the README's design notes).

What a hostile or broken receiver cannot do to this transport:

* hold a request longer than its timeout: one deadline bounds the whole exchange (connection, proxy
  tunnel, TLS handshake, sending, the answer's headers and body), however slowly the bytes trickle in;
* make it read a large answer: at most ``MAX_ANSWER_BYTES`` of any body are read (with a length, chunked
  or until the connection closes); a longer answer ends the connection instead of being read;
* send it elsewhere: a 307/308 is followed only to the same scheme, host and port (the credentials stay
  with the receiver they were configured for), at most ``MAX_REDIRECTS`` times; other redirects are
  returned with their ``Location`` for the message;
* learn or echo a secret into the log: answers are scrubbed of the credentials, URLs shown redacted.

Also here: ``Authorization`` from ``credentials.Credentials``, TLS from ``tls.TlsFiles`` (both re-read their
files when these change, and at once after a 401/403 or a TLS failure), the extra headers of
``REMOTE_WRITE_HEADERS``, and an HTTP proxy from the environment (``HTTP_PROXY``/``HTTPS_PROXY`` minus
``NO_PROXY``: absolute-form requests for http, a ``CONNECT`` tunnel for https). Every failure without an
answer is a :class:`PostError` that says whether the request can have reached the receiver, which the
sender needs to count a retried request correctly.
"""

from __future__ import annotations

import base64
import http.client
import io
import logging
import math
import re
import select
import socket
import ssl
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import urljoin, urlsplit

from monitoring_client import http_wire
from monitoring_client.credentials import Credentials, UrlUserinfo
from monitoring_client.errors import ConfigError
from monitoring_client.redaction import printable, redact_url, scrub
from monitoring_client.remote_url import normalise_url, origin, request_target
from monitoring_client.tls import TlsFiles

log = logging.getLogger(__name__)

# The most of an answer's body that is read: enough for any receiver's error message.
MAX_ANSWER_BYTES = 16 * 1024
# Same-origin 307/308 redirects followed for one request.
MAX_REDIRECTS = 3
# Bytes sent per system call, so the deadline is checked while a large body goes out to a slow reader.
SEND_CHUNK = 64 * 1024
# How often the secret and TLS files are checked for changes (one stat each), at most.
FILE_CHECK_INTERVAL_S = 1.0
_REFUSED_CREDENTIALS = (401, 403)
_REDIRECTS = (301, 302, 303, 307, 308)


class Response(NamedTuple):
    """An answer: status, the headers the sender needs, at most ``MAX_ANSWER_BYTES`` of the body (scrubbed
    of secrets); ``location`` (redacted) when a redirect was not followed, ``hint`` what to do about it."""

    status: int
    retry_after: str | None
    body: bytes
    location: str | None = None
    hint: str = ""

    def message(self) -> str:
        """One line for a log: ``HTTP 404: <first line of the answer> (<hint>)``."""
        lines = self.body.decode("utf-8", "replace").strip().splitlines()
        text = f"HTTP {self.status}: {printable(lines[0]) if lines else ''}".rstrip()
        if self.location is not None:
            text += f" redirect to {printable(self.location)}"
        return f"{text} ({self.hint})" if self.hint else text


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


@dataclass(frozen=True)
class Proxy:
    """An HTTP proxy from the environment that applies to the receiver's URL."""

    host: str
    port: int
    authorization: str | None
    shown: str  # for messages, without credentials


def proxy_for(url: str, environ_proxies: Mapping[str, str] | None = None) -> Proxy | None:
    """The proxy of ``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY`` for ``url``, unless ``NO_PROXY`` excludes its
    host; ``ConfigError`` for a proxy this transport cannot use (only ``http://`` proxies)."""
    parts = urlsplit(url)
    proxies = urllib.request.getproxies_environment() if environ_proxies is None else environ_proxies
    chosen = proxies.get(parts.scheme.lower()) or proxies.get("all")
    if not chosen or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    proxy = urlsplit(chosen if "://" in chosen else f"http://{chosen}")
    shown = redact_url(chosen)
    if proxy.scheme.lower() != "http" or not proxy.hostname:
        raise ConfigError(
            f"the {parts.scheme.upper()}_PROXY from the environment ({shown}) cannot be used: only http:// proxies"
            " are; fix it, or add the receiver's host to NO_PROXY"
        )
    userinfo = UrlUserinfo.of(chosen if "://" in chosen else f"http://{chosen}")
    authorization = None
    if userinfo is not None:
        pair = f"{userinfo.user}:{userinfo.password}".encode()
        authorization = "Basic " + base64.b64encode(pair).decode("ascii")
    return Proxy(proxy.hostname, proxy.port or 80, authorization, shown)


def _dropped(sock: socket.socket) -> bool:
    """True when an idle kept-alive connection was closed by the server (it is readable: EOF or junk)."""
    poller = select.poll()
    poller.register(sock, select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


def _wait(sock: socket.socket, deadline: float, clock: Callable[[], float], *, write: bool) -> None:
    """Until ``sock`` is readable (or writable), or ``TimeoutError`` at the deadline."""
    left = deadline - clock()
    if left <= 0:
        raise TimeoutError("deadline passed")
    poller = select.poll()
    poller.register(sock, select.POLLOUT if write else select.POLLIN)
    if not poller.poll(math.ceil(left * 1000)):
        raise TimeoutError("deadline passed")


class _DeadlineSocket:
    """The connection's socket, as ``http.client`` sees it: every send and receive through it gives up at
    ``deadline`` (set for each request), so a peer that trickles bytes cannot stretch an exchange."""

    def __init__(self, sock: socket.socket, clock: Callable[[], float]) -> None:
        self.sock = sock
        self.deadline = math.inf
        self._clock = clock

    def left(self) -> float:
        left = self.deadline - self._clock()
        if left <= 0:
            raise TimeoutError("deadline passed")
        return left

    def sendall(self, data: Any) -> None:
        view = memoryview(data).cast("B")
        for start in range(0, len(view), SEND_CHUNK):
            self.sock.settimeout(self.left())
            self.sock.sendall(view[start : start + SEND_CHUNK])

    def makefile(self, mode: str = "rb", *args: Any, **kwargs: Any) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self))

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()


class _DeadlineReader(io.RawIOBase):
    """The answer's bytes, each read bounded by the owner's deadline. Holds its own reference to the
    socket (``makefile``), so the socket stays open while an answer that closes the connection is read."""

    def __init__(self, owner: _DeadlineSocket) -> None:
        super().__init__()
        self._owner = owner
        self._raw = owner.sock.makefile("rb", buffering=0)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self._owner.sock.settimeout(self._owner.left())
        got = self._raw.readinto(buffer)
        return 0 if got is None else got

    def close(self) -> None:
        self._raw.close()
        super().close()


class _Link:
    """One open connection to the receiver (directly, through a proxy, with TLS) and the answers read on it."""

    __slots__ = ("exchanges", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.exchanges = 0

    def close(self) -> None:
        self.sock.close()


_Hop = tuple[str | None, str, str | None]


class _Answer(NamedTuple):
    status: int
    retry_after: str | None
    location: str | None
    body: bytes


class HttpTransport:
    """POSTs to one URL, reusing one connection while the server keeps it open. Not thread-safe.

    ``credentials`` default to the URL's ``user:password@`` (if any), ``tls`` to the system's trust store
    for https; ``extra_headers`` are added to ``headers`` on every request.
    """

    def __init__(
        self,
        url: str,
        headers: Mapping[str, str],
        *,
        credentials: Credentials | None = None,
        tls: TlsFiles | None = None,
        extra_headers: Iterable[tuple[str, str]] = (),
        proxy: Proxy | None | bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        parts = urlsplit(url)
        self.url = url
        self.shown_url = redact_url(url)
        self.https = parts.scheme.lower() == "https"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.https else 80)
        self.where = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        self.target = request_target(url)
        self.credentials = credentials if credentials is not None else Credentials(url_userinfo=UrlUserinfo.of(url))
        self.tls = tls if tls is not None else (TlsFiles() if self.https else None)
        self.proxy = proxy_for(url) if proxy is True else (proxy or None)
        self._fixed_headers = {**headers, **dict(extra_headers)}
        self._headers = self._request_headers()
        self._watching = self.credentials.has_files() or (self.tls is not None and self.tls.has_files())
        self._clock = clock
        self._next_file_check = 0.0
        self._reload_files = False
        self._reported: set[str] = set()
        self._heads: dict[str, bytes] = {}  # request heads by target, for the current headers
        self._conn: _Link | None = None
        self.connections = 0  # connections opened so far (tests and the bench check keep-alive)
        self.redirects_followed = 0

    # -- headers and files -------------------------------------------------------------------------------
    def _request_headers(self) -> dict[str, str]:
        headers = dict(self._fixed_headers)
        if self.credentials.header is not None:
            headers["Authorization"] = self.credentials.header
        if self.proxy is not None and self.proxy.authorization is not None and not self.https:
            headers["Proxy-Authorization"] = self.proxy.authorization
        return headers

    def _check_files(self, now: float) -> None:
        """Re-read changed secret and TLS files (at most every ``FILE_CHECK_INTERVAL_S``, at once after a
        refusal or TLS failure); a new TLS context closes the connection so the next one uses it."""
        if not self._watching or (now < self._next_file_check and not self._reload_files):
            return
        force, self._reload_files = self._reload_files, False
        self._next_file_check = now + FILE_CHECK_INTERVAL_S
        if self.credentials.refresh(force):
            self._headers = self._request_headers()
            self._heads = {}
            log.info("credentials re-read (%s): the next requests use them", self.credentials.describe())
        if self.tls is not None and self.tls.refresh(force):
            self.close()
            log.info("TLS files re-read for %s: new connections use them", self.where)
        problems = self.credentials.problems() + ([self.tls.problem] if self.tls and self.tls.problem else [])
        for problem in problems:
            if problem not in self._reported:
                log.warning("%s", problem)
        self._reported = set(problems)

    def secrets(self) -> list[str]:
        return self.credentials.secrets()

    # -- connection ----------------------------------------------------------------------------------------
    def _open(self, deadline: float) -> socket.socket:
        left = deadline - self._clock()
        if left <= 0:
            raise TimeoutError("deadline passed")
        address = (self.proxy.host, self.proxy.port) if self.proxy is not None else (self.host, self.port)
        sock = socket.create_connection(address, timeout=left)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.proxy is not None and self.https:
                self._tunnel(sock, deadline)
            if self.https:
                return self._handshake(sock, deadline)
        except BaseException:
            sock.close()
            raise
        return sock

    def _tunnel(self, sock: socket.socket, deadline: float) -> None:
        assert self.proxy is not None
        lines = [f"CONNECT {self.where} HTTP/1.1", f"Host: {self.where}"]
        if self.proxy.authorization is not None:
            lines.append(f"Proxy-Authorization: {self.proxy.authorization}")
        wrapped = _DeadlineSocket(sock, self._clock)
        wrapped.deadline = deadline
        wrapped.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("ascii"))
        answer = http.client.HTTPResponse(wrapped, method="CONNECT")  # type: ignore[arg-type]
        answer.begin()
        if answer.status != 200:
            raise _ProxyRefused(
                f"proxy {self.proxy.shown} refused the tunnel to {self.where}: HTTP {answer.status}"
                f" {printable(answer.reason, 100)}"
            )

    def _handshake(self, sock: socket.socket, deadline: float) -> socket.socket:
        assert self.tls is not None
        tls = self.tls.context.wrap_socket(sock, server_hostname=self.host, do_handshake_on_connect=False)
        tls.setblocking(False)
        while True:
            try:
                tls.do_handshake()
                return tls
            except ssl.SSLWantReadError:
                _wait(tls, deadline, self._clock, write=False)
            except ssl.SSLWantWriteError:
                _wait(tls, deadline, self._clock, write=True)

    def _connect(self, deadline: float, timeout: float) -> _Link:
        conn = self._conn
        if conn is not None and _dropped(conn.sock):
            conn.close()
            conn = self._conn = None
        if conn is not None:
            return conn
        try:
            sock = self._open(deadline)
        except TimeoutError:
            raise PostError("timeout", f"no connection within {timeout:g}s (ConnectTimeout)", never_sent=True) from None
        except ssl.SSLError as exc:
            self._reload_files = True
            raise PostError("error", self._tls_message(exc), never_sent=True) from None
        except (_ProxyRefused, http.client.HTTPException) as exc:
            raise PostError("error", str(exc), never_sent=True) from None
        except OSError as exc:  # refused, unreachable, name not resolved
            raise PostError("error", describe(exc), never_sent=True) from None
        conn = _Link(sock)
        self.connections += 1
        self._conn = conn
        return conn

    def _tls_message(self, exc: ssl.SSLError) -> str:
        return self.tls.explain(exc, self.where) if self.tls is not None else describe(exc)

    # -- exchange ------------------------------------------------------------------------------------------
    def post(self, body: bytes, timeout: float) -> Response:
        """POST ``body``; the answer, or :class:`PostError` when there is none within ``timeout`` seconds
        (for the whole exchange, redirects included)."""
        now = self._clock()
        deadline = now + timeout
        self._check_files(now)
        url, target = self.url, self.target
        answer = self._exchange(target, body, deadline, timeout)
        hint = ""
        location = None
        hops = 0
        while answer.status in _REDIRECTS:
            nxt, hint, location = self._redirect(answer.status, url, answer.location, hops)
            if nxt is None:
                break
            url, target = nxt, request_target(nxt)
            hops += 1
            self.redirects_followed += 1
            if self.redirects_followed == 1:
                log.info("receiver %s redirects (%d) to %s: followed", self.shown_url, answer.status, redact_url(url))
            answer = self._exchange(target, body, deadline, timeout)
        if answer.status in _REFUSED_CREDENTIALS:
            self._reload_files = True
            hint = self._refused_hint(answer.status)
        data = answer.body
        if data:
            data = _scrub_bytes(data, self.secrets())
        return Response(answer.status, answer.retry_after, data, location, hint)

    def _redirect(self, status: int, current: str, location: str | None, hops: int) -> _Hop:
        """The URL to follow, or None with why not and where it pointed (redacted)."""
        if not location:
            return None, "a redirect without a Location: fix REMOTE_WRITE_URL", None
        try:
            joined = urljoin(current, location)
            shown = redact_url(joined)
            nxt = normalise_url(joined)
            foreign = origin(nxt) != origin(current) or "@" in urlsplit(location).netloc
        except ValueError:
            return None, "not followed: the Location is not a usable URL; fix REMOTE_WRITE_URL", redact_url(location)
        if status not in (307, 308):
            why = f"a {status} redirect is not followed (it would turn the POST into a GET)"
            return None, f"{why}: set REMOTE_WRITE_URL to the new address", shown
        if foreign:
            why = "not followed: only redirects to the same scheme, host and port are (the credentials stay with"
            return None, f"{why} the receiver they were set for); set REMOTE_WRITE_URL to it if it is right", shown
        if hops >= MAX_REDIRECTS:
            return None, f"more than {MAX_REDIRECTS} redirects: set REMOTE_WRITE_URL to the final address", shown
        return nxt, "", None

    def _refused_hint(self, status: int) -> str:
        sent = self.credentials.describe()
        if self.credentials.header is None:
            return (
                "the receiver wants credentials: set REMOTE_WRITE_USERNAME and REMOTE_WRITE_PASSWORD_FILE,"
                " or REMOTE_WRITE_BEARER_TOKEN_FILE"
            )
        what = "refused" if status == 401 else "did not allow"
        fix = (
            "fix the file (it is read again before the next attempt)"
            if self.credentials.has_files()
            else ("fix the credentials and restart")
        )
        return f"the receiver {what} {sent}: {fix}"

    def _head(self, target: str) -> bytes:
        """The request's head up to its length (``http_wire``), built once per target and headers."""
        head = self._heads.get(target)
        if head is None:
            host = http_wire.host_header(self.host, self.port, 443 if self.https else 80)
            head = self._heads[target] = http_wire.request_head("POST", target, host, self._headers)
        return head

    def _exchange(self, target: str, body: bytes, deadline: float, timeout: float) -> _Answer:
        if self.proxy is not None and not self.https:
            target = f"http://{self.where}{target}"  # absolute form, for the proxy
        try:
            head = self._head(target)
        except ValueError as exc:  # a request HTTP cannot carry (its text may quote a secret: not shown)
            self.close()
            why = f"request not sent: it cannot be written as HTTP ({exc.__class__.__name__}); check REMOTE_WRITE_URL"
            raise PostError("error", why, never_sent=True) from None
        conn = self._connect(deadline, timeout)
        fresh = conn.exchanges == 0
        send_error: OSError | None = None
        try:
            http_wire.send_request(conn.sock, head, body, deadline=deadline, clock=self._clock)
        except (TimeoutError, ssl.SSLError) as exc:
            raise self._failed(exc, timeout, fresh) from None
        except OSError as exc:
            send_error = exc  # the receiver may have answered before reading it all (a 413): read that answer
        try:
            answer = http_wire.read_response(conn.sock, max_body=MAX_ANSWER_BYTES, deadline=deadline, clock=self._clock)
        except (OSError, http.client.HTTPException) as exc:
            raise self._failed(exc if isinstance(exc, TimeoutError) else send_error or exc, timeout, fresh) from None
        conn.exchanges += 1
        if send_error is not None or answer.will_close:
            self.close()  # a longer answer than is read, or the server's choice: a new connection next time
        return _Answer(answer.status, answer.retry_after, answer.location, answer.body)

    def _failed(self, exc: BaseException, timeout: float, fresh: bool) -> PostError:
        """The connection is dropped; the error that says what happened (and, for TLS, what to change)."""
        self.close()
        if isinstance(exc, TimeoutError):
            return PostError("timeout", f"no answer within {timeout:g}s (ReadTimeout)", never_sent=False)
        if self.tls is not None and fresh and isinstance(exc, (ConnectionError, ssl.SSLEOFError)):
            self._reload_files = True  # closed right after the handshake: what a refused client certificate does
            return PostError("error", self.tls.explain_drop(self.where), never_sent=False)
        if self.tls is not None and isinstance(exc, ssl.SSLError) and not isinstance(exc, ssl.SSLEOFError):
            self._reload_files = True
            return PostError("error", self.tls.explain(exc, self.where), never_sent=False)
        return PostError("error", describe(exc), never_sent=False)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class _ProxyRefused(Exception):
    pass


def _scrub_bytes(data: bytes, secrets: list[str]) -> bytes:
    """An answer's body without any of the secrets (a receiver may echo what it was sent)."""
    if not secrets:
        return data
    text = data.decode("utf-8", "replace")
    cleaned = scrub(text, secrets)
    return data if cleaned == text else cleaned.encode("utf-8")
