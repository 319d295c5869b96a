"""Talking to Prometheus (or VictoriaMetrics) over its HTTP API, with one-line errors for every failure.

Two endpoints are used, both served by every engine of the stack: ``/api/v1/query`` (instant queries of
range selectors return raw samples) and ``/api/v1/series`` (which series exist in a window). Credentials
come from files, never from the command line, so they stay out of ``ps`` output and shell history; they
never appear in an error message.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from energy_report import __version__
from energy_report.errors import ServerError, UsageError

DEFAULT_URL = "http://127.0.0.1:9090"
# Messages with which Prometheus and VictoriaMetrics refuse a query that would load too much data.
_LIMIT_RE = re.compile(
    r"too many samples|maxSamples|maxPoints|max_samples|exceed|limit|too many|too large", re.IGNORECASE
)


class QueryLimitError(ServerError):
    """The server refused a query as too large: the caller asks again for a shorter time span."""


@dataclass(frozen=True)
class Connection:
    """Where the server is and how to authenticate; ``from_options`` reads the secret files once."""

    url: str = DEFAULT_URL
    username: str | None = None
    password_file: Path | None = None
    bearer_token_file: Path | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    timeout_s: float = 30.0

    def validate(self) -> None:
        """Check the combination and that every named file is readable; UsageError naming the option."""
        if not re.match(r"^https?://[^/\s]+", self.url):
            raise UsageError(f"--prometheus {self.url!r} is not an http(s) URL, e.g. http://127.0.0.1:9090")
        if self.bearer_token_file and (self.username or self.password_file):
            raise UsageError("--bearer-token-file and --username/--password-file exclude each other: give one")
        if self.password_file and not self.username:
            raise UsageError("--password-file needs --username")
        if not self.timeout_s > 0:
            raise UsageError(f"--timeout-s must be a positive number of seconds, got {self.timeout_s:g}")
        if bool(self.cert_file) != bool(self.key_file):
            raise UsageError("--cert-file and --key-file go together (client certificate and its key)")
        for option, path in (
            ("--password-file", self.password_file),
            ("--bearer-token-file", self.bearer_token_file),
            ("--ca-file", self.ca_file),
            ("--cert-file", self.cert_file),
            ("--key-file", self.key_file),
        ):
            if path is not None and not os.access(path, os.R_OK):
                raise UsageError(f"{option} {path}: file not found or not readable")


def read_secret(path: Path, option: str) -> str:
    try:
        return path.read_text().strip("\r\n")
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot read it ({exc.strerror})") from None


def session_for(conn: Connection) -> requests.Session:
    """A requests session carrying the connection's credentials and client certificate."""
    conn.validate()
    session = requests.Session()
    session.headers["User-Agent"] = f"energy-report/{__version__}"
    if conn.username:
        password = read_secret(conn.password_file, "--password-file") if conn.password_file else ""
        session.auth = (conn.username, password)
    if conn.bearer_token_file:
        token = read_secret(conn.bearer_token_file, "--bearer-token-file")
        session.headers["Authorization"] = f"Bearer {token}"
    if conn.cert_file and conn.key_file:
        session.cert = (str(conn.cert_file), str(conn.key_file))
    return session


def _short(text: str, limit: int = 200) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


class PromServer:
    """The query API of one server; every method raises only ReportError subclasses."""

    def __init__(self, conn: Connection, session: requests.Session | None = None) -> None:
        self.conn = conn
        self.url = conn.url.rstrip("/")
        self.session = session if session is not None else session_for(conn)
        # Per request, not on the session: requests lets REQUESTS_CA_BUNDLE override a session's verify.
        self.verify: str | bool = str(conn.ca_file) if conn.ca_file else True
        self.queries = 0  # how many requests were made (the tests and the bench look at it)

    def close(self) -> None:
        self.session.close()

    def _get(self, path: str, params: dict[str, Any] | list[tuple[str, Any]]) -> Any:
        url = f"{self.url}{path}"
        self.queries += 1
        try:
            # POST keeps long selectors out of URL length limits; both engines accept form-encoded queries.
            resp = self.session.post(url, data=params, timeout=self.conn.timeout_s, verify=self.verify)
        except requests.exceptions.SSLError as exc:
            raise ServerError(
                f"TLS with {self.url} failed ({_tls_reason(exc)}): pass the CA that signed the server's certificate "
                "with --ca-file (or PROMETHEUS_CA_FILE)"
            ) from None
        except requests.exceptions.Timeout:
            raise ServerError(
                f"{self.url} did not answer within {self.conn.timeout_s:g}s: is it overloaded? Try a shorter window"
            ) from None
        except requests.exceptions.ConnectionError as exc:
            raise ServerError(
                f"cannot reach {self.url} ({_connection_reason(exc)}): check --prometheus / PROMETHEUS_URL and "
                "that the server is running"
            ) from None
        if resp.status_code in (401, 403):
            how = "--bearer-token-file" if self.conn.bearer_token_file else "--username and --password-file"
            raise ServerError(
                f"{self.url} refused the credentials (HTTP {resp.status_code}): check {how} "
                "(or the PROMETHEUS_* variables)"
            )
        try:
            body = resp.json()
        except ValueError:
            raise ServerError(
                f"{url} answered HTTP {resp.status_code} without a JSON body ({_short(resp.text, 120)!r}): "
                "is --prometheus the server's base URL (no /api/v1 path)?"
            ) from None
        if resp.status_code == 200 and body.get("status") == "success":
            return body.get("data")
        error = _short(str(body.get("error") or resp.reason))
        if _LIMIT_RE.search(error) and resp.status_code in (400, 422, 503):
            raise QueryLimitError(f"{self.url} refused a query as too large: {error}")
        if resp.status_code in (400, 422) and body.get("errorType") in ("bad_data", None):
            raise UsageError(f"the server rejected a query: {error}; check the --match selectors")
        raise ServerError(f"{self.url} failed a query (HTTP {resp.status_code}): {error}")

    def query(self, promql: str, at: float) -> dict[str, Any]:
        """Instant query evaluated at ``at``; returns ``data`` (``resultType`` and ``result``)."""
        data = self._get("/api/v1/query", {"query": promql, "time": f"{at:.3f}"})
        return dict(data)

    def series(self, selector: str, start: float, end: float) -> list[dict[str, str]]:
        """Label sets of every series matching ``selector`` with samples between ``start`` and ``end``."""
        data = self._get("/api/v1/series", [("match[]", selector), ("start", f"{start:.3f}"), ("end", f"{end:.3f}")])
        return [dict(item) for item in data or []]


def _connection_reason(exc: BaseException) -> str:
    text = str(exc)
    for pattern, reason in (
        (r"Connection refused", "connection refused"),
        (r"Name or service not known|nodename nor servname|Temporary failure in name resolution", "unknown host"),
        (r"No route to host", "no route to host"),
        (r"Network is unreachable", "network unreachable"),
        (r"RemoteDisconnected|Connection aborted|reset by peer", "connection closed by the server"),
    ):
        if re.search(pattern, text):
            return reason
    return "connection failed"


def _tls_reason(exc: BaseException) -> str:
    text = str(exc)
    match = re.search(r"certificate verify failed: ([^(')]+)", text)
    if match:
        return "certificate verify failed: " + match.group(1).strip()
    if "WRONG_VERSION_NUMBER" in text or "wrong version number" in text:
        return "the server does not speak TLS: use http://"
    return "handshake failed"
