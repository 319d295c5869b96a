"""Raw samples exactly as stored, fetched in chunks the server accepts.

Range queries are evaluated at steps (and capped at about 11,000 points per series), so they resample: raw
samples come from instant queries of range selectors, ``selector[d]`` evaluated at the chunk's end, which
return every stored sample in that span. A chunk is the half-open span ``(lo, hi]`` in whole
milliseconds (the stores' resolution), so chunks never overlap or leave a hole whichever way a server
treats the range's left edge. The chunk length adapts to the data: the first chunk is a second long (to learn
the rate), each next one is sized to hold about ``target_samples``, and a chunk the server refuses as too
large is halved and asked again. Memory therefore stays bounded whatever the window's length.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from energy_report.contract import SeriesKey, series_key
from energy_report.server import PromServer, QueryLimitError
from energy_report.timeparse import promql_duration

DEFAULT_TARGET_SAMPLES = 50_000
MIN_CHUNK_MS = 10
MAX_CHUNK_MS = 7 * 86400 * 1000


@dataclass
class Chunk:
    """Every sample of every matching series in ``(lo_ms, hi_ms]``; values as the server printed them."""

    lo_ms: int
    hi_ms: int
    series: dict[SeriesKey, list[tuple[int, str]]]

    def count(self) -> int:
        return sum(len(v) for v in self.series.values())


def to_ms(seconds: float) -> int:
    return int(round(seconds * 1000))


def fetch_span(server: PromServer, selector: str, lo_ms: int, hi_ms: int) -> Chunk:
    """One query: the samples of ``selector`` with ``lo_ms < t <= hi_ms``, per series in time order (as the
    query API returns them)."""
    data = server.query(f"{selector}[{promql_duration((hi_ms - lo_ms) / 1000)}]", hi_ms / 1000)
    out: dict[SeriesKey, list[tuple[int, str]]] = {}
    if data.get("resultType") != "matrix":
        return Chunk(lo_ms, hi_ms, out)
    for item in data.get("result", []):
        pairs = [(round(float(ts) * 1000), value) for ts, value in item.get("values", ())]
        samples = [(t, str(v)) for t, v in pairs if lo_ms < t <= hi_ms]
        if samples:
            out[series_key(item["metric"])] = samples
    return Chunk(lo_ms, hi_ms, out)


def iter_chunks(
    server: PromServer,
    selector: str,
    lo_ms: int,
    hi_ms: int,
    *,
    target_samples: int = DEFAULT_TARGET_SAMPLES,
    first_chunk_ms: int = 1_000,
    on_chunk: Callable[[Chunk], None] | None = None,
) -> Iterator[Chunk]:
    """Chunks covering ``(lo_ms, hi_ms]`` in time order, each sized to hold about ``target_samples``."""
    t = lo_ms
    length = max(MIN_CHUNK_MS, first_chunk_ms)
    while t < hi_ms:
        end = min(hi_ms, t + length)
        try:
            chunk = fetch_span(server, selector, t, end)
        except QueryLimitError:
            if end - t <= MIN_CHUNK_MS:
                raise
            length = max(MIN_CHUNK_MS, (end - t) // 2)
            continue
        if on_chunk is not None:
            on_chunk(chunk)
        yield chunk
        n = chunk.count()
        span = end - t
        if n > 0:
            length = int(span * target_samples / n)
        else:
            length = span * 4
        length = min(MAX_CHUNK_MS, max(MIN_CHUNK_MS, length))
        t = end
