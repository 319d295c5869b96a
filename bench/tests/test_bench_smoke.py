"""The benchmark harness in its shortest mode, so that it cannot rot unnoticed.

It asserts only that every section ran and produced tables whose numbers are plausible (present, finite,
non-negative, the main figures non-zero): never a speed threshold, since tests must not depend on the
machine's speed or load. Needs the real Prometheus binary (skips without it) and both packages installed.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from testkit.prometheus import find_prometheus

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


def _tables(markdown: str) -> dict[str, list[list[str]]]:
    """Every markdown table under a '### title', as rows of cells (header row first)."""
    tables: dict[str, list[list[str]]] = {}
    title = None
    for line in markdown.splitlines():
        if line.startswith("### "):
            title = line[4:].strip()
            tables[title] = []
        elif title and line.startswith("|") and not line.startswith("|---"):
            tables[title].append([c.strip() for c in line.strip().strip("|").split("|")])
    return tables


def _number(cell: str) -> float:
    match = re.match(r"^-?[\d,]+(\.\d+)?", cell)
    assert match, f"not a number: {cell!r}"
    return float(match.group(0).replace(",", ""))


def _column(table: list[list[str]], name: str) -> list[float]:
    header = table[0]
    matches = [i for i, h in enumerate(header) if h.startswith(name)]
    assert matches, f"no column {name!r} in {header}"
    return [_number(row[matches[0]]) for row in table[1:]]


@pytest.mark.skipif(find_prometheus() is None, reason="Prometheus binary not found (./run-tests.sh installs it)")
def test_smoke_run_produces_every_table(tmp_path: Path) -> None:
    output = tmp_path / "BENCHMARKS.md"
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--smoke", "--quiet", "--output", str(output)],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    text = output.read_text()
    assert "FAILED" not in text
    for fact in ("date (UTC)", "command", "machine", "Prometheus"):
        assert f"| {fact} |" in text
    tables = _tables(text)

    encoder = tables["Encoder throughput (samples/s on one core, higher is better)"]
    for col in ("encode", "records -> body", "naive"):
        assert all(math.isfinite(v) and v > 0 for v in _column(encoder, col))

    cpu = next(t for name, t in tables.items() if name.startswith("CPU per sampling tick"))
    measured = [row for row in cpu[1:] if row[1].endswith(" Hz") and not row[0].startswith("start-up")]
    rates = [cpu[0], *measured]
    idle = [row for row in cpu[1:] if row[0].startswith("idle")]
    startup = [row for row in cpu[1:] if row[0].startswith("start-up")]
    assert len(measured) >= 1 and len(idle) == 1 and len(startup) == 1
    # the device clients are measured beside cpu-pyjoules (gpu-nvml only where a C compiler builds its stand-in)
    assert {row[0] for row in measured} >= {"cpu-pyjoules", "jetson-ina3221"}
    assert all(math.isfinite(v) and v > 0 for v in _column([cpu[0], *idle, *startup], "client: µs/tick"))
    for col in ("client: µs/tick", "seed method", "seed / client", "switches/tick client", "switches/tick seed"):
        assert all(math.isfinite(v) and v > 0 for v in _column(rates, col))
    windows = tables["Windows"]
    assert all(v > 0 for v in _column(windows, "ours: ticks")) and all(v > 0 for v in _column(windows, "seed: ticks"))

    threads = tables["cpu-pyjoules: µs of CPU per sampling tick, by thread"]
    assert all(math.isfinite(v) and v > 0 for v in _column(threads, "total"))
    assert all(v > 0 for v in _column(threads, "get_power"))
    assert all(v > 0 for v in _column(threads, "context switches per tick"))

    schedule = next(t for name, t in tables.items() if name.startswith("Sampling schedule"))
    assert all(v > 0 for v in _column(schedule, "achieved Hz"))
    assert all(math.isfinite(v) and v >= 0 for v in _column(schedule, "lateness p99"))

    stored = next(t for name, t in tables.items() if name.startswith("Samples stored"))
    assert all(v > 0 for v in _column(stored, "produced"))
    assert all(v > 0 for v in _column(stored, "stored"))

    fleet = next(t for name, t in tables.items() if name.startswith("Fleet"))
    assert all(v > 0 for v in _column(fleet, "produced"))
    assert all(v > 0 for v in _column(fleet, "CPU per client"))

    memory = next(t for name, t in tables.items() if name.startswith("Client RSS"))
    assert all(v > 0 for v in _column(memory, "steady"))

    transport = next(t for name, t in tables.items() if name.startswith("Cost per push by transport security"))
    assert [row[0] for row in transport[1:]] == [
        m for m in ("plain HTTP", "TLS", "TLS + basic auth", "mutual TLS") for _ in (0, 1)
    ]
    assert all(math.isfinite(v) and v > 0 for v in _column(transport, "client CPU per request"))
    assert all(row[-1] == "yes" for row in transport[1:]), transport

    churn = next(t for name, t in tables.items() if name.startswith("Label churn"))
    assert len(churn) == 3, "the churning client and its baseline"
    assert all(v > 0 for v in _column(churn, "series created"))
    assert all(math.isfinite(v) and v > 0 for v in _column(churn, "at the end"))
