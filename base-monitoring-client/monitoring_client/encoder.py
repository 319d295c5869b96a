"""Encode grouped samples as remote-write 1.0 requests: protobuf WriteRequest, snappy block format.

Requests are bounded twice: by sample count (``max_samples``) and by uncompressed size (``max_bytes``),
because receivers limit both and a retry of a huge request is expensive. A series whose samples do not
fit is continued in the next request; since requests are sent strictly in order, its timestamps still
increase across requests. The size bound is checked with a conservative per-sample and per-label upper
bound, so no request ever exceeds it (a single series whose labels alone exceed it is sent on its own).

Speed matters (the pipeline encodes every sample once): samples are grouped by series before they get
here, and the wire format is written directly rather than through protobuf message objects: a series'
labels are encoded once and kept, and a sample is one ``struct.pack``. Timestamps between 1971 and 2109
(every valid one) are 6-byte varints, so their bytes come from a small table and one cached upper part;
others take the general varint path. The bytes are a valid ``WriteRequest`` that protobuf decodes
(``decode`` below), only a zero value is written rather than left out.
"""

from __future__ import annotations

import struct
import sys
import time
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import snappy

from monitoring_client.bounded import Generations
from monitoring_client.records import SeriesKey
from monitoring_client.series_batch import SeriesSamples as SeriesSamples  # the encoder's input, grouped

if TYPE_CHECKING:
    from monitoring_client import remote_pb2

# Upper bound of one encoded Sample inside a TimeSeries: field tag (1) + length (1) + double (1 + 8)
# + timestamp (1 + up to 10 varint bytes).
SAMPLE_BYTES_MAX = 22
# Upper bound of a TimeSeries' own framing inside the WriteRequest: tag (1) + length varint (up to 5).
SERIES_OVERHEAD_MAX = 6

# Field tags (field number << 3 | wire type) of the remote-write messages.
_TIMESERIES = 0x0A  # WriteRequest.timeseries = 1, length-delimited
_LABEL = 0x0A  # TimeSeries.labels = 1
_SAMPLE = 0x12  # TimeSeries.samples = 2
_NAME = 0x0A  # Label.name = 1
_VALUE = 0x12  # Label.value = 2
_SAMPLE_VALUE = 0x09  # Sample.value = 1, 64-bit
_SAMPLE_TS = 0x10  # Sample.timestamp = 2, varint

# Timestamps in [2**35, 2**42) ms are exactly 6 varint bytes: a sample is then 18 fixed-size bytes.
_TS6_MIN = 1 << 35
_TS6_END = 1 << 42
# Sample tag, length 16, value tag, the double, timestamp tag, varint bytes 0-1 (from the low 14 bits,
# through _LOW14) and 2-5 (from the rest, computed once per 16 s of timestamps).
_SAMPLE6 = struct.Struct("<BBBdBHI")


def _low14_table() -> array[int]:
    """Varint bytes 0-1 of every 14-bit value as a little-endian u16 (byte 0: the low 7 bits, byte 1: the
    next 7, each with the continuation bit), built with slice assignments rather than 16,384 steps of
    Python: it is made at every start."""
    pairs = bytearray(1 << 15)
    pairs[0::2] = bytes(range(0x80, 0x100)) * 128
    pairs[1::2] = b"".join(bytes((high,)) * 128 for high in range(0x80, 0x100))
    table = array("H")
    table.frombytes(pairs)
    if sys.byteorder == "big":
        table.byteswap()
    return table


_LOW14 = _low14_table()
_SAMPLE_HEAD = struct.Struct("<BBBd")


def _high28(h: int) -> int:
    """Varint bytes 2-5 of a 6-byte varint whose value is ``h << 14 | low``, as a little-endian u32."""
    return (
        (h & 0x7F) | 0x80 | ((((h >> 7) & 0x7F) | 0x80) << 8) | ((((h >> 14) & 0x7F) | 0x80) << 16) | ((h >> 21) << 24)
    )


def varint(n: int) -> bytes:
    """Protobuf base-128 varint of ``n`` (negative numbers as their 64-bit two's complement, like int64)."""
    n &= 0xFFFFFFFFFFFFFFFF
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: int, data: bytes) -> bytes:
    return bytes((tag,)) + varint(len(data)) + data


def encode_labels(key: SeriesKey) -> bytes:
    """The ``labels`` fields of a TimeSeries for ``key`` (in the key's order)."""
    return b"".join(
        _field(_LABEL, _field(_NAME, name.encode("utf-8")) + _field(_VALUE, value.encode("utf-8")))
        for name, value in key
    )


def encode_samples(timestamps: Sequence[int], values: Sequence[float]) -> bytes:
    """The ``samples`` fields of a TimeSeries (timestamps and values of equal length, in order)."""
    if not timestamps:
        return b""
    if min(timestamps) >= _TS6_MIN and max(timestamps) < _TS6_END:
        pack, low14 = _SAMPLE6.pack, _LOW14
        parts = []
        high_of, high = -1, 0
        for ts, value in zip(timestamps, values, strict=True):
            h = ts >> 14
            if h != high_of:
                high_of, high = h, _high28(h)
            parts.append(pack(_SAMPLE, 16, _SAMPLE_VALUE, value, _SAMPLE_TS, low14[ts & 0x3FFF], high))
        return b"".join(parts)
    head = _SAMPLE_HEAD.pack
    out = []
    for ts, value in zip(timestamps, values, strict=True):
        ts_bytes = varint(ts)
        out.append(head(_SAMPLE, 10 + len(ts_bytes), _SAMPLE_VALUE, value) + bytes((_SAMPLE_TS,)) + ts_bytes)
    return b"".join(out)


