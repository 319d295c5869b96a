"""``export``: every raw sample of the clients' series in a window, as stored, into CSV.

By default the contract's two metrics of every matching client (``<prefix>_energy_joules_total`` and
``<prefix>_power_watts``); with ``all_metrics`` every metric of those clients' prefixes (the seed's
``_energy_uj``, a board's volts and amperes). ``__name__`` matchers in ``--match`` narrow either set.

Rows are streamed chunk by chunk (see ``samples``), so memory stays bounded for any window: a chunk is
written before the next one is asked for. Columns: ``timestamp`` (Unix seconds with the store's millisecond
resolution), ``metric``, ``value`` (exactly the text the server returned, so nothing is rounded), then one
column per label name found in the window (empty where a series lacks it). Rows come chunk by chunk (time
spans), grouped by series inside a chunk, in time order per series. pandas reads the file as it is:
``pd.read_csv(path)``; ``pd.to_datetime(df.timestamp, unit="s")`` gives times.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass

from energy_report import contract
from energy_report.errors import NoDataError
from energy_report.progress import Progress
from energy_report.render import FIRST_LABELS, open_output
from energy_report.report import Reporter
from energy_report.samples import DEFAULT_TARGET_SAMPLES, iter_chunks, to_ms
from energy_report.server import PromServer
from energy_report.timeparse import format_time


@dataclass
class ExportResult:
    rows: int
    series: int
    chunks: int


def export_selector(prefixes: Sequence[str], matchers: Sequence[str], *, all_metrics: bool = False) -> str:
    """The contract's two metrics of the clients' prefixes, or every ``<prefix>_*`` metric of theirs."""
    names = "|".join(sorted(set(prefixes)))
    suffixes = ".+" if all_metrics else f"({contract.ENERGY_SUFFIX[1:]}|{contract.POWER_SUFFIX[1:]})"
    return "{" + ",".join([f'__name__=~"({names})_{suffixes}"', *matchers]) + "}"


def export_csv(
    server: PromServer,
    matchers: Sequence[str],
    start: float,
    end: float,
    target: str,
    *,
    progress: Progress | None = None,
    target_samples: int = DEFAULT_TARGET_SAMPLES,
    all_metrics: bool = False,
) -> ExportResult:
    """Write the samples with ``start <= t <= end``; returns how many rows, series and queries it took.

    ``matchers`` are ``--match`` values; label matchers find the clients (through their energy counters),
    ``__name__`` matchers narrow the metrics exported.
    """
    progress = progress or Progress(enabled=False)
    labels_only, name_matchers = contract.split_name_matchers(contract.check_matchers(matchers, allow_name=True))
    reporter = Reporter(server, [f"{{{m}}}" for m in labels_only], progress=progress)
    prefixes = [contract.prefix_of(s["__name__"]) for s in reporter.discover(start, end)]
    selector = export_selector(prefixes, [*labels_only, *name_matchers], all_metrics=all_metrics)
    found = server.series(selector, start, end)
    if not found:
        raise NoDataError(f"no series matches {selector} between {format_time(start)} and {format_time(end)}")
    names = sorted({k for labels in found for k in labels if k != "__name__"})
    label_names = [n for n in FIRST_LABELS if n in names] + [n for n in names if n not in FIRST_LABELS]
    start_ms, end_ms = to_ms(start), to_ms(end)
    rows = chunks = 0
    seen: set[contract.SeriesKey] = set()
    with open_output(target, "--csv") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["timestamp", "metric", "value", *label_names])
        for chunk in iter_chunks(server, selector, start_ms - 1, end_ms, target_samples=target_samples):
            chunks += 1
            written = 0
            for key, samples in chunk.series.items():
                seen.add(key)
                labels = dict(key)
                extra = [k for k in labels if k != "__name__" and k not in label_names]
                if extra:  # a label that appeared after the header was written: keep the file rectangular
                    progress.note(f"energy-report: warning: label(s) {', '.join(extra)} not in the header, dropped")
                tail = [labels.get(n, "") for n in label_names]
                metric = labels["__name__"]
                writer.writerows([f"{t_ms / 1000:.3f}", metric, value, *tail] for t_ms, value in samples)
                written += len(samples)
            rows += written
            share = (chunk.hi_ms - start_ms) / max(1, end_ms - start_ms)
            progress.update(f"energy-report: export {share:4.0%} ({rows:,} rows, {chunks} queries)")
    progress.done()
    return ExportResult(rows=rows, series=len(seen), chunks=chunks)
