"""The query side of a Prometheus-compatible server, shared by every launcher (Prometheus, VictoriaMetrics).

A test counts what arrived by asking the server itself, through the same HTTP API a dashboard uses, with
the same credentials and CA a client would need. Raw samples come from instant queries of range selectors
(``m[1h] @ now``), which both Prometheus and VictoriaMetrics answer with every stored sample.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, TypeVar

import requests

from testkit.process import ManagedProcess

SeriesKey = tuple[tuple[str, str], ...]
S = TypeVar("S", bound="QueryServer")


def loopback_session(
    auth: tuple[str, str] | None = None,
    ca_file: Path | None = None,
    client_cert: tuple[Path, Path] | None = None,
) -> requests.Session:
    """A session for a server on 127.0.0.1: no proxy or CA bundle from the environment, the given
    credentials, CA and client certificate."""
    session = requests.Session()
    session.trust_env = False
    if auth is not None:
        session.auth = auth
    if ca_file is not None:
        session.verify = str(ca_file)
    if client_cert is not None:
        session.cert = (str(client_cert[0]), str(client_cert[1]))
    return session


class QueryApi:
    """``query``, ``raw_samples`` and ``count_samples`` against ``self.url`` through ``self.session``."""

    url: str
    session: requests.Session

    def before_query(self) -> None:
        """Make just-written samples visible (a no-op for Prometheus, which shows them at once)."""

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        """Instant query; returns ``data.result`` (raises on an API error so tests see the reason)."""
        self.before_query()
        params: dict[str, Any] = {"query": promql}
        if at is not None:
            params["time"] = at
        resp = self.session.get(f"{self.url}/api/v1/query", params=params, timeout=10)
        body = resp.json()
        if body.get("status") != "success":
            raise RuntimeError(f"query {promql!r} failed: {body.get('error', resp.text)}")
        return list(body["data"]["result"])

    def raw_samples(self, selector: str, window: str = "1h") -> dict[SeriesKey, list[tuple[int, float]]]:
        """Every stored sample of every series matching ``selector`` within ``window`` before now."""
        out: dict[SeriesKey, list[tuple[int, float]]] = {}
        for series in self.query(f"{selector}[{window}]", at=time.time() + 60):
            key = tuple(sorted(series["metric"].items()))
            out[key] = [(round(float(ts) * 1000), float(value)) for ts, value in series.get("values", [])]
        return out

    def count_samples(self, selector: str, window: str = "1h") -> int:
        return sum(len(v) for v in self.raw_samples(selector, window).values())


class QueryServer(QueryApi):
    """A server process this test started (``process``, stopped by its PID) that answers queries; a
    subclass builds the process and says when it is ready (``start``)."""

    process: ManagedProcess

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def start(self, timeout: float = 30) -> None:
        raise NotImplementedError

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM the process this object started (by PID), SIGKILL it if it will not go."""
        self.process.stop(timeout)

    def log_tail(self, lines: int = 30) -> str:
        return self.process.log_tail(lines)

    def __enter__(self: S) -> S:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.session.close()
