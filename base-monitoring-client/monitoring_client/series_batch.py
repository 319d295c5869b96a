"""Series batches: the fast path of the record contract, one series with many samples in one queue item.

A record dict carries its metric name and labels with every sample, so the batcher validates, looks up
and orders each sample on its own. An implementation that produces the same few series over and over may
hand on a :class:`SeriesBatch` instead (``metric``, ``labels``, ``timestamps``, ``values``: one series,
many samples), alone or in a list (records and batches may share a list). The batcher then does per
series what it does per record:

* the series key is the one ``RecordNormalizer.normalize`` built for these metric and labels (its cache);
* the run is taken whole when ``RecordNormalizer.accepts_run`` says ``normalize`` would take every sample
  as it is, the timestamps increase strictly, and ``OrderingGuard.accept_run`` finds the first after the
  series' last accepted one;
* otherwise (a series not seen yet, a bad name or label, a value or timestamp that is not valid, any
  sample out of order) the batch goes through the record path sample by sample (:meth:`SeriesBatch.records`),
  so every rule, drop reason and log line is the record path's own, and nothing is validated in two ways.

Values should be floats and timestamps integer milliseconds (ints or other numbers take the record path,
where they are converted or dropped as for records). A batch is read when the batcher takes it: do not
change its lists after the put (sharing one timestamps list between the series of a zone is fine).

:class:`SeriesBuffer` collects an implementation's samples of a fixed set of series between two takes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from operator import lt
from typing import Any

from monitoring_client.ordering import OrderingGuard
from monitoring_client.records import RecordNormalizer, SeriesKey

Record = dict[str, object]


@dataclass
class SeriesSamples:
    """One series' samples in arrival order, as the batcher groups them for the encoder (parallel lists:
    cheaper than a list of tuples)."""

    timestamps: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.timestamps)


class SeriesBatch:
    """One series (``metric``, ``labels``) and its samples: ``timestamps[i]`` (ms) with ``values[i]``."""

    __slots__ = ("labels", "metric", "timestamps", "values")

    def __init__(
        self, metric: str, labels: Mapping[str, str], timestamps: Sequence[int], values: Sequence[float]
    ) -> None:
        self.metric = metric
        self.labels = labels
        self.timestamps = timestamps
        self.values = values

    @property
    def size(self) -> int:
        """Samples in the batch (a timestamp without a value, or the reverse, counts as one)."""
        return max(len(self.timestamps), len(self.values))

    def records(self) -> list[Record]:
        """The same samples as record dicts; a timestamp or value without its partner becomes a record that
        lacks the other key (dropped by the batcher as ``missing_key``)."""
        out: list[Record] = [
            {"metric": self.metric, "labels": self.labels, "value": v, "timestamp_ms": t}
            for t, v in zip(self.timestamps, self.values, strict=False)
        ]
        n = len(out)
        out += [{"metric": self.metric, "labels": self.labels, "timestamp_ms": t} for t in self.timestamps[n:]]
        out += [{"metric": self.metric, "labels": self.labels, "value": v} for v in self.values[n:]]
        return out

    def __repr__(self) -> str:
        return f"SeriesBatch({self.metric!r}, {dict(self.labels)!r}, {self.size} samples)"


def samples_in(item: object) -> int:
    """The samples a queue item holds: a record counts one, a batch its size, a list the sum of its items."""
    if type(item) is SeriesBatch:
        return item.size
    if not isinstance(item, (list, tuple)):
        return 1
    if SeriesBatch not in map(type, item):  # lists of records only: no loop in Python
        return len(item)
    return sum(x.size if type(x) is SeriesBatch else 1 for x in item)


def as_records(items: Sequence[Any]) -> list[Any]:
    """Queue items (records, batches, lists of them) as one flat list of records, for tests and tools."""
    out: list[Any] = []
    for item in items:
        for one in item if isinstance(item, (list, tuple)) else (item,):
            if type(one) is SeriesBatch:
                out += one.records()
            else:
                out.append(one)
    return out


def group_batch(
    batch: SeriesBatch, normalizer: RecordNormalizer, guard: OrderingGuard, groups: dict[SeriesKey, SeriesSamples]
) -> int:
    """Add the whole batch to ``groups`` when every sample passes (see the module's description); return the
    samples added, or 0 when the caller must pass the batch through the record path instead."""
    timestamps, values = batch.timestamps, batch.values
    if not timestamps or len(timestamps) != len(values):
        return 0
    key = normalizer.cached_key(batch.metric, batch.labels)
    if (
        key is None
        or not all(map(lt, timestamps, islice(timestamps, 1, None)))
        or not normalizer.accepts_run(timestamps, values)
        or not guard.accept_run(key, timestamps[0], timestamps[-1])
    ):
        return 0
    samples = groups.get(key)
    if samples is None:
        groups[key] = SeriesSamples(list(timestamps), list(values))
    else:
        samples.timestamps += timestamps
        samples.values += values
    return len(timestamps)


class SeriesBuffer:
    """Samples of a fixed set of series, collected between two :meth:`take` calls.

    ``groups`` lists the series as groups of ``(metric, labels)`` whose samples always come together (the
    power and energy series of a zone, say): a group shares one list of timestamps. Between takes an
    implementation appends to ``stamps[g]`` (group ``g``'s timestamps) and ``values[g][j]`` (the values of
    its ``j``-th series) directly, which is cheaper than a call per sample; :meth:`take` hands the
    non-empty groups on as batches and starts new lists (fetch ``stamps`` and ``values`` again after it).
    """

    __slots__ = ("_groups", "stamps", "values")

    def __init__(self, groups: Sequence[Sequence[tuple[str, Mapping[str, str]]]]) -> None:
        self._groups = [tuple(group) for group in groups]
        self.stamps: list[list[int]] = []
        self.values: list[list[list[float]]] = []
        self._fresh()

    def _fresh(self) -> None:
        self.stamps = [[] for _ in self._groups]
        self.values = [[[] for _ in group] for group in self._groups]

    def take(self) -> list[SeriesBatch]:
        """The samples since the last take, one batch per series that has any."""
        out = [
            SeriesBatch(metric, labels, stamps, series_values)
            for group, stamps, group_values in zip(self._groups, self.stamps, self.values, strict=True)
            if stamps
            for (metric, labels), series_values in zip(group, group_values, strict=True)
        ]
        self._fresh()
        return out
