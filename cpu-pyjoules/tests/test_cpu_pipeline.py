"""cpu_pyjoules.pipeline: the collector (get_power) and processor (process_data) halves of the contract."""

from __future__ import annotations

import queue
import threading
from collections import defaultdict
from pathlib import Path

import pytest
from halves import drain, run_halves

from cpu_pyjoules.pipeline import DROPPED, END, Collector, Processor, ZoneSetup
from cpu_pyjoules.rapl_discovery import RaplZone
from cpu_pyjoules.settings import Settings
from monitoring_client.device_loop import MERGED
from monitoring_client.errors import EnvironmentProblem
from monitoring_client.series_batch import as_records
from testkit.wait import wait_until

MS = 1_000_000
PREFIX = "pyjoules_remote_write"


def zone(zone_id, component, max_range=10_000_000):
    return RaplZone(zone_id, component, Path("/nowhere") / zone_id, max_range, domain=None)


def records_of(out_q):
    return as_records(drain(out_q))


def by_series(records):
    series = defaultdict(list)
    for r in records:
        series[(r["metric"], r["labels"]["zone"])].append(r)
    return series


def run_processor(items, settings=None, **kwargs):
    """Queue ``items``, set stop, run process_data to completion; returns (records, processor)."""
    in_q, out_q, stop = queue.Queue(), queue.Queue(), threading.Event()
    for item in items:
        in_q.put(item)
    stop.set()  # already stopped: it must still drain everything queued
    processor = Processor(settings or Settings(), **kwargs)
    processor.run(in_q, out_q, stop)
    assert in_q.empty()
    return records_of(out_q), processor


def test_processor_emits_energy_power_and_total_per_zone():
    zones = (zone("intel-rapl:0", "package-0"), zone("intel-rapl:0:0", "core"))
    items = [
        ZoneSetup(zones),
        (0, 1_000, [9_000_000, 100]),
        (100 * MS, 1_100, [1_500_000, 1_600_100]),  # package wraps: 2.5 J; core 1.6 J
        (200 * MS, 1_200, [4_000_000, 3_100_100]),
        END,
    ]
    records, processor = run_processor(items)
    series = by_series(records)
    assert [r["value"] for r in series[(f"{PREFIX}_energy_uj", "intel-rapl:0")]] == [2_500_000, 2_500_000]
    assert [r["value"] for r in series[(f"{PREFIX}_power_watts", "intel-rapl:0")]] == pytest.approx([25, 25])
    assert [r["value"] for r in series[(f"{PREFIX}_energy_joules_total", "intel-rapl:0")]] == pytest.approx([2.5, 5.0])
    assert [r["value"] for r in series[(f"{PREFIX}_power_watts", "intel-rapl:0:0")]] == pytest.approx([16, 15])
    assert [r["timestamp_ms"] for r in series[(f"{PREFIX}_energy_uj", "intel-rapl:0:0")]] == [1_100, 1_200]
    assert {tuple(sorted(r["labels"].items())) for r in records if r["metric"].endswith("_energy_uj")} == {
        (("component", "package-0"), ("zone", "intel-rapl:0")),
        (("component", "core"), ("zone", "intel-rapl:0:0")),
    }
    assert {tuple(sorted(r["labels"].items())) for r in records if not r["metric"].endswith("_energy_uj")} == {
        (("component", "package-0"), ("method", "counter"), ("scope", "total"), ("zone", "intel-rapl:0")),
        (("component", "core"), ("method", "counter"), ("scope", "part"), ("zone", "intel-rapl:0:0")),
    }
    assert len(records) == 2 * 3 * 2 == processor.samples_out


def test_same_millisecond_is_merged_into_the_next_sample():
    zones = (zone("intel-rapl:0", "package-0"),)
    items = [
        ZoneSetup(zones),
        (0, 5_000, [0]),
        (1 * MS, 5_001, [25_000]),
        (1 * MS + 400_000, 5_001, [35_000]),  # same wall-clock ms as the previous sample
        (2 * MS, 5_002, [50_000]),
        (3 * MS, 4_990, [75_000]),  # wall clock stepped back
        (4 * MS, 5_003, [100_000]),
        END,
    ]
    records, processor = run_processor(items)
    energy = by_series(records)[(f"{PREFIX}_energy_uj", "intel-rapl:0")]
    assert [(r["timestamp_ms"], r["value"]) for r in energy] == [(5_001, 25_000), (5_002, 25_000), (5_003, 50_000)]
    assert processor.loop.notices.total(MERGED) == 2
    total = by_series(records)[(f"{PREFIX}_energy_joules_total", "intel-rapl:0")]
    assert total[-1]["value"] == pytest.approx(0.1)  # nothing lost


