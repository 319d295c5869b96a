"""Sampling in a child process (cpu_pyjoules.sampler_process): same readings, clean stop, errors reported."""

from __future__ import annotations

import io
import queue
import threading
import time

import pytest
from halves import drain, run_halves

from cpu_pyjoules.pipeline import END, Collector, Processor, ZoneSetup
from cpu_pyjoules.rapl_discovery import discover_zones
from cpu_pyjoules.rapl_reader import RaplReader
from cpu_pyjoules.sampler_process import SamplerProcess, frame_batches, use_process
from cpu_pyjoules.settings import Settings
from monitoring_client.errors import EnvironmentProblem
from monitoring_client.series_batch import as_records


def test_auto_uses_the_child_above_200_hz_only():
    assert use_process("auto", 0.001) and use_process("auto", 0.002)
    assert not use_process("auto", 0.005) and not use_process("auto", 0.1)
    assert use_process("yes", 1.0) and not use_process("no", 0.0005)


def test_child_readings_are_what_the_reader_reads(make_tree):
    fake = make_tree("package-0=25,core=15,uncore=2,dram=4")
    paths = [z.energy_path for z in discover_zones(fake.root)]
    expected = RaplReader(paths).read()
    child = SamplerProcess(paths, 0.002)
    readings = []
    try:
        for reading in child.readings():
            readings.append(reading)
            if len(readings) == 30:
                child.stop()
    finally:
        status = child.wait(10)
    assert status == 0
    assert len(readings) >= 30  # it sends what it read before it stopped
    assert all(values == expected for _, _, values in readings)  # the tree is not advancing
    stamps = [t for t, _, _ in readings]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    now_ms = time.time_ns() // 1_000_000
    assert all(now_ms - 60_000 < wall <= now_ms for _, wall, _ in readings)
    # Monotonic stamps are comparable with this process's clock: the processor mixes them with nothing else,
    # but they must at least be from the same clock.
    assert abs(stamps[-1] - time.monotonic_ns()) < 60e9


def test_child_stops_when_its_stdin_closes_even_if_nobody_reads(make_tree):
    fake = make_tree()
    paths = [z.energy_path for z in discover_zones(fake.root)]
    child = SamplerProcess(paths, 0.001)
    time.sleep(0.3)
    child.stop()
    assert child.wait(10) == 0
    child.kill()


def test_collector_relays_the_child_and_the_processor_gets_the_energy(make_tree, tmpfs_path):
    fake = make_tree("package-0=25,core=15,dram=4", root=tmpfs_path / "powercap")
    settings = Settings(powercap_root=fake.root, sampler_process="yes")
    collector, processor = Collector(settings), Processor(settings)
    fake.start()
    try:
        _, out = run_halves(collector, 0.002, lambda: collector.samples >= 200, "200 samples via the child", processor)
    finally:
        fake.stop()
    records = as_records(drain(out))
    power = [r["value"] for r in records if r["metric"].endswith("_power_watts") and r["labels"]["component"] == "core"]
    assert len(power) >= 150
    mean = sum(power) / len(power)
    assert 15 * 0.9 < mean < 15 * 1.1  # the fake core draws 15 W


def test_collector_queues_setup_then_readings_then_end_in_process_mode(make_tree):
    fake = make_tree()
    collector = Collector(Settings(powercap_root=fake.root, sampler_process="yes"))
    raw, _ = run_halves(collector, 0.01, lambda: collector.samples >= 10, "10 samples")
    items = drain(raw)
    assert isinstance(items[0], ZoneSetup) and items[-1] is END
    assert sum(len(frame) for frame in items[1:-1]) == collector.samples


def test_unreadable_counter_in_the_child_is_an_environment_problem(make_tree, capfd):
    fake = make_tree()
    zones = list(discover_zones(fake.root))
    broken = zones[0].energy_path
    broken.unlink()
    broken.mkdir()  # root can read any file: a directory where the counter should be cannot be read
    child = SamplerProcess([z.energy_path for z in zones], 0.01)
    assert list(child.readings()) == []
    assert child.wait(10) == 3
    assert "Cannot read the RAPL counter" in capfd.readouterr().err


def test_collector_raises_environment_problem_when_the_child_cannot_read(make_tree):
    fake = make_tree()

    def discover(root):
        zones = list(discover_zones(root))
        zones[0].energy_path.unlink()
        zones[0].energy_path.mkdir()
        return zones

    raw, stop = queue.Queue(), threading.Event()
    collector = Collector(Settings(powercap_root=fake.root, sampler_process="yes"), discover=discover)
    with pytest.raises(EnvironmentProblem, match="sampler process"):
        collector.run(raw, 0.01, stop)
    assert drain(raw)[-1] is END


def test_frames_go_at_most_every_flush_period():
    now = [0]
    out = io.BytesIO()
    batches = frame_batches(out, clock_ns=lambda: now[0])
    batches((1, 2, [3, 4]))
    assert out.getvalue() == b""  # waits for more
    now[0] = 60_000_000
    batches((now[0], 6, [7, 8]))
    data = out.getvalue()
    assert int.from_bytes(data[:4], "little") == 2 * 4 * 8  # two readings of four int64
    batches.flush()
    assert out.getvalue() == data  # nothing new to send
