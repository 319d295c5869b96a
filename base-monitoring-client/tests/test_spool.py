"""The on-disk spool on real files: durability format, replay order, damage, bounds, a full disk."""

from __future__ import annotations

import errno
import os
import queue
import subprocess
import sys
import threading
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from inline_impl import impl

from monitoring_client import spool_files as spool_mod
from monitoring_client.config import Config, load_config
from monitoring_client.encoder import Encoder, Payload, SeriesSamples, decode, iter_samples
from monitoring_client.errors import ConfigError
from monitoring_client.pipeline import Pipeline
from monitoring_client.spool import SpoolStore, newest_timestamps
from monitoring_client.spool_files import HEADER, CorruptFile, Spool, SpoolError, decode_file, encode_file
from testkit.wait import wait_until


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make(directory: Path, *, clock: Clock | None = None, writer=spool_mod.write_durably) -> Spool:
    return Spool(directory, max_bytes=10**9, max_age_s=3600, clock=clock or Clock(), writer=writer)


def test_file_format_round_trips_and_detects_damage() -> None:
    blob = encode_file(b"payload-bytes", samples=7, created_ms=123)
    assert decode_file(blob) == (123, 7, b"payload-bytes")
    with pytest.raises(CorruptFile, match="truncated"):
        decode_file(blob[:-3])
    with pytest.raises(CorruptFile, match="shorter than"):
        decode_file(blob[: HEADER.size - 1])
    flipped = bytearray(blob)
    flipped[-1] ^= 0xFF
    with pytest.raises(CorruptFile, match="checksum"):
        decode_file(bytes(flipped))
    with pytest.raises(CorruptFile, match="magic"):
        decode_file(b"XXXX" + blob[4:])


def test_payloads_survive_a_restart_in_order(tmp_path: Path) -> None:
    first = make(tmp_path)
    assert first.open() == []
    for i in range(5):
        first.put(f"p{i}".encode(), samples=i + 1)
    # A new process (new Spool object) finds them, oldest first, readable.
    second = make(tmp_path)
    left = second.open()
    assert [e.load() for e in left] == [b"p0", b"p1", b"p2", b"p3", b"p4"]
    assert [e.samples for e in left] == [1, 2, 3, 4, 5]
    # And numbering continues after them, so new payloads sort after the replayed ones.
    new = second.put(b"p5", samples=1)
    assert new.seq > left[-1].seq


def test_sequence_numbers_sort_past_many_files(tmp_path: Path) -> None:
    s = make(tmp_path)
    s.open()
    s._next_seq = 9  # crossing 9 -> 10 must not reorder (names are zero-padded)
    s.put(b"nine", 1)
    s.put(b"ten", 1)
    assert [e.load() for e in make(tmp_path).open()] == [b"nine", b"ten"]


def test_acknowledged_payloads_are_removed(tmp_path: Path) -> None:
    s = make(tmp_path)
    s.open()
    a = s.put(b"a", 1)
    b = s.put(b"b", 1)
    s.remove(a)
    assert [e.load() for e in make(tmp_path).open()] == [b"b"]
    assert s.disk_bytes == b.size


def test_truncated_and_corrupt_files_are_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    s = make(tmp_path)
    s.open()
    good1 = s.put(b"good-1", 2)
    torn = s.put(b"torn-payload", 3)
    flipped = s.put(b"flipped", 4)
    good2 = s.put(b"good-2", 5)
    assert torn.path and flipped.path and good1.path and good2.path
    torn.path.write_bytes(torn.path.read_bytes()[:-4])
    data = bytearray(flipped.path.read_bytes())
    data[HEADER.size] ^= 0x01
    flipped.path.write_bytes(bytes(data))
    (tmp_path / "00000000000000000099.rwp").write_bytes(b"")  # empty file, e.g. after a crash on ext4
    again = make(tmp_path)
    left = again.open()
    assert [e.load() for e in left] == [b"good-1", b"good-2"]
    assert again.corrupt_files == 3
    assert "skipping damaged file" in caplog.text
    assert sorted(p.name for p in tmp_path.glob("*.corrupt")) == sorted(
        [torn.path.name + ".corrupt", flipped.path.name + ".corrupt", "00000000000000000099.rwp.corrupt"]
    )


def test_interrupted_writes_leave_no_payload(tmp_path: Path) -> None:
    (tmp_path / "00000000000000000001.rwp.tmp").write_bytes(b"half a file")
    (tmp_path / "notes.txt").write_text("not ours")
    assert make(tmp_path).open() == []
    assert not list(tmp_path.glob("*.tmp"))
    assert (tmp_path / "notes.txt").exists(), "foreign files are left alone"


