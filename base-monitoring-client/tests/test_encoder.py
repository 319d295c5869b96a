"""Encoding: decode the bytes back with protobuf + snappy and compare; splitting keeps every bound."""

from __future__ import annotations

import random

import pytest
import snappy

from monitoring_client import remote_pb2
from monitoring_client.encoder import Encoder, SeriesSamples, decode, iter_samples

TS = 1_700_000_000_000


def key(name: str, **labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({"__name__": name, **labels}.items()))


def make_groups(n_series: int, n_samples: int, seed: int = 1) -> dict:
    rng = random.Random(seed)
    groups = {}
    for s in range(n_series):
        ts = [TS + i * 100 + rng.randrange(50) for i in range(n_samples)]
        vals = [rng.uniform(-1e6, 1e6) for _ in range(n_samples)]
        groups[key("energy_uj", zone=f"intel-rapl:0:{s}", component=f"c{s}")] = SeriesSamples(ts, vals)
    return groups


def all_samples(payloads: list) -> list[tuple]:
    return [s for p in payloads for s in iter_samples(decode(p.body))]


def test_round_trip_is_exact() -> None:
    groups = make_groups(3, 50)
    payloads = Encoder().encode(groups)
    assert len(payloads) == 1
    request = remote_pb2.WriteRequest()
    request.ParseFromString(snappy.uncompress(payloads[0].body))  # snappy *block* format
    got = {
        tuple((lab.name, lab.value) for lab in ts.labels): (
            [s.timestamp for s in ts.samples],
            [s.value for s in ts.samples],
        )
        for ts in request.timeseries
    }
    assert got == {k: (v.timestamps, v.values) for k, v in groups.items()}
    assert payloads[0].samples == 150 and payloads[0].series == 3 and payloads[0].self_samples == 0


def test_labels_on_the_wire_are_sorted_by_name() -> None:
    payloads = Encoder().encode(make_groups(2, 1))
    for ts in decode(payloads[0].body).timeseries:
        names = [lab.name for lab in ts.labels]
        assert names == sorted(names) and names[0] == "__name__"


def test_body_is_not_the_framed_snappy_format() -> None:
    body = Encoder().encode(make_groups(1, 5))[0].body
    assert not body.startswith(b"\xff\x06\x00\x00sNaPpY")  # stream identifier of the framed format


@pytest.mark.parametrize("max_samples", [1, 7, 100, 149, 150])
def test_split_by_sample_count_keeps_order_and_everything(max_samples: int) -> None:
    groups = make_groups(3, 50)
    payloads = Encoder(max_samples=max_samples).encode(groups)
    assert all(len(list(iter_samples(decode(p.body)))) <= max_samples for p in payloads)
    assert len(payloads) == -(-150 // max_samples)
    got = all_samples(payloads)
    assert len(got) == 150
    # per series, in wire order across requests: exactly the input, in order
    for k, series in groups.items():
        assert [(ts, v) for kk, ts, v in got if kk == k] == list(zip(series.timestamps, series.values, strict=True))
    assert sum(p.samples for p in payloads) == 150


@pytest.mark.parametrize("max_bytes", [600, 1000, 5000])
def test_split_by_uncompressed_size_stays_under_bound(max_bytes: int) -> None:
    groups = make_groups(4, 60)
    payloads = Encoder(max_samples=10_000, max_bytes=max_bytes).encode(groups)
    assert len(payloads) > 1
    assert all(p.uncompressed_bytes <= max_bytes for p in payloads)
    assert all(p.uncompressed_bytes == len(snappy.uncompress(p.body)) for p in payloads)
    assert len(all_samples(payloads)) == 240


def test_series_larger_than_the_byte_bound_is_still_sent() -> None:
    huge = {key("m", big="x" * 2000): SeriesSamples([TS, TS + 1], [1.0, 2.0])}
    payloads = Encoder(max_bytes=500).encode(huge)
    assert [len(list(iter_samples(decode(p.body)))) for p in payloads] == [1, 1]


def test_self_samples_are_counted_apart() -> None:
    data = make_groups(1, 10)
    own = {key("monitoring_client_x"): SeriesSamples([TS], [1.0])}
    payloads = Encoder(max_samples=4).encode(data, own)
    assert sum(p.samples for p in payloads) == 10
    assert sum(p.self_samples for p in payloads) == 1
    assert all_samples(payloads)[-1][0] == key("monitoring_client_x")


def test_nothing_to_encode_gives_no_payload() -> None:
    assert Encoder().encode({key("m"): SeriesSamples()}) == []


def test_special_values_survive() -> None:
    vals = [float("inf"), float("-inf"), 0.0, -0.0, 1e308, 5e-324]
    groups = {key("m"): SeriesSamples([TS + i for i in range(len(vals))], vals)}
    got = [v for _, _, v in all_samples(Encoder().encode(groups))]
    assert got == vals


def protobuf_bytes(groups: dict) -> bytes:
    """The same request built with protobuf's own message classes."""
    request = remote_pb2.WriteRequest()
    for k, series in groups.items():
        ts = request.timeseries.add()
        for name, value in k:
            ts.labels.add(name=name, value=value)
        for t, v in zip(series.timestamps, series.values, strict=True):
            ts.samples.add(value=v, timestamp=t)
    return request.SerializeToString()


def test_bytes_are_what_protobuf_writes() -> None:
    # Non-zero values (protobuf leaves a zero out; a zero written explicitly decodes the same), timestamps
    # around the 2**42 ms boundary of the 6-byte varints, labels with multi-byte characters.
    groups = make_groups(4, 30)
    groups[key("m", zone="zoné ✓")] = SeriesSamples([2**42 - 2, 2**42 - 1, 2**42, 2**42 + 5], [1.0, 2.0, 3.0, 4.0])
    body = Encoder().encode(groups)[0].body
    assert snappy.uncompress(body) == protobuf_bytes(groups)


@pytest.mark.parametrize(
    "timestamps",
    [
        [0, 1, 127, 128, 16383, 16384],
        [-5, -1],
        [2**35 - 1, 2**35, 2**35 + 1],
        [2**63 - 1],
        [TS, TS + 16384, TS + 10**9],
    ],
)
def test_any_int64_timestamp_and_zero_values_round_trip(timestamps: list[int]) -> None:
    values = [0.0, -0.0, 1.5, float("inf"), -2.0, 7.0][: len(timestamps)]
    values += [3.0] * (len(timestamps) - len(values))
    groups = {key("m", a="b"): SeriesSamples(list(timestamps), values)}
    got = all_samples(Encoder().encode(groups))
    assert [(ts, v) for _, ts, v in got] == list(zip(timestamps, values, strict=True))


def test_the_varint_table_holds_bytes_0_and_1_of_every_14_bit_value() -> None:
    from monitoring_client.encoder import _LOW14

    assert list(_LOW14) == [(t & 0x7F) | 0x80 | ((((t >> 7) & 0x7F) | 0x80) << 8) for t in range(1 << 14)]
