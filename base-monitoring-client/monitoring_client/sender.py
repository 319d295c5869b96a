"""POST encoded payloads to the remote-write receiver, oldest first, retrying what may succeed later.

Head-of-line order: only the oldest payload is in flight; newer ones wait behind it in the buffer, so a
series' samples always reach the receiver in timestamp order, even across a long outage. A payload the
receiver refuses for good (4xx other than 429) is dropped, its samples counted and the receiver's message
logged, and the next one goes out at once: one bad request never holds back the data after it.

A request whose answer never came (read timeout, connection reset) may have been stored anyway. If its
retry is then refused as "out of order" or "duplicate sample", the first attempt was stored (Prometheus
applies a request whole or not at all), so its samples are counted as sent, not as dropped.

At shutdown the sender gets a deadline: it keeps sending (and retrying, with backoff shortened to fit)
until the buffer is empty or the deadline passes, and never starts a request that could outlive it.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from monitoring_client import __version__
from monitoring_client.encoder import Payload
from monitoring_client.health import HealthState
from monitoring_client.http_transport import HttpTransport, PostError, Response
from monitoring_client.ratelimited_log import RateLimitedLog
from monitoring_client.records import REJECTED
from monitoring_client.redaction import redact_url
from monitoring_client.retry_policy import Backoff, Verdict, classify_status, parse_retry_after
from monitoring_client.self_metrics import SelfMetrics
from monitoring_client.send_buffer import PayloadStore

if TYPE_CHECKING:  # imported where used: most clients never need it, and it is slow to import
    import requests

log = logging.getLogger(__name__)

HEADERS = {
    "Content-Encoding": "snappy",
    "Content-Type": "application/x-protobuf",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
    "User-Agent": f"monitoring-client/{__version__}",
}
# Longest wait for a payload: a new one wakes the sender at once, so this only bounds how late a missed
# wake-up at shutdown is noticed. Each needless wake-up costs CPU.
IDLE_WAIT_S = 1.0
# Shortest request worth starting near the deadline: below this a request would time out anyway.
MIN_REQUEST_TIMEOUT_S = 0.2


class Attempt:
    """Outcome of one HTTP attempt."""

    __slots__ = ("detail", "retry_after", "status", "verdict")

    def __init__(self, verdict: Verdict, status: str, detail: str, retry_after: float | None = None) -> None:
        self.verdict = verdict
        self.status = status  # label value for requests_total: "204", "503", "error", "timeout"
        self.detail = detail
        self.retry_after = retry_after


class Sender:
    """Runs in its own thread: ``run()`` until ``finish()`` was called and the buffer is empty or the
    deadline has passed."""

    def __init__(
        self,
        url: str,
        store: PayloadStore,
        backoff: Backoff,
        metrics: SelfMetrics,
        health: HealthState,
        *,
        timeout_s: float = 5.0,
        session: requests.Session | None = None,
        transport: HttpTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self._where = redact_url(url)  # for log lines; parsing the URL on every push would cost more than the push
        self.store = store
        self.backoff = backoff
        self.metrics = metrics
        self.health = health
        self.timeout_s = timeout_s
        # The transport (http.client, far cheaper per push; credentials, TLS, proxy) unless a requests
        # session is given.
        self.session = session
        self._post: Callable[[bytes, float], Response]
        if session is None:
            self._post = (transport if transport is not None else HttpTransport(url, HEADERS)).post
        else:
            self._post = self._post_with_requests
        self._clock = clock
        self._wall = wall_clock
        self._deadline: float | None = None
        self._finishing = threading.Event()
        self._wake = threading.Event()
        self._problems = RateLimitedLog(log, 30.0)
        self._failing_since: float | None = None

    # -- control ---------------------------------------------------------------------------------------
    def finish(self, deadline: float) -> None:
        """No more payloads will come: send what is buffered until ``deadline`` (a ``clock`` time)."""
        self._deadline = deadline
        self._finishing.set()
        self._wake.set()
        self.store.wake()

    def _time_left(self) -> float | None:
        return None if self._deadline is None else self._deadline - self._clock()

    # -- loop ------------------------------------------------------------------------------------------
    def run(self) -> None:
        while True:
            left = self._time_left()
            if left is not None and left <= MIN_REQUEST_TIMEOUT_S:
                return
            payload = self.store.take(timeout=IDLE_WAIT_S)
            if payload is None:
                if self._finishing.is_set():
                    return
                continue
            attempt = self.send(payload)
            if attempt.verdict is Verdict.RETRY:
                self.metrics.retries.inc()
                delay = self.backoff.next_delay(attempt.retry_after)
                left = self._time_left()
                if left is not None:
                    delay = min(delay, max(left - MIN_REQUEST_TIMEOUT_S, 0.0))
                self._wake.clear()
                if self._deadline is None or delay > 0:
                    self._wake.wait(delay)

    def send(self, payload: Payload) -> Attempt:
        """One attempt: POST, classify, account. Returns the outcome (the payload is removed unless RETRY)."""
        timeout = self.timeout_s
        left = self._time_left()
        if left is not None:
            timeout = max(min(timeout, left - 0.05), MIN_REQUEST_TIMEOUT_S)
        payload.attempts += 1
        started = self._clock()
        try:
            response = self._post(payload.body, timeout)
        except PostError as exc:
            attempt = Attempt(Verdict.RETRY, exc.kind, exc.detail)
            if not exc.never_sent:
                payload.maybe_stored = True
        else:
            verdict = classify_status(response.status)
            detail = response.message() if verdict is not Verdict.SUCCESS else f"HTTP {response.status}"
            retry_after = parse_retry_after(response.retry_after, self._wall())
            attempt = Attempt(verdict, str(response.status), detail, retry_after)
        self.metrics.push_duration.observe(self._clock() - started)
        self.metrics.requests.labels(attempt.status).inc()
        self._account(payload, attempt)
        return attempt

    def _post_with_requests(self, body: bytes, timeout: float) -> Response:
        import requests

        assert self.session is not None
        try:
            response = self.session.post(self.url, data=body, headers=HEADERS, timeout=timeout, allow_redirects=False)
        except requests.Timeout as exc:
            raise PostError(
                "timeout",
                f"no answer within {timeout:g}s ({exc.__class__.__name__})",
                never_sent=isinstance(exc, requests.ConnectTimeout),
            ) from None
        except requests.RequestException as exc:
            raise PostError("error", describe_error(exc), never_sent=_never_sent(exc)) from None
        try:
            return Response(response.status_code, response.headers.get("Retry-After"), response.content)
        finally:
            response.close()

    def _account(self, payload: Payload, attempt: Attempt) -> None:
        where = self._where
        if attempt.verdict is Verdict.SUCCESS:
            self.store.acknowledge(payload)
            self.metrics.samples_sent.inc(payload.samples)
            self.metrics.last_success.set(self._wall())
            self.backoff.reset()
            self.health.success()
            if self._failing_since is not None:
                log.info(
                    "push to %s works again after %.1fs; %d payloads still buffered",
                    where,
                    self._clock() - self._failing_since,
                    len(self.store),
                )
                self._failing_since = None
        elif attempt.verdict is Verdict.DROP and payload.maybe_stored and _ALREADY_STORED_RE.search(attempt.detail):
            # An earlier attempt got no answer, and now the receiver calls the same samples out of order or
            # duplicates: the earlier attempt was stored (Prometheus stores a request whole or not at all).
            self.store.acknowledge(payload)
            self.metrics.samples_sent.inc(payload.samples)
            self.health.success()
            log.info(
                "receiver %s refused a retried request as already seen (%s): its earlier attempt, which got no"
                " answer, was stored; counting its %d samples as sent",
                where,
                attempt.detail,
                payload.samples,
            )
        elif attempt.verdict is Verdict.DROP:
            # Counted and logged by the store's drop listener, like every other drop.
            self.health.rejected(attempt.detail)
            self.store.drop(
                payload,
                REJECTED,
                f"receiver {where} refused a request of {payload.samples} samples ({payload.series} series) for"
                f" good: {attempt.detail}",
            )
        else:
            self.health.retrying(attempt.detail)
            if self._failing_since is None:
                self._failing_since = self._clock()
            self._problems.report(
                "failed pushes",
                f"push to {where} failed, will retry (attempt {payload.attempts}, {len(self.store)} payloads"
                f" buffered): {attempt.detail}",
            )


_ERRNO_RE = re.compile(r"\[Errno -?\d+\] [^'\")\]]+")


_ALREADY_STORED_RE = re.compile(r"out of order sample|duplicate sample for timestamp", re.IGNORECASE)


def _never_sent(exc: BaseException) -> bool:
    """True when the request certainly did not reach the receiver (the connection was never made)."""
    text = str(exc)
    return any(
        marker in text
        for marker in ("NewConnectionError", "NameResolutionError", "Failed to resolve", "Errno 111", "Errno -2")
    )


def describe_error(exc: BaseException) -> str:
    """A short reason for a failed connection ("ConnectionError: [Errno 111] Connection refused") instead of
    urllib3's nested retry message, which is long and says the same thing three times."""
    match = _ERRNO_RE.search(str(exc))
    detail = match.group(0).strip() if match else _first_line(exc)
    return f"{exc.__class__.__name__}: {detail}"


def _first_line(obj: object, limit: int = 200) -> str:
    text = str(obj).strip().splitlines()
    line = text[0] if text else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."