def test_full_disk_falls_back_to_memory_with_one_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    failing = {"on": True}

    def writer(path: Path, data: bytes) -> None:
        if failing["on"]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        spool_mod.write_durably(path, data)

    s = make(tmp_path, writer=writer)
    s.open()
    a = s.put(b"kept-in-memory", 2)
    b = s.put(b"also-in-memory", 2)
    assert a.path is None and a.load() == b"kept-in-memory"
    assert b.path is None and not s.disk_ok
    assert caplog.text.count("disk is full or read-only") == 1, "one warning per episode, not per payload"
    failing["on"] = False
    c = s.put(b"on-disk-again", 1)
    assert c.path is not None and s.disk_ok
    assert "works again" in caplog.text
    assert s.write_failures == 2


@pytest.mark.parametrize("code", [errno.EDQUOT, errno.EROFS, errno.EIO])
def test_other_write_errors_never_raise(tmp_path: Path, code: int) -> None:
    def writer(path: Path, data: bytes) -> None:
        raise OSError(code, os.strerror(code), str(path))

    s = make(tmp_path, writer=writer)
    s.open()
    assert s.put(b"p", 1).load() == b"p"


def test_write_is_atomic_and_durable(tmp_path: Path) -> None:
    synced: list[int] = []

    def fsync(fd: int) -> None:
        synced.append(fd)
        os.fsync(fd)

    target = tmp_path / "00000000000000000001.rwp"
    spool_mod.write_durably(target, b"data", fsync=fsync)
    assert target.read_bytes() == b"data"
    assert len(synced) == 2, "the file and its directory are fsync'd"
    assert not list(tmp_path.glob("*.tmp"))