def test_impossible_delta_is_dropped_and_counted(caplog):
    zones = (zone("intel-rapl:0", "package-0", max_range=None),)
    items = [ZoneSetup(zones), (0, 1, [5_000_000]), (100 * MS, 2, [1_000]), (200 * MS, 3, [2_501_000]), END]
    records, processor = run_processor(items)
    assert processor.warnings.total(DROPPED) == 1
    assert "impossible RAPL energy delta dropped" in caplog.text
    assert all(r["value"] >= 0 for r in records)


def test_processor_gives_up_waiting_for_end_after_the_grace_period():
    records, processor = run_processor(
        [ZoneSetup((zone("intel-rapl:0", "package-0"),)), (0, 1, [0])], drain_grace_s=0.2
    )
    assert records == []


def test_collector_queues_setup_readings_and_end(make_tree):
    fake = make_tree("package-0=25,core=15,dram=4")
    collector = Collector(Settings(powercap_root=fake.root))
    raw, _ = run_halves(collector, 0.005, lambda: collector.samples >= 20, "20 samples")
    items = drain(raw)
    assert isinstance(items[0], ZoneSetup)
    assert [z.zone_id for z in items[0].zones] == ["intel-rapl:0", "intel-rapl:0:0", "intel-rapl:0:1"]
    assert items[-1] is END
    assert all(type(batch) is list for batch in items[1:-1])  # readings travel in batches
    readings = [r for batch in items[1:-1] for r in batch]
    assert len(readings) == collector.samples
    starts = [z.initial_uj for z in fake.zones.values()]
    for _t_ns, _wall_ms, values in readings:
        assert values == starts  # this tree is not advancing
    monotonic = [r[0] for r in readings]
    assert monotonic == sorted(monotonic) and len(set(monotonic)) == len(monotonic)


def test_collector_without_rapl_raises_and_still_ends_the_stream(tmp_path):
    raw, stop = queue.Queue(), threading.Event()
    with pytest.raises(EnvironmentProblem, match="No RAPL energy counters"):
        Collector(Settings(powercap_root=tmp_path / "absent")).run(raw, 0.1, stop)
    assert drain(raw) == [END]


def test_collector_and_processor_on_a_wrapping_tree(make_tree):
    """Both halves in threads on a live fake tree whose counters wrap about every 0.4 s."""
    fake = make_tree("package-0=25,core=15,dram=4", wrap_joules=10, start_fraction=0.9)
    settings = Settings(powercap_root=fake.root)
    collector, processor = Collector(settings), Processor(settings)
    fake.start()
    try:
        # at least 3 package wraps
        _, out = run_halves(collector, 0.02, lambda: fake.zone("package-0").joules > 30, "wraps", processor)
    finally:
        fake.stop()
    records = records_of(out)
    assert all(r["value"] >= 0 for r in records), "negative value emitted"
    series = by_series(records)
    for zone_id, fz in fake.zones.items():
        power = [r["value"] for r in series[(f"{PREFIX}_power_watts", zone_id)]]
        energy = [r["value"] for r in series[(f"{PREFIX}_energy_uj", zone_id)]]
        totals = [r["value"] for r in series[(f"{PREFIX}_energy_joules_total", zone_id)]]
        assert totals == sorted(totals)
        assert totals[-1] == pytest.approx(sum(energy) / 1e6)
        # energy / power is each interval's duration: the whole run's energy over its duration is the watts
        duration_s = sum(e / p for e, p in zip(energy, power, strict=True) if p > 0) / 1e6
        assert duration_s > 1
        assert sum(energy) / 1e6 / duration_s == pytest.approx(fz.watts, rel=0.02)
    assert processor.warnings.total(DROPPED) == 0


def test_processor_takes_batches_of_readings_like_single_ones():
    zones = (zone("intel-rapl:0", "package-0"),)
    readings = [(0, 1_000, [0]), (100 * MS, 1_100, [2_500_000]), (200 * MS, 1_200, [5_000_000])]
    single = [ZoneSetup(zones), *readings, END]
    batched = [ZoneSetup(zones), readings[:2], readings[2:], END]
    assert run_processor(batched)[0] == run_processor(single)[0]
    assert len(run_processor(batched)[0]) == 2 * 3


def test_processor_returns_on_stop_after_end_without_waiting_for_a_batch():
    in_q, out_q, stop = queue.Queue(), queue.Queue(), threading.Event()
    processor = Processor(Settings())
    processor.idle_wait_s = 600  # a wait for the next batch would outlast the test
    for item in (ZoneSetup((zone("intel-rapl:0", "package-0"),)), [(0, 1, [0]), (100 * MS, 2, [100])], END):
        in_q.put(item)
    thread = threading.Thread(target=processor.run, args=(in_q, out_q, stop))
    thread.start()
    wait_until(lambda: processor.samples_out == 3, timeout=10, message="the batch processed")
    stop.set()
    thread.join(timeout=20)
    assert not thread.is_alive()
