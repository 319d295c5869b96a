"""``--windows FILE.csv``: many runs at once, one per row with columns ``name,start,end``."""

from __future__ import annotations

import csv
from pathlib import Path

from energy_report.errors import UsageError
from energy_report.timeparse import parse_time

REQUIRED = ("name", "start", "end")


def read_windows(path: Path, now: float) -> list[tuple[str, float, float]]:
    """``(name, start, end)`` per row; times in any accepted format; UsageError naming file and line."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise UsageError(f"--windows {path}: cannot read it ({exc.strerror})") from None
    reader = csv.DictReader(text.splitlines())
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise UsageError(
            f"--windows {path}: the header must name the columns name,start,end (missing: {', '.join(missing)})"
        )
    out: list[tuple[str, float, float]] = []
    for line, row in enumerate(reader, start=2):
        row = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
        if not any(row.values()):
            continue
        where = f"--windows {path} line {line}"
        start = parse_time(row["start"], f"{where}: start", now=lambda: now)
        end = parse_time(row["end"], f"{where}: end", now=lambda: now)
        if not end > start:
            raise UsageError(f"{where}: end must be after start")
        out.append((row["name"] or f"run-{len(out) + 1}", start, end))
    if not out:
        raise UsageError(f"--windows {path}: no windows in it (expected rows name,start,end after the header)")
    return out
