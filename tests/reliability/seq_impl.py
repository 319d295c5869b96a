"""A monitoring implementation that makes losses and duplicates countable, written from the seed contract only.

Every tick it emits one sample for each of ``SEQ_SERIES`` series ``reliability_sequence{k="0".."N-1"}``
whose value is the tick's sequence number (1, 2, 3...). Prometheus then holds, per series, a set of
sequence numbers: a missing number is a lost sample, a number seen twice is a duplicate. The number of
ticks produced so far is written to the ledger file ``SEQ_LEDGER`` *before* each tick is handed over, so a
process killed with SIGKILL leaves behind how much it produced, and a restarted process continues the
sequence where the previous one stopped (like a real counter would).

It uses nothing from the base package on purpose: it stands for a third-party client that only knows
``get_power(output_queue, scrape_interval_s, stop_event)`` and ``process_data(input_queue, output_queue,
stop_event)`` and the record dict.

Its own variables (read when the module is imported):
    SEQ_LEDGER              path of the ledger file (required)
    SEQ_SERIES              number of series (default 3)
    SEQ_METRIC              metric name (default reliability_sequence)
    SEQ_TICKS               stop producing after this many ticks in total, 0 = never (default 0)
    SEQ_CLOCK_STEP_BACK_S   seconds the wall clock jumps back ... (default 0 = never)
    SEQ_CLOCK_STEP_AT_TICK  ... after this tick
    SEQ_BAD_EVERY           every N ticks, process_data also emits one bad item of each kind (default 0)
    SEQ_ANCIENT_AT_TICK     at this tick, also emit one sample two days old (series ``<metric>_bad_time``)
    SEQ_FUTURE_AT_TICK      at this tick, also emit one sample ten years ahead (same series)
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from pathlib import Path
from typing import Any

SERVICE_NAME = "reliability-seq"

LEDGER = Path(os.environ["SEQ_LEDGER"])
SERIES = int(os.environ.get("SEQ_SERIES", "3"))
METRIC = os.environ.get("SEQ_METRIC", "reliability_sequence")
TICKS = int(os.environ.get("SEQ_TICKS", "0"))
STEP_BACK_MS = int(float(os.environ.get("SEQ_CLOCK_STEP_BACK_S", "0")) * 1000)
STEP_AT_TICK = int(os.environ.get("SEQ_CLOCK_STEP_AT_TICK", "0"))
BAD_EVERY = int(os.environ.get("SEQ_BAD_EVERY", "0"))
ANCIENT_AT_TICK = int(os.environ.get("SEQ_ANCIENT_AT_TICK", "0"))
FUTURE_AT_TICK = int(os.environ.get("SEQ_FUTURE_AT_TICK", "0"))
DAY_MS = 86_400_000


def bad_items(ts: int) -> list[Any]:
    """One of each kind of bad item an implementation might emit by mistake; each has exactly one fault
    (a valid timestamp otherwise), so the base must drop each for its own reason and count it."""
    bad = METRIC + "_bad"
    return [
        "not a dict",
        {"metric": bad, "labels": {}, "value": 1.0},  # no timestamp_ms
        {"metric": bad, "labels": {}, "value": "NaN-ish", "timestamp_ms": ts},
        {"metric": "0-invalid name", "labels": {}, "value": 1.0, "timestamp_ms": ts},
        {"metric": bad, "labels": {"bad-label": "x"}, "value": 1.0, "timestamp_ms": ts},
    ]


def read_ledger(path: Path = LEDGER) -> dict[str, int]:
    """Ticks produced and bad items emitted so far (zeros when there is no ledger yet)."""
    try:
        data = json.loads(path.read_text())
        return {"ticks": int(data.get("ticks", 0)), "bad": int(data.get("bad", 0))}
    except (OSError, ValueError):
        return {"ticks": 0, "bad": 0}


_state = read_ledger()
_lock = threading.Lock()  # both threads update the ledger


def _bump(key: str, by: int) -> int:
    """Add to a ledger count and persist it; a reader (or a SIGKILL) never sees half a file."""
    with _lock:
        _state[key] += by
        tmp = LEDGER.with_suffix(".tmp")
        tmp.write_text(json.dumps(_state))
        os.replace(tmp, LEDGER)
        return _state[key]


def get_power(output_queue: queue.Queue[Any], scrape_interval_s: float, stop_event: Any) -> None:
    """Emit one record per series each tick on an absolute schedule until stopped (or SEQ_TICKS reached)."""
    labels = [{"k": str(i)} for i in range(SERIES)]
    next_tick = time.monotonic()
    last_ts = 0
    while not stop_event.is_set():
        if TICKS and _state["ticks"] >= TICKS:
            stop_event.wait(0.2)
            continue
        # Strictly increasing per series, as the contract needs: two ticks never share a millisecond,
        # even when a loaded machine runs this thread late.
        ts = max(int(time.time() * 1000), last_ts + 1)
        last_ts = ts
        seq = _bump("ticks", 1)  # counted before the hand-over: a kill right after it is a counted loss
        if STEP_BACK_MS and seq > STEP_AT_TICK:
            ts -= STEP_BACK_MS
        records = [{"metric": METRIC, "labels": dict(lab), "value": float(seq), "timestamp_ms": ts} for lab in labels]
        # Samples stamped far from the clock, in a series of their own (not counted as ticks): a receiver
        # must never see them, and the good samples beside them must all arrive.
        for at, offset in ((ANCIENT_AT_TICK, -2 * DAY_MS), (FUTURE_AT_TICK, 3650 * DAY_MS)):
            if at and seq == at:
                records.append(
                    {"metric": METRIC + "_bad_time", "labels": {}, "value": 1.0, "timestamp_ms": ts + offset}
                )
        output_queue.put(records)
        # Absolute schedule; when late, skip to the next slot instead of bursting to catch up.
        next_tick += scrape_interval_s
        now = time.monotonic()
        if next_tick < now:
            next_tick = now + scrape_interval_s
        stop_event.wait(next_tick - now)


def process_data(input_queue: queue.Queue[Any], output_queue: queue.Queue[Any], stop_event: Any) -> None:
    """Pass ticks through; every SEQ_BAD_EVERY ticks add the bad items. Returns once stopped and drained."""
    seen = 0
    while True:
        try:
            item = input_queue.get(timeout=0.05)
        except queue.Empty:
            if stop_event.is_set():
                return
            continue
        output_queue.put(item)
        seen += 1
        if BAD_EVERY and seen % BAD_EVERY == 0:
            items = bad_items(int(time.time() * 1000))
            _bump("bad", len(items))
            for bad in items:
                output_queue.put(bad)
