"""Test implementation written only from the seed's contract: emits a known number of samples.

COUNT_SERIES series (metric ``count_impl_value``, label ``series``), one sample per series per tick, every
scrape_interval_s. COUNT_TICKS > 0 stops emitting after that many ticks (then idles until asked to
stop); COUNT_TICKS = 0 emits until stopped. process_data forwards each tick as a list of records and, when it
returns, writes how many records it forwarded to COUNT_LEDGER (if set), so a test knows exactly what to
expect in Prometheus even when the client was stopped mid-run. Values are the tick number, timestamps
are wall-clock milliseconds kept strictly increasing.
"""

import os
import queue
import time

SERVICE_NAME = "counting-impl"
TICKS = int(os.environ.get("COUNT_TICKS", "0"))
SERIES = int(os.environ.get("COUNT_SERIES", "3"))
LEDGER = os.environ.get("COUNT_LEDGER", "")
# At this tick, also emit one sample three hours old in its own series: Prometheus refuses the whole
# request that carries it with HTTP 400 ("out of bounds"), which is how the tests provoke a real 400.
ANCIENT_AT_TICK = int(os.environ.get("COUNT_ANCIENT_AT_TICK", "0"))
# At this tick, also emit one sample ten years ahead in its own series: a Prometheus that stored it would
# move its storage window into the future and refuse every later request as out of bounds.
FUTURE_AT_TICK = int(os.environ.get("COUNT_FUTURE_AT_TICK", "0"))


def get_power(output_queue, scrape_interval_s, stop_event):
    tick = 0
    last_ms = 0
    while not stop_event.is_set() and (TICKS == 0 or tick < TICKS):
        tick += 1
        now_ms = max(int(time.time() * 1000), last_ms + 1)
        last_ms = now_ms
        output_queue.put((tick, now_ms))
        stop_event.wait(scrape_interval_s)
    stop_event.wait()


def process_data(input_queue, output_queue, stop_event):
    forwarded = 0
    while not (stop_event.is_set() and input_queue.empty()):
        try:
            tick, ts = input_queue.get(timeout=0.1)
        except queue.Empty:
            continue
        records = [
            {"metric": "count_impl_value", "labels": {"series": str(s)}, "value": float(tick), "timestamp_ms": ts}
            for s in range(SERIES)
        ]
        if tick == ANCIENT_AT_TICK:
            records.append(
                {"metric": "count_impl_ancient", "labels": {}, "value": 1.0, "timestamp_ms": ts - 3 * 3600 * 1000}
            )
        if tick == FUTURE_AT_TICK:
            records.append(
                {"metric": "count_impl_future", "labels": {}, "value": 1.0, "timestamp_ms": ts + 3650 * 86400 * 1000}
            )
        output_queue.put(records)
        forwarded += len(records)
    if LEDGER:
        with open(LEDGER, "w") as f:
            f.write(str(forwarded))
