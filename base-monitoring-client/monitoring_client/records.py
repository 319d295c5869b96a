"""Turn an implementation's records into (series, timestamp, value), dropping the ones Prometheus would not
accept, with a reason.

A record is ``{"metric": str, "labels": dict[str, str], "value": float, "timestamp_ms": int}``. Anything
else is dropped here, counted by reason, never sent: Prometheus silently skips series with invalid names
and rejects the whole request for some other mistakes, so letting a bad record through could cost good
ones. The series key is the sorted tuple of label pairs (``__name__`` included, plus the external labels
``source`` and ``host`` when the record lacks them): the encoder writes it as-is and the ordering guard
uses it as its dictionary key. Keys are cached per (metric, labels) so a steady stream of the same series
costs one dictionary lookup per record instead of a validation and a sort; the cache forgets the least
recently seen series beyond its bound (``bounded.Generations``), so label churn cannot grow memory forever.

Timestamps must be milliseconds (2000 to 2100: anything else is seconds or nanoseconds by mistake) and,
once the pipeline sets a window (``set_window``, from MAX_SAMPLE_AGE_S and MAX_SAMPLE_AHEAD_S around the
client's clock), within it: a sample stamped years ahead would move a Prometheus' storage window into the
future and make it refuse every later request, and one older than the receiver accepts would make it
refuse the whole request it is in.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from monitoring_client.bounded import Generations

SeriesKey = tuple[tuple[str, str], ...]

# Drop reasons (label values of monitoring_client_samples_dropped_total).
NOT_A_DICT = "not_a_dict"
MISSING_KEY = "missing_key"
BAD_METRIC_NAME = "bad_metric_name"
BAD_LABEL_NAME = "bad_label_name"
BAD_LABEL_VALUE = "bad_label_value"
BAD_VALUE = "bad_value"
BAD_TIMESTAMP = "bad_timestamp"
OUT_OF_ORDER = "out_of_order"
BUFFER_FULL = "buffer_full"
REJECTED = "rejected"
SHUTDOWN_TIMEOUT = "shutdown_timeout"
EXPIRED = "expired"  # spooled longer than SPOOL_MAX_AGE_S
CORRUPT = "corrupt"  # a spool file that could not be read back
TOO_OLD = "too_old"  # older than MAX_SAMPLE_AGE_S: the receiver would refuse it
TOO_FAR_AHEAD = "too_far_ahead"  # stamped more than MAX_SAMPLE_AHEAD_S after the client's clock
ABORTED = "aborted"  # not sent because a second SIGTERM/SIGINT stopped the client at once
DROP_REASONS = (
    NOT_A_DICT,
    MISSING_KEY,
    BAD_METRIC_NAME,
    BAD_LABEL_NAME,
    BAD_LABEL_VALUE,
    BAD_VALUE,
    BAD_TIMESTAMP,
    TOO_OLD,
    TOO_FAR_AHEAD,
    OUT_OF_ORDER,
    BUFFER_FULL,
    REJECTED,
    SHUTDOWN_TIMEOUT,
    ABORTED,
    EXPIRED,
    CORRUPT,
)

REQUIRED_KEYS = ("metric", "labels", "value", "timestamp_ms")
METRIC_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

# Plausible millisecond timestamps: 2000-01-01 .. 2100-01-01. Outside this range the implementation almost
# certainly sent seconds, microseconds or nanoseconds, and Prometheus would refuse the whole request.
MIN_TIMESTAMP_MS = 946_684_800_000
MAX_TIMESTAMP_MS = 4_102_444_800_000

DropCallback = Callable[[str, str], None]

_FLOAT = {float}
_INT = {int}


class RecordNormalizer:
    """Validate records and build their series keys; report every drop through ``on_drop(reason, detail)``."""

    def __init__(
        self,
        external_labels: Mapping[str, str],
        on_drop: DropCallback,
        *,
        max_cached_series: int = 10_000,
    ) -> None:
        self._external = dict(external_labels)
        self._on_drop = on_drop
        self._keys: Generations[tuple[str, tuple[tuple[Any, Any], ...]], SeriesKey] = Generations(max_cached_series)
        # Accepted timestamps: [_min_ms, _max_ms). The pipeline narrows it around its clock (set_window).
        self._min_ms = MIN_TIMESTAMP_MS
        self._max_ms = MAX_TIMESTAMP_MS
        self._oldest_text = ""
        self._ahead_text = ""

    def set_window(self, min_ms: int, max_ms: int, oldest_text: str = "", ahead_text: str = "") -> None:
        """Accept only timestamps in ``[min_ms, max_ms)`` from now on (never outside 2000 to 2100); the texts
        name the settings for the drop messages."""
        self._min_ms = max(min_ms, MIN_TIMESTAMP_MS)
        self._max_ms = min(max_ms, MAX_TIMESTAMP_MS)
        self._oldest_text = oldest_text
        self._ahead_text = ahead_text

    def normalize(self, record: object) -> tuple[SeriesKey, int, float] | None:
        """The record as (series key, timestamp in ms, value), or None after reporting why it was dropped."""
        if not isinstance(record, dict):
            self._on_drop(NOT_A_DICT, f"expected a dict record, got {type(record).__name__}: {_short(record)}")
            return None
        try:
            metric = record["metric"]
            labels = record["labels"]
            value = record["value"]
            timestamp = record["timestamp_ms"]
        except KeyError:
            missing = [k for k in REQUIRED_KEYS if k not in record]
            self._on_drop(MISSING_KEY, f"record lacks {', '.join(missing)}: {_short(record)}")
            return None

        if type(value) is not float:
            try:
                if not isinstance(value, numbers.Real):
                    raise TypeError
                value = float(value)
            except (TypeError, ValueError, OverflowError):
                self._on_drop(BAD_VALUE, f"value must be a number, got {_short(value)} in {_short(record)}")
                return None

        if type(timestamp) is not int:
            if (
                isinstance(timestamp, numbers.Integral)
                and not isinstance(timestamp, bool)
                or isinstance(timestamp, float)
                and math.isfinite(timestamp)
                and timestamp.is_integer()
            ):
                timestamp = int(timestamp)
            else:
                self._on_drop(
                    BAD_TIMESTAMP,
                    f"timestamp_ms must be an integer, got {_short(timestamp)} in {_short(record)}",
                )
                return None
        if not self._min_ms <= timestamp < self._max_ms:
            self._refuse_timestamp(timestamp, record)
            return None

        keys = self._keys
        try:
            cache_key = (metric, tuple(labels.items()))
            key = keys.current.get(cache_key)
            if key is None:
                key = keys.recall(cache_key)
        except (AttributeError, TypeError):  # labels not a dict, or unhashable label values
            cache_key, key = None, None
        if key is None:
            key = self._build_key(metric, labels, record)
            if key is None:
                return None
            if cache_key is not None:
                keys.put(cache_key, key)
        return key, timestamp, value

    def cached_key(self, metric: str, labels: Mapping[str, str]) -> SeriesKey | None:
        """The key ``normalize`` built for records of this metric and these labels, while it is cached."""
        try:
            return self._keys.get((metric, tuple(labels.items())))
        except (AttributeError, TypeError):
            return None

    def accepts_run(self, timestamps: Sequence[int], values: Sequence[float]) -> bool:
        """True when ``normalize`` would take each of these samples as it is: float values, integer timestamps
        in the accepted window (``set_window``); the timestamps increase, so only the first and the last are
        compared with it.

        The fast path of series batches (``series_batch``): a rule ``normalize`` applies to a value or a
        timestamp belongs here too, or such batches must fail here and take the record path."""
        return (
            set(map(type, values)) == _FLOAT
            and set(map(type, timestamps)) == _INT
            and self._min_ms <= timestamps[0]
            and timestamps[-1] < self._max_ms
        )

    def _refuse_timestamp(self, timestamp: int, record: object) -> None:
        if not MIN_TIMESTAMP_MS <= timestamp < MAX_TIMESTAMP_MS:
            self._on_drop(
                BAD_TIMESTAMP,
                f"timestamp_ms={timestamp} is not milliseconds since 1970 between 2000 and 2100"
                f" (seconds or nanoseconds?) in {_short(record)}",
            )
        elif timestamp < self._min_ms:
            self._on_drop(
                TOO_OLD,
                f"timestamp_ms={timestamp} is older than {self._oldest_text or self._min_ms} in {_short(record)}",
            )
        else:
            self._on_drop(
                TOO_FAR_AHEAD,
                f"timestamp_ms={timestamp} is further ahead of the client's clock than"
                f" {self._ahead_text or self._max_ms} in {_short(record)}",
            )

    def series_key(self, metric: str, labels: Mapping[str, str]) -> SeriesKey | None:
        """The key for trusted input (self-metrics) through the same rules; None if invalid."""
        return self._build_key(metric, labels, {"metric": metric, "labels": labels})

    def _build_key(self, metric: object, labels: object, record: object) -> SeriesKey | None:
        if not isinstance(metric, str) or not METRIC_NAME_RE.match(metric):
            self._on_drop(
                BAD_METRIC_NAME,
                f"metric name {_short(metric)} does not match [a-zA-Z_:][a-zA-Z0-9_:]* in {_short(record)}",
            )
            return None
        if not isinstance(labels, Mapping):
            self._on_drop(BAD_LABEL_NAME, f"labels must be a dict, got {_short(labels)} in {_short(record)}")
            return None
        pairs: dict[str, str] = {"__name__": metric}
        for name, value in labels.items():
            if not isinstance(name, str) or not LABEL_NAME_RE.match(name) or name.startswith("__"):
                self._on_drop(
                    BAD_LABEL_NAME,
                    f"label name {_short(name)} does not match [a-zA-Z_][a-zA-Z0-9_]* or starts with __"
                    f" in {_short(record)}",
                )
                return None
            if not isinstance(value, str) or not _encodable(value):
                self._on_drop(
                    BAD_LABEL_VALUE, f"label {name} must be a UTF-8 string, got {_short(value)} in {_short(record)}"
                )
                return None
            if value:  # an empty value means "no such label" in Prometheus
                pairs[name] = value
        for name, value in self._external.items():
            pairs.setdefault(name, value)
        return tuple(sorted(pairs.items()))


def series_text(key: SeriesKey) -> str:
    """A series as PromQL would write it: ``name{label="value",...}`` (for log lines)."""
    labels = dict(key)
    name = labels.pop("__name__", "")
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _short(obj: object, limit: int = 160) -> str:
    text = repr(obj)
    return text if len(text) <= limit else text[: limit - 3] + "..."
