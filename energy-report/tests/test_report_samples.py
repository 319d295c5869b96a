"""Chunked raw-sample fetching: no sample lost or doubled at chunk edges, sizes adapt, limits are obeyed.

The server here is a stand-in that evaluates ``selector[d]`` at time ``t`` over an in-memory series the way
Prometheus 2.x does (closed range ``[t-d, t]``) and refuses queries that would return too many samples,
as ``--query.max-samples`` does. It is a unit test of the chunking logic; the real servers are in the
integration tests.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from energy_report.samples import fetch_span, iter_chunks
from energy_report.server import QueryLimitError


class StandIn:
    def __init__(self, times_ms: list[int], limit: int) -> None:
        self.times_ms = times_ms
        self.limit = limit
        self.calls: list[tuple[int, int]] = []
        self.url = "stand-in"

    def query(self, promql: str, at: float) -> dict[str, Any]:
        match = re.search(r"\[(\d+)(ms|s)\]$", promql)
        assert match, promql
        span = int(match.group(1)) * (1 if match.group(2) == "ms" else 1000)
        hi = round(at * 1000)
        lo = hi - span
        self.calls.append((lo, hi))
        values = [[t / 1000, str(t)] for t in self.times_ms if lo <= t <= hi]
        if len(values) > self.limit:
            raise QueryLimitError("query processing would load too many samples into memory")
        return {"resultType": "matrix", "result": [{"metric": {"__name__": "m"}, "values": values}] if values else []}


def test_chunks_cover_the_span_exactly_once_and_adapt_to_the_target() -> None:
    times = list(range(0, 600_000, 100))  # 10 Hz for 10 minutes, samples exactly on chunk edges too
    server = StandIn(times, limit=10**9)
    got: list[int] = []
    chunks = list(iter_chunks(server, "m", 0, 600_000, target_samples=500))  # type: ignore[arg-type]
    for chunk in chunks:
        for samples in chunk.series.values():
            got.extend(t for t, _ in samples)
    assert got == [t for t in times if 0 < t <= 600_000]
    assert [c.lo_ms for c in chunks[1:]] == [c.hi_ms for c in chunks[:-1]]
    assert chunks[0].hi_ms - chunks[0].lo_ms == 1000  # the first chunk learns the rate
    assert all(c.count() <= 520 for c in chunks) and sum(c.count() >= 450 for c in chunks) >= len(chunks) - 2


def test_a_chunk_the_server_refuses_is_halved_until_it_fits() -> None:
    times = list(range(0, 100_000, 10))  # 100 Hz
    server = StandIn(times, limit=300)
    chunks = list(iter_chunks(server, "m", 0, 100_000, target_samples=10_000))  # type: ignore[arg-type]
    assert sum(c.count() for c in chunks) == len(times) - 1
    assert all(c.count() <= 300 for c in chunks)
    refused = [hi - lo for lo, hi in server.calls if sum(1 for t in times if lo <= t <= hi) > 300]
    assert refused  # the target asked for too much and the server said so


def test_a_server_that_refuses_even_tiny_chunks_is_reported() -> None:
    server = StandIn(list(range(0, 1000)), limit=0)
    with pytest.raises(QueryLimitError):
        list(iter_chunks(server, "m", 0, 1000))  # type: ignore[arg-type]


def test_fetch_span_drops_the_left_edge_sample_and_sorts() -> None:
    server = StandIn([1000, 2000, 3000], limit=10)
    chunk = fetch_span(server, "m", 1000, 3000)  # type: ignore[arg-type]
    assert [t for t, _ in chunk.series[(("__name__", "m"),)]] == [2000, 3000]
