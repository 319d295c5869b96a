"""Take an encoded request apart: halves of a refused request, and a request without its too-old samples.

A receiver refuses a whole remote-write request for a single sample it does not accept (Prometheus: out of
order, out of bounds; Thanos Receive: 409) or because the request is too large (413). Sending the two
halves instead, and the halves of a half that is refused again, isolates the refused samples in at most
log2(samples) rounds and delivers every other sample.

The halves are cut in *time* order, not in the order of the series in the request: the samples a receiver
refuses for their age are then all at one end, found with about two requests per round, and each series
keeps its order across the halves (the older half is sent first, and within a series every sample of the
older half is older than every sample of the newer one).

The client's own metrics are told apart from the implementation's by their name prefix, so that the
accounting of the implementation's samples (sent, dropped) stays exact through any split.
"""

from __future__ import annotations

from collections.abc import Sequence

from monitoring_client.encoder import Encoder, Payload, SeriesSamples, decode, iter_samples
from monitoring_client.records import SeriesKey
from monitoring_client.self_metrics import PREFIX

Sample = tuple[SeriesKey, int, float]

# No bound applies to a part: it is never larger than the request it comes from.
_UNBOUNDED = Encoder(max_samples=2**62, max_bytes=2**62)


def samples_in_time_order(payload: Payload) -> list[Sample]:
    """Every sample of the request, oldest first (in request order among equal timestamps)."""
    samples = list(iter_samples(decode(payload.body)))
    samples.sort(key=lambda sample: sample[1])
    return samples


def encode_part(samples: Sequence[Sample], parent: Payload) -> Payload:
    """One request holding ``samples`` (each series in the given order); it keeps ``parent``'s age."""
    groups: dict[SeriesKey, SeriesSamples] = {}
    own: dict[SeriesKey, SeriesSamples] = {}
    for key, ts, value in samples:
        target = own if _is_own(key) else groups
        series = target.get(key)
        if series is None:
            series = target[key] = SeriesSamples()
        series.timestamps.append(ts)
        series.values.append(value)
    (part,) = _UNBOUNDED.encode(groups, own)
    part.created = parent.created
    return part


def halves(payload: Payload) -> list[Payload]:
    """The request as two requests, older samples first; one request when it holds a single sample."""
    samples = samples_in_time_order(payload)
    if len(samples) < 2:
        return [encode_part(samples, payload)] if samples else []
    middle = len(samples) // 2
    return [encode_part(samples[:middle], payload), encode_part(samples[middle:], payload)]


def without_older_than(payload: Payload, oldest_ms: int) -> tuple[Payload | None, Payload | None]:
    """(the request without its samples older than ``oldest_ms``, a stand-in for what was removed).

    Either may be None (nothing kept, nothing removed). The stand-in has no body; its counts say how many
    of the implementation's samples (and of the client's own) were removed, for the drop listener.
    """
    samples = samples_in_time_order(payload)
    cut = 0
    while cut < len(samples) and samples[cut][1] < oldest_ms:
        cut += 1
    if cut == 0:
        return payload, None
    removed = samples[:cut]
    own = sum(1 for key, _, _ in removed if _is_own(key))
    stand_in = Payload(b"", cut - own, own, len({key for key, _, _ in removed}), 0, created=payload.created)
    stand_in.oldest_ms = removed[0][1]
    kept = encode_part(samples[cut:], payload) if cut < len(samples) else None
    return kept, stand_in


def _is_own(key: SeriesKey) -> bool:
    """True for the client's own metrics."""
    for name, value in key:
        if name == "__name__":
            return value.startswith(PREFIX)
    return False
