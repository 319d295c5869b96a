"""Encode grouped samples as remote-write 1.0 requests: protobuf WriteRequest, snappy block format.

Requests are bounded twice: by sample count (``max_samples``) and by uncompressed size (``max_bytes``),
because receivers limit both and a retry of a huge request is expensive. A series whose samples do not
fit is continued in the next request; since requests are sent strictly in order, its timestamps still
increase across requests. The size bound is checked with a conservative per-sample and per-label upper
bound, so no request ever exceeds it (a single series whose labels alone exceed it is sent on its own).

Speed matters (the pipeline encodes every sample once): samples are grouped by series before they get
here, labels are written once per series per request, and each sample costs one protobuf ``add``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import snappy

from monitoring_client import remote_pb2
from monitoring_client.records import SeriesKey

# Upper bound of one encoded Sample inside a TimeSeries: field tag (1) + length (1) + double (1 + 8)
# + timestamp (1 + up to 10 varint bytes).
SAMPLE_BYTES_MAX = 22
# Upper bound of a TimeSeries' own framing inside the WriteRequest: tag (1) + length varint (up to 5).
SERIES_OVERHEAD_MAX = 6


@dataclass
class SeriesSamples:
    """One series' samples in arrival order (parallel lists: cheaper than a list of tuples)."""

    timestamps: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.timestamps)


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
    ) -> None:
        if max_samples < 1 or max_bytes < 1:
            raise ValueError("max_samples and max_bytes must be positive")
        self.max_samples = max_samples
        self.max_bytes = max_bytes
        self._compress = compress
        self._label_sizes: dict[SeriesKey, int] = {}

    def encode(self, groups: Groups, self_groups: Groups | None = None) -> list[Payload]:
        """All samples of ``groups`` (then ``self_groups``) as a list of payloads, in order."""
        items: list[tuple[SeriesKey, SeriesSamples, bool]] = [(k, s, False) for k, s in groups.items() if len(s)]
        if self_groups:
            items.extend((k, s, True) for k, s in self_groups.items() if len(s))
        return self._encode_items(items)

    def _label_size(self, key: SeriesKey) -> int:
        size = self._label_sizes.get(key)
        if size is None:
            if len(self._label_sizes) > 50_000:
                self._label_sizes.clear()
            size = self._label_sizes[key] = labels_size(key)
        return size

    def _encode_items(self, items: Sequence[tuple[SeriesKey, SeriesSamples, bool]]) -> list[Payload]:
        payloads: list[Payload] = []
        request = remote_pb2.WriteRequest()
        n_samples = n_self = n_series = 0
        est_bytes = 0

        def finish() -> None:
            nonlocal request, n_samples, n_self, n_series, est_bytes
            raw = request.SerializeToString()
            payloads.append(
                Payload(
                    body=self._compress(raw),
                    samples=n_samples - n_self,
                    self_samples=n_self,
                    series=n_series,
                    uncompressed_bytes=len(raw),
                )
            )
            request = remote_pb2.WriteRequest()
            n_samples = n_self = n_series = 0
            est_bytes = 0

        for key, samples, is_self in items:
            overhead = SERIES_OVERHEAD_MAX + self._label_size(key)
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
                series = request.timeseries.add()
                add_label = series.labels.add
                for name, value in key:
                    add_label(name=name, value=value)
                add_sample = series.samples.add
                stop = start + take
                for ts, val in zip(timestamps[start:stop], values[start:stop], strict=True):
                    add_sample(value=val, timestamp=ts)
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
    """Inverse of the encoding (for tests, tools and debugging): snappy block, then protobuf."""
    request = remote_pb2.WriteRequest()
    request.ParseFromString(snappy.uncompress(body))
    return request


def iter_samples(request: remote_pb2.WriteRequest) -> Iterable[tuple[SeriesKey, int, float]]:
    """Every (labels, timestamp, value) of a decoded request, in wire order."""
    for series in request.timeseries:
        key = tuple((label.name, label.value) for label in series.labels)
        for sample in series.samples:
            yield key, sample.timestamp, sample.value