Groups = Mapping[SeriesKey, SeriesSamples]


@dataclass
class Payload:
    """One encoded request, ready to POST as-is (and to retry as-is).

    ``samples`` counts the implementation's samples, ``self_samples`` the client's own metrics: only the
    former are reported as sent/dropped, so the client's accounting of its user's data stays exact.
    """

    body: bytes
    samples: int
    self_samples: int
    series: int
    uncompressed_bytes: int
    created: float = field(default_factory=time.monotonic)
    attempts: int = 0
    # True once an attempt failed in a way that leaves open whether the receiver stored it (no answer).
    maybe_stored: bool = False
    # Timestamp of its oldest sample (0: unknown), so that a request too old for the receiver is noticed
    # without decoding it.
    oldest_ms: int = 0

    @property
    def nbytes(self) -> int:
        return len(self.body)


def labels_size(key: SeriesKey) -> int:
    """Upper bound of the encoded size of a series' labels."""
    total = 0
    for name, value in key:
        n = len(name.encode("utf-8"))
        v = len(value.encode("utf-8"))
        total += 2 + 5 + n + 5 + v + 6  # label tag+len, name tag+len, value tag+len (varints <= 5 bytes)
    return total


class Encoder:
    """Turns groups of samples into size-bounded, snappy-compressed WriteRequests."""

    def __init__(
        self,
        max_samples: int = 2000,
        max_bytes: int = 4 * 1024 * 1024,
        *,
        compress: Callable[[bytes], bytes] = snappy.compress,
        max_series: int = 10_000,
    ) -> None:
        if max_samples < 1 or max_bytes < 1:
            raise ValueError("max_samples and max_bytes must be positive")
        self.max_samples = max_samples
        self.max_bytes = max_bytes
        self._compress = compress
        # Bounded like every per-series memory of the client (label churn must not grow it forever).
        self._label_cache: Generations[SeriesKey, tuple[bytes, int]] = Generations(max_series)

    def encode(self, groups: Groups, self_groups: Groups | None = None) -> list[Payload]:
        """All samples of ``groups`` (then ``self_groups``) as a list of payloads, in order."""
        items: list[tuple[SeriesKey, SeriesSamples, bool]] = [(k, s, False) for k, s in groups.items() if len(s)]
        if self_groups:
            items.extend((k, s, True) for k, s in self_groups.items() if len(s))
        return self._encode_items(items)

    def _labels(self, key: SeriesKey) -> tuple[bytes, int]:
        """The series' encoded labels and the size bound its framing is checked against (both cached)."""
        cache = self._label_cache
        got = cache.current.get(key)
        if got is None:
            got = cache.recall(key)
            if got is None:
                got = (encode_labels(key), SERIES_OVERHEAD_MAX + labels_size(key))
                cache.put(key, got)
        return got

    def _encode_items(self, items: Sequence[tuple[SeriesKey, SeriesSamples, bool]]) -> list[Payload]:
        payloads: list[Payload] = []
        parts: list[bytes] = []
        n_samples = n_self = n_series = 0
        est_bytes = 0
        oldest = 0

        def finish() -> None:
            nonlocal parts, n_samples, n_self, n_series, est_bytes, oldest
            raw = b"".join(parts)
            payloads.append(
                Payload(
                    body=self._compress(raw),
                    samples=n_samples - n_self,
                    self_samples=n_self,
                    series=n_series,
                    uncompressed_bytes=len(raw),
                    oldest_ms=oldest,
                )
            )
            parts = []
            n_samples = n_self = n_series = 0
            est_bytes = 0
            oldest = 0

        for key, samples, is_self in items:
            labels, overhead = self._labels(key)
            timestamps, values = samples.timestamps, samples.values
            start, end = 0, len(timestamps)
            while start < end:
                room_samples = self.max_samples - n_samples
                room_bytes = (self.max_bytes - est_bytes - overhead) // SAMPLE_BYTES_MAX
                take = min(end - start, room_samples, room_bytes)
                if take <= 0:
                    if n_samples:
                        finish()
                        continue
                    take = 1  # labels alone exceed the bound: send this series one sample at a time
                stop = start + take
                if not oldest or timestamps[start] < oldest:  # a series' timestamps increase
                    oldest = timestamps[start]
                if start == 0 and stop == end:
                    body = labels + encode_samples(timestamps, values)
                else:
                    body = labels + encode_samples(timestamps[start:stop], values[start:stop])
                parts.append(_field(_TIMESERIES, body))
                n_samples += take
                n_series += 1
                if is_self:
                    n_self += take
                est_bytes += overhead + take * SAMPLE_BYTES_MAX
                start = stop
        if n_samples:
            finish()
        return payloads


def decode(body: bytes) -> remote_pb2.WriteRequest:
    """Inverse of the encoding (for tests, tools and debugging): snappy block, then protobuf (imported here:
    the client itself never needs it)."""
    from monitoring_client import remote_pb2

    request = remote_pb2.WriteRequest()
    request.ParseFromString(snappy.uncompress(body))
    return request


def iter_samples(request: remote_pb2.WriteRequest) -> Iterable[tuple[SeriesKey, int, float]]:
    """Every (labels, timestamp, value) of a decoded request, in wire order."""
    for series in request.timeseries:
        key = tuple((label.name, label.value) for label in series.labels)
        for sample in series.samples:
            yield key, sample.timestamp, sample.value