def test_unusable_directory_is_a_clear_error(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(SpoolError, match="not a directory|cannot create"):
        make(a_file).open()
    with pytest.raises(SpoolError, match="cannot create"):
        make(a_file / "sub").open()


# --------------------------------------------------------------------------------------------------
# SpoolStore: the payload store behind SPOOL_DIR
# --------------------------------------------------------------------------------------------------


class DropLog:
    def __init__(self) -> None:
        self.events: list[tuple[str, int, str]] = []

    def __call__(self, reason: str, payload: Payload, detail: str) -> None:
        self.events.append((reason, payload.samples, detail))

    def reasons(self) -> list[str]:
        return [e[0] for e in self.events]


def payload(tag: str, samples: int = 1) -> Payload:
    return Payload(tag.encode(), samples, 0, 1, len(tag))


def buffer(
    directory: Path,
    *,
    clock: Clock | None = None,
    max_bytes: int = 10**9,
    max_age_s: float = 3600,
    writer=spool_mod.write_durably,
    max_memory_payloads: int = 100,
    max_memory_bytes: int = 10**6,
    drops: DropLog | None = None,
) -> SpoolStore:
    spool = Spool(directory, max_bytes=max_bytes, max_age_s=max_age_s, clock=clock or Clock(), writer=writer)
    store = SpoolStore(
        spool,
        max_memory_payloads=max_memory_payloads,
        max_memory_bytes=max_memory_bytes,
        on_drop=drops if drops is not None else DropLog(),
    )
    store.open()
    return store


def send_all(store: SpoolStore) -> list[bytes]:
    out = []
    while (p := store.take(timeout=0)) is not None:
        out.append(p.body)
        assert store.acknowledge(p)
    return out


def test_buffer_sends_in_order_and_forgets_acknowledged(tmp_path: Path) -> None:
    store = buffer(tmp_path)
    for tag in ("a", "b", "c"):
        store.put(payload(tag))
    assert len(store) == 3 and store.nbytes > 0
    first = store.take(timeout=0)
    assert first is not None and first.body == b"a"
    assert store.take(timeout=0) is first, "the head stays in flight until done"
    store.acknowledge(first)
    assert send_all(store) == [b"b", b"c"]
    assert len(store) == 0 and store.nbytes == 0
    assert not list(tmp_path.glob("*.rwp"))


def test_left_overs_are_replayed_before_new_data(tmp_path: Path) -> None:
    first = buffer(tmp_path)
    for tag in ("old-1", "old-2"):
        first.put(payload(tag, samples=5))
    in_flight = first.take(timeout=0)
    assert in_flight is not None
    assert first.drain() == [], "everything is on disk: nothing is lost at exit"
    # Restart (as after SIGKILL or SIGTERM): old payloads first, then new ones.
    second = buffer(tmp_path)
    assert second.replayed_samples == 10
    second.put(payload("new-1"))
    assert send_all(second) == [b"old-1", b"old-2", b"new-1"]


def test_payload_bodies_stay_on_disk_until_sent(tmp_path: Path) -> None:
    store = buffer(tmp_path)
    original = payload("x" * 1000)
    store.put(original)
    assert original.body == b"x" * 1000, "the caller's payload is left untouched"
    queued = store._items[0]
    assert queued.body == b"", "only the in-flight payload is held in memory"
    assert store.take(timeout=0).body == b"x" * 1000


def test_byte_bound_drops_oldest_not_in_flight(tmp_path: Path) -> None:
    drops = DropLog()
    one = len(encode_file(b"x" * 100, 1, 0))
    store = buffer(tmp_path, max_bytes=3 * one, drops=drops)
    store.put(payload("0" * 100, samples=7))
    in_flight = store.take(timeout=0)
    for i in range(1, 5):
        store.put(payload(str(i) * 100, samples=7))
    assert drops.reasons() == ["buffer_full", "buffer_full"]
    assert sum(e[1] for e in drops.events) == 14
    assert in_flight is not None and store.acknowledge(in_flight)
    assert [b[:1] for b in send_all(store)] == [b"3", b"4"]


def test_age_bound_on_disk_and_at_start(tmp_path: Path) -> None:
    clock = Clock()
    drops = DropLog()
    store = buffer(tmp_path, clock=clock, max_age_s=60, drops=drops)
    store.put(payload("old", samples=3))
    clock.now += 50
    store.put(payload("young", samples=4))
    clock.now += 20
    store.put(payload("new", samples=1))
    assert drops.reasons() == ["expired"]
    assert drops.events[0][1] == 3
    # The same bound applies to what a previous run left.
    clock.now += 45  # young is 65 s old now, new 45 s
    drops2 = DropLog()
    again = buffer(tmp_path, clock=clock, max_age_s=60, drops=drops2)
    assert drops2.reasons() == ["expired"]
    assert send_all(again) == [b"new"]


def test_full_disk_keeps_payloads_in_memory_in_order(tmp_path: Path) -> None:
    full = {"on": False}

    def writer(path: Path, data: bytes) -> None:
        if full["on"]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        spool_mod.write_durably(path, data)

    drops = DropLog()
    store = buffer(tmp_path, writer=writer, max_memory_payloads=2, drops=drops)
    store.put(payload("disk-1"))
    full["on"] = True
    for tag in ("mem-1", "mem-2", "mem-3"):
        store.put(payload(tag, samples=2))
    full["on"] = False
    store.put(payload("disk-2"))
    # The memory bound (2 payloads) evicted the oldest memory-only payload, never one on disk.
    assert drops.reasons() == ["buffer_full"] and drops.events[0][1] == 2
    assert [p.samples for p in store.drain()] == [2, 2], "memory-only payloads are lost at exit, and said so"
    # What was on disk survives.
    assert send_all(buffer(tmp_path)) == [b"disk-1", b"disk-2"]


def test_file_damaged_while_waiting_is_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    drops = DropLog()
    store = buffer(tmp_path, drops=drops)
    store.put(payload("fine-1"))
    store.put(payload("damaged", samples=9))
    store.put(payload("fine-2"))
    victim = sorted(tmp_path.glob("*.rwp"))[1]
    victim.write_bytes(victim.read_bytes()[:-2])
    assert send_all(store) == [b"fine-1", b"fine-2"]
    assert drops.reasons() == ["corrupt"] and drops.events[0][1] == 9
    assert "cannot read" in caplog.text
    assert list(tmp_path.glob("*.corrupt"))


def test_newest_timestamps_seed_the_ordering_guard(tmp_path: Path) -> None:
    key_a = (("__name__", "a"), ("host", "h"))
    key_b = (("__name__", "b"), ("host", "h"))
    encoder = Encoder()
    batch1 = encoder.encode({key_a: SeriesSamples([1000, 2000], [1.0, 2.0]), key_b: SeriesSamples([1500], [1.0])})
    batch2 = encoder.encode({key_a: SeriesSamples([3000], [3.0])})
    first = buffer(tmp_path)
    for p in batch1 + batch2:
        first.put(p)
    first.drain()
    spool = Spool(tmp_path, max_bytes=10**9, max_age_s=3600, clock=Clock())
    second = SpoolStore(spool, max_memory_payloads=10, max_memory_bytes=10**6)
    assert second.open() == {key_a: 3000, key_b: 1500}
    assert newest_timestamps([p.body for p in batch2]) == {key_a: 3000}


# --------------------------------------------------------------------------------------------------
# Wiring: configuration and the pipeline with SPOOL_DIR
# --------------------------------------------------------------------------------------------------


# A minute ago: within the window of timestamps the client sends (MAX_SAMPLE_AGE_S).
TS = int(time.time() * 1000) - 60_000


def test_spool_variables_are_parsed_and_validated(tmp_path: Path) -> None:
    assert load_config({}).spool_dir is None, "no SPOOL_DIR: memory only"
    cfg = load_config({"SPOOL_DIR": str(tmp_path / "new"), "SPOOL_MAX_BYTES": "2GiB", "SPOOL_MAX_AGE_S": "600"})
    assert cfg.spool_dir == tmp_path / "new"
    assert cfg.spool_max_bytes == 2 * 1024**3 and cfg.spool_max_age_s == 600
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(ConfigError) as err:
        load_config({"SPOOL_DIR": str(a_file), "SPOOL_MAX_BYTES": "lots", "SPOOL_MAX_AGE_S": "-1"})
    lines = str(err.value).splitlines()
    assert [line.split("=")[0] for line in lines] == ["SPOOL_DIR", "SPOOL_MAX_BYTES", "SPOOL_MAX_AGE_S"]


def seq_impl(values: list[int], ts_of: Callable[[int], int] = lambda i: TS + i) -> types.ModuleType:
    """A seed-contract implementation emitting one sample per value, then idling until stopped."""

    def emit(output_queue: queue.Queue, _interval: float, _stop: threading.Event) -> None:
        for i in values:
            output_queue.put({"metric": "t_seq", "labels": {}, "value": float(i), "timestamp_ms": ts_of(i)})

    return impl(emit)


def spool_config(url: str, spool_dir: Path, **over: Any) -> Config:
    fields: dict[str, Any] = {
        "remote_write_url": url,
        "scrape_interval_s": 0.01,
        "push_interval_s": 0.05,
        "retry_base_s": 0.01,
        "retry_max_s": 0.05,
        "shutdown_timeout_s": 1.0,
        "self_metrics_interval_s": 0.0,
        "host_label": "h",
        "spool_dir": spool_dir,
    }
    fields.update(over)
    return Config(**fields)


def run_until(pipeline: Pipeline, condition: Callable[[], Any], message: str) -> int:
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(pipeline.run()), daemon=True)
    thread.start()
    try:
        wait_until(condition, 20, message=message)
    finally:
        pipeline.request_stop("test")
        thread.join(20)
    assert result, "pipeline did not stop"
    return result[0]


