"""POST encoded payloads to the remote-write receiver, oldest first, and decide what each answer means.

Head-of-line order: only the oldest payload is in flight; newer ones wait behind it in the buffer, so a
series' samples always reach the receiver in timestamp order, even across a long outage.

What each answer leads to (``retry_policy`` classifies the status):

- 2xx: delivered. 5xx, 429, no answer: retried with backoff (never sooner than a ``Retry-After``).
- 400, 409, 413: the receiver refused *part* of the request (a sample out of order or out of bounds) or
  its size. The request is replaced by its two halves (``payload_split``, older samples first), sent at
  once; a half refused again is split again, so after at most log2(samples) rounds only the refused
  samples are dropped (counted ``rejected``, each named in the log) and every other sample arrives.
- 401, 403: the receiver refuses the credentials, a configuration problem. Nothing is dropped: the
  request stays at the head (newer ones wait behind it within the buffer's bounds), is retried every
  RETRY_MAX_S (the transport reads the secret files again, so fixing them on disk is enough), one ERROR
  line a minute says what to fix, and /healthz is unhealthy until a request is accepted.
- Any other answer: the request is dropped, its samples counted and the receiver's message logged, and
  the next one goes out at once: one bad request never holds back the data after it.

Splitting costs at most 2n - 1 requests for a request of n samples, about two per round where a few
samples are refused. A receiver that refuses everything (a wrong URL that answers 400 to any request)
would make every request cost 2n - 1: once ``REFUSE_ALL_SAMPLES`` samples sent alone in a row were refused
with nothing accepted in between, refused requests are dropped whole instead of split, until a request is
accepted again.

Before a request goes out, samples older than MAX_SAMPLE_AGE_S (a long outage) are taken out of it and
counted ``too_old``: the receiver would refuse them, and each refusal would cost a round of splitting.

A request whose answer never came (read timeout, connection reset) may have been stored anyway; so may a
request replayed from the spool. If such a request is then refused as "out of order" or "duplicate sample",
it was stored (Prometheus applies a request whole or not at all), so its samples are counted as sent.

The health state hears when the sender starts and ends the work on each payload, so a sender that makes
no progress (a request that never ends, whatever the reason) turns /healthz unhealthy.

At shutdown the sender gets a deadline: it keeps sending (and retrying, with backoff shortened to fit)
until the buffer is empty or the deadline passes, and never starts a request that could outlive it.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from monitoring_client import __version__
from monitoring_client.encoder import Payload, decode, iter_samples
from monitoring_client.health import HealthState
from monitoring_client.http_transport import HttpTransport, PostError, Response
from monitoring_client.payload_split import halves, without_older_than
from monitoring_client.ratelimited_log import RateLimitedLog
from monitoring_client.records import REJECTED, TOO_OLD, series_text
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
# Samples sent alone and refused in a row, with nothing accepted in between, after which the receiver is
# taken to refuse everything: refused requests are dropped whole, not split, until one is accepted.
REFUSE_ALL_SAMPLES = 100
# At most one line per this many seconds about refused credentials (the first at once).
AUTH_LOG_INTERVAL_S = 60.0
# What to fix when the receiver refuses the credentials.
AUTH_FIX = (
    "check REMOTE_WRITE_USERNAME with REMOTE_WRITE_PASSWORD_FILE, or REMOTE_WRITE_BEARER_TOKEN_FILE (or the"
    " client certificate, or the user:password in REMOTE_WRITE_URL); the files are read again before each retry,"
    " so fixing them is enough"
)


@dataclass(slots=True)
class Attempt:
    """Outcome of one HTTP attempt."""

    verdict: Verdict
    status: str  # label value for requests_total: "204", "503", "error", "timeout"
    detail: str
    retry_after: float | None = None
    unanswered: bool = False  # the request reached the receiver, no complete answer came in time


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
        max_sample_age_s: float = 0.0,
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
        self.max_sample_age_s = max_sample_age_s  # 0: no bound
        self._problems = RateLimitedLog(log, 30.0)
        self._auth_problems = RateLimitedLog(log, AUTH_LOG_INTERVAL_S, level=logging.ERROR)
        self._splits = RateLimitedLog(log, 60.0, level=logging.INFO)
        self._failing_since: float | None = None
        self._alone_refused = 0  # samples sent alone and refused since the last accepted request

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
            self.health.sender_busy()
            try:
                if self._trim_old(payload):
                    continue
                attempt = self.send(payload)
            finally:
                self.health.sender_idle()
            if attempt.verdict in (Verdict.RETRY, Verdict.AUTH):
                self.metrics.retries.inc()
                if attempt.verdict is Verdict.AUTH:  # slowly: the credentials will not fix themselves at once
                    delay = max(self.backoff.cap_s, attempt.retry_after or 0.0)
                else:
                    delay = self.backoff.next_delay(attempt.retry_after)
                left = self._time_left()
                if left is not None:
                    delay = min(delay, max(left - MIN_REQUEST_TIMEOUT_S, 0.0))
                self._wake.clear()
                if self._deadline is None or delay > 0:
                    self._wake.wait(delay)

    def send(self, payload: Payload) -> Attempt:
        """One attempt: POST, classify, account. Returns the outcome (the payload is removed, or replaced by its
        halves, unless RETRY or AUTH)."""
        timeout = self.timeout_s
        left = self._time_left()
        if left is not None:
            timeout = max(min(timeout, left - 0.05), MIN_REQUEST_TIMEOUT_S)
        payload.attempts += 1
        started = self._clock()
        try:
            response = self._post(payload.body, timeout)
        except PostError as exc:
            attempt = Attempt(
                Verdict.RETRY, exc.kind, exc.detail, unanswered=exc.kind == "timeout" and not exc.never_sent
            )
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

    def _trim_old(self, payload: Payload) -> bool:
        """Take the samples older than MAX_SAMPLE_AGE_S out of ``payload`` (counted ``too_old``); True when it
        was replaced (by what is left of it, or by nothing), so that the new head is taken instead."""
        if not self.max_sample_age_s or not payload.oldest_ms:
            return False
        bound_ms = int((self._wall() - self.max_sample_age_s) * 1000)
        if payload.oldest_ms >= bound_ms:
            return False
        try:
            kept, removed = without_older_than(payload, bound_ms)
        except Exception:  # noqa: BLE001 - a body that does not decode is sent as it is; the receiver decides
            payload.oldest_ms = 0
            return False
        if removed is None:
            payload.oldest_ms = bound_ms  # nothing older after all (the header's figure was a bound)
            return False
        if kept is not None:
            kept.maybe_stored = payload.maybe_stored
        detail = (
            f"{removed.samples + removed.self_samples} samples older than MAX_SAMPLE_AGE_S={self.max_sample_age_s:g}"
            " (the receiver would refuse them) taken out of a request before sending it"
        )
        self.store.replace(payload, [kept] if kept is not None else [], [(TOO_OLD, removed, detail)])
        return True

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
            self._alone_refused = 0
            if self._failing_since is not None:
                log.info(
                    "push to %s works again after %.1fs; %d payloads still buffered",
                    where,
                    self._clock() - self._failing_since,
                    len(self.store),
                )
                self._failing_since = None
        elif (
            attempt.verdict in (Verdict.SPLIT, Verdict.DROP)
            and payload.maybe_stored
            and _ALREADY_STORED_RE.search(attempt.detail)
        ):
            # An earlier attempt got no answer (or the previous run sent it and was stopped before removing
            # its spool file), and now the receiver calls the same samples out of order or duplicates: the
            # earlier attempt was stored (Prometheus stores a request whole or not at all).
            self.store.acknowledge(payload)
            self.metrics.samples_sent.inc(payload.samples)
            self.health.success()
            log.info(
                "receiver %s refused a request sent again as already seen (%s): its earlier attempt, which got"
                " no answer, was stored; counting its %d samples as sent",
                where,
                attempt.detail,
                payload.samples,
            )
        elif attempt.verdict is Verdict.SPLIT and self._split(payload, attempt, where):
            pass
        elif attempt.verdict in (Verdict.DROP, Verdict.SPLIT):
            # Counted and logged by the store's drop listener, like every other drop.
            self.health.rejected(attempt.detail)
            what = _what(payload)
            if what.startswith("the sample"):
                self._alone_refused += 1
                if self._alone_refused == REFUSE_ALL_SAMPLES:
                    log.warning(
                        "receiver %s refused the last %d samples sent alone and accepted nothing: it seems to refuse"
                        " everything (is REMOTE_WRITE_URL right?); refused requests are dropped whole, not split,"
                        " until one is accepted",
                        where,
                        REFUSE_ALL_SAMPLES,
                    )
            self.store.drop(payload, REJECTED, f"receiver {where} refused {what} for good: {attempt.detail}")
        else:
            self.health.retrying(attempt.detail, unanswered=attempt.unanswered)
            if self._failing_since is None:
                self._failing_since = self._clock()
            if attempt.verdict is Verdict.AUTH:
                self.health.credentials_refused(attempt.detail)
                self._auth_problems.report(
                    "refusals of the credentials",
                    f"receiver {where} refuses the client's credentials ({attempt.detail}): nothing is dropped,"
                    f" {len(self.store)} requests are kept and the oldest is retried every {self.backoff.cap_s:g}s"
                    f" (RETRY_MAX_S) while the buffer's bounds hold; {AUTH_FIX}",
                )
                return
            self._problems.report(
                "failed pushes",
                f"push to {where} failed, will retry (attempt {payload.attempts}, {len(self.store)} payloads"
                f" buffered): {attempt.detail}",
            )

    def _split(self, payload: Payload, attempt: Attempt, where: str) -> bool:
        """Replace a refused request by its halves; False when it holds a single sample (or cannot be taken
        apart, or the receiver refuses everything): then it is dropped."""
        if self._alone_refused >= REFUSE_ALL_SAMPLES:
            return False
        try:
            parts = halves(payload)
        except Exception:  # noqa: BLE001 - a body that does not decode cannot be split
            return False
        if len(parts) < 2:
            return False
        self._splits.report(
            "split requests",
            f"receiver {where} refused a request of {sum(p.samples + p.self_samples for p in parts)} samples"
            f" ({attempt.detail}): sending it in halves to find the samples it refuses",
        )
        self.store.replace(payload, parts)
        return True


def _what(payload: Payload) -> str:
    """The refused request for the log: its size, or the sample itself when it is a single one."""
    total = payload.samples + payload.self_samples
    if total == 1 and payload.body:
        try:
            ((key, ts, value),) = iter_samples(decode(payload.body))
        except Exception:  # noqa: BLE001 - more than one sample after all, or a body that does not decode
            pass
        else:
            return f"the sample {series_text(key)} {value!r} @ {ts}"
    return f"a request of {total} samples ({payload.series} series)"


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