def sent_values(receiver: Any) -> list[float]:
    return [
        v for r in receiver.accepted() for k, _, v in iter_samples(decode(r.body)) if dict(k)["__name__"] == "t_seq"
    ]


def test_unsent_data_survives_a_restart_and_goes_first(receiver: Any, tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    receiver.set_default(503, body=b"down")
    first = Pipeline(spool_config(receiver.url, spool_dir), seq_impl(list(range(50))))
    status = run_until(
        first,
        lambda: (
            first.metrics.value("monitoring_client_samples_received_total") == 50 and first.store.disk_payloads() > 0
        ),
        "50 samples in, some spooled",
    )
    assert status == 0
    assert first.metrics.dropped_by_reason().get("shutdown_timeout", 0) == 0, "kept on disk, not lost"
    assert list(spool_dir.glob("*.rwp"))
    assert receiver.accepted() == []

    receiver.set_default(204)
    second = Pipeline(spool_config(receiver.url, spool_dir), seq_impl(list(range(50, 80))))
    assert run_until(second, lambda: len(sent_values(receiver)) == 80, "all 80 samples") == 0
    assert sent_values(receiver) == [float(i) for i in range(80)], "left-overs first, in order, then new data"
    assert second.metrics.value("monitoring_client_spool_replayed_samples_total") == 50
    assert not list(spool_dir.glob("*.rwp")), "acknowledged payloads are removed"


def test_replay_seeds_the_ordering_guard(receiver: Any, tmp_path: Path) -> None:
    """New samples stamped before the replayed ones (clock set back while down) are dropped and counted;
    without the seeding they would reach the receiver after newer samples and be refused as a whole."""
    spool_dir = tmp_path / "spool"
    receiver.set_default(503)
    first = Pipeline(spool_config(receiver.url, spool_dir), seq_impl(list(range(20))))
    run_until(
        first,
        lambda: (
            first.store.disk_payloads() > 0 and first.metrics.value("monitoring_client_samples_received_total") == 20
        ),
        "spooled",
    )
    receiver.set_default(204)
    # The restarted client's clock is 15 ms behind: its samples 20..39 carry timestamps TS+5..TS+24.
    second = Pipeline(spool_config(receiver.url, spool_dir), seq_impl(list(range(20, 40)), lambda i: TS + i - 15))
    run_until(
        second,
        lambda: (
            second.metrics.value("monitoring_client_samples_received_total") == 20
            and len(sent_values(receiver)) >= 20 + 5
        ),
        "replayed and new",
    )
    assert sent_values(receiver)[:20] == [float(i) for i in range(20)]
    assert second.metrics.dropped_by_reason().get("out_of_order") == 15  # stamped TS+5..TS+19 <= TS+19
    assert sent_values(receiver)[20:] == [float(i) for i in range(35, 40)]


def test_unusable_spool_directory_falls_back_to_memory(
    receiver: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A spool that cannot be created (here: a file where a parent directory should be) must not stop the
    client: it sends from memory, says so once, and reports the spool as not ok."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    pipeline = Pipeline(spool_config(receiver.url, blocker / "spool"), seq_impl(list(range(30))))
    assert run_until(pipeline, lambda: len(sent_values(receiver)) == 30, "all 30 sent from memory") == 0
    assert "kept in memory only" in caplog.text
    assert pipeline.metrics.value("monitoring_client_spool_disk_ok") == 0
    assert pipeline.metrics.value("monitoring_client_spool_write_errors_total") >= 1


# --------------------------------------------------------------------------------------------------
# Parts of a split request, and a spool directory someone else tampered with
# --------------------------------------------------------------------------------------------------


def test_parts_of_a_split_request_replace_it_on_disk_in_order(tmp_path: Path) -> None:
    store = buffer(tmp_path)
    store.put(payload("a", samples=4))
    store.put(payload("b", samples=1))
    head = store.take(timeout=0)
    assert head is not None and head.body == b"a"
    assert store.replace(head, [payload("a0", 2), payload("a1", 2)])
    names = sorted(p.name for p in tmp_path.glob("*.rwp"))
    assert len(names) == 3 and names[0].endswith("-0.rwp") and names[1].endswith("-1.rwp"), names
    # A part split again: its own parts sort where it was.
    part = store.take(timeout=0)
    assert part is not None and part.body == b"a0"
    assert store.replace(part, [payload("a00"), payload("a01")])
    store.drain()
    # After a restart the parts are replayed in order, before the rest.
    assert send_all(buffer(tmp_path)) == [b"a00", b"a01", b"a1", b"b"]


def test_a_crash_between_writing_the_parts_and_removing_the_request_keeps_the_request(tmp_path: Path) -> None:
    s = make(tmp_path)
    s.open()
    whole = s.put(b"whole", 4)
    s.put_part(whole, 0, b"half-0", 2)  # the crash comes before the second half and before the removal
    later = s.put(b"later", 1)
    s.close()
    left = make(tmp_path).open()
    assert [e.load() for e in left] == [b"whole", b"later"], "the request, not half of it"
    assert sorted(p.name for p in tmp_path.glob("*.rwp")) == sorted([whole.path.name, later.path.name])  # type: ignore[union-attr]


def test_only_regular_files_of_plausible_size_are_read(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    good = encode_file(b"good", 1, 0)
    (elsewhere / "target.rwp").write_bytes(encode_file(b"not mine", 1, 0))
    (spool_dir / "00000000000000000001.rwp").write_bytes(good)
    os.symlink(elsewhere / "target.rwp", spool_dir / "00000000000000000002.rwp")  # a link: never followed
    os.symlink("/dev/null", spool_dir / "00000000000000000003.rwp")  # a device (as /dev/zero, which never ends)
    os.mkfifo(spool_dir / "00000000000000000004.rwp")  # opening it for reading would block start-up
    with open(spool_dir / "00000000000000000005.rwp", "wb") as huge:  # sparse: larger than any spool file
        huge.truncate(spool_mod.DEFAULT_MAX_FILE_BYTES + 1)
    (spool_dir / "00000000000000000006.rwp").mkdir()
    spool = make(spool_dir)
    opened: list[list[spool_mod.SpoolEntry]] = []
    thread = threading.Thread(target=lambda: opened.append(spool.open()), daemon=True)
    thread.start()
    thread.join(10)
    if thread.is_alive():  # release the blocked open before failing
        os.close(os.open(spool_dir / "00000000000000000004.rwp", os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("opening the spool blocked on a FIFO")
    assert [e.load() for e in opened[0]] == [b"good"]
    assert spool.foreign_files == 5 and spool.corrupt_files == 0
    assert sorted(p.name for p in spool_dir.glob("*.foreign")) == [
        f"0000000000000000000{i}.rwp.foreign" for i in range(2, 7)
    ]
    assert (elsewhere / "target.rwp").exists(), "the link's target is left alone"
    assert "FIFO" in caplog.text and "symbolic link" in caplog.text


def test_a_file_replaced_by_a_link_while_waiting_is_set_aside_unread(tmp_path: Path) -> None:
    drops = DropLog()
    store = buffer(tmp_path / "spool", drops=drops)
    store.put(payload("first"))
    store.put(payload("second", samples=6))
    victim = sorted((tmp_path / "spool").glob("*.rwp"))[1]
    victim.unlink()
    os.symlink("/dev/null", victim)
    assert send_all(store) == [b"first"]
    assert drops.reasons() == ["corrupt"] and drops.events[0][1] == 6
    assert store.spool.foreign_files == 1
    assert Path(str(victim) + ".foreign").is_symlink()


HOLDER = """
import sys, time
from monitoring_client.spool_files import Spool
Spool(sys.argv[1], max_bytes=10**9, max_age_s=0).open()
print("holding", flush=True)
time.sleep(60)
"""


def hold(directory: Path) -> subprocess.Popen[str]:
    """Another process holding ``directory`` as its spool (kill it to let go)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(directory)], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
    return holder


def test_a_directory_held_by_another_process_is_refused_naming_the_holder(tmp_path: Path) -> None:
    holder = hold(tmp_path)
    try:
        (tmp_path / "00000000000000000001.rwp").write_bytes(encode_file(b"theirs", 1, 0))
        with pytest.raises(spool_mod.SpoolInUse) as refused:
            make(tmp_path).open()
        message = str(refused.value)
        assert f"SPOOL_DIR={tmp_path} is in use by another monitoring-client (pid {holder.pid} on host " in message
        assert refused.value.exit_status == 2 and "\n" not in message
        assert (tmp_path / "00000000000000000001.rwp").exists(), "the holder's files are left alone"
    finally:
        holder.kill()
        holder.wait()
    assert [e.load() for e in make(tmp_path).open()] == [b"theirs"], "free again once the holder is gone"


def test_a_directory_usable_only_later_is_never_written_beside_another_client(tmp_path: Path) -> None:
    blocker = tmp_path / "not-yet"
    blocker.write_text("a file where the directory's parent should be")
    spool = make(blocker / "spool")
    with pytest.raises(SpoolError):
        spool.open()
    spool.mark_unusable()  # what SpoolStore does: memory only, writes tried again
    blocker.unlink()
    holder = hold(blocker / "spool")  # meanwhile another client took the directory
    try:
        assert spool.put(b"mine", 1).path is None, "kept in memory, not written beside the holder's files"
    finally:
        holder.kill()
        holder.wait()
    assert spool.put(b"mine again", 1).path is not None, "written once the directory is free"


def test_a_replayed_request_knows_its_series_and_a_refusal_says_so(receiver: Any, tmp_path: Path) -> None:
    """Replayed requests were logged as "(0 series)": the file header only holds the sample count."""
    spool_dir = tmp_path / "spool"
    key = (("__name__", "t_seq"), ("host", "h"))
    (batch,) = Encoder().encode(
        {key: SeriesSamples([TS, TS + 1], [1.0, 2.0]), (*key, ("x", "1")): SeriesSamples([TS], [3.0])}
    )
    first = buffer(spool_dir)
    first.put(batch)
    first.drain()
    second = buffer(spool_dir)
    replayed = second.take(timeout=0)
    assert replayed is not None and (replayed.samples, replayed.series, replayed.oldest_ms) == (3, 2, TS)
    assert replayed.maybe_stored, "a previous run may have sent it before it could remove the file"
