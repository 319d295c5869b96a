"""Run the benchmarks, print markdown tables, and write docs/BENCHMARKS.md (from the repository root).

    .venv/bin/python -m bench.run                    # everything, about 25 minutes (the documented run)
    .venv/bin/python -m bench.run --quick            # every section, shortened (a few minutes)
    .venv/bin/python -m bench.run --sections encoder,cpu --quick --output /tmp/b.md

Sections: encoder, cpu, threads, schedule, fleet, memory, churn, export, transport (in that order). Needs the
packages and testkit installed in .venv (./run-tests.sh does it) and a Prometheus binary (PATH or
$PROMETHEUS_BIN). Everything runs on 127.0.0.1; every process started is stopped by PID.
Only a run of all sections writes docs/BENCHMARKS.md by default; a partial run prints its tables (and writes
the file given with --output).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from bench import REPO, report
from bench.context import PLANS, Context, prometheus_binary
from bench.header import run_facts

SECTIONS = ("encoder", "cpu", "threads", "schedule", "fleet", "memory", "churn", "export", "transport")
DEFAULT_OUTPUT = REPO / "docs" / "BENCHMARKS.md"


def run_section(name: str, ctx: Context) -> report.Section:
    """Each section is a module of bench.sections with ``run(ctx) -> Section``."""
    section: report.Section = importlib.import_module(f"bench.sections.{name}").run(ctx)
    return section


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n", 1)[1],
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="every section, shortened (minutes, not half an hour)")
    mode.add_argument("--smoke", action="store_true", help="seconds per section: only proves the harness works")
    parser.add_argument(
        "--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help=f"markdown file to write (default {DEFAULT_OUTPUT.relative_to(REPO)} for a run of every section)",
    )
    parser.add_argument(
        "--workdir", type=Path, default=None, help="keep logs and data here (default: a temporary directory, removed)"
    )
    parser.add_argument("--outage-s", type=float, default=None, help="override the memory section's outage length")
    parser.add_argument("--fleet-sizes", default=None, help="override the fleet sizes, e.g. 100 or 10,50,100")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        print(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}", file=sys.stderr)
        return 2
    if prometheus_binary() is None:
        print("no Prometheus binary: apt-get install prometheus, or set PROMETHEUS_BIN", file=sys.stderr)
        return 3
    plan = PLANS["smoke" if args.smoke else "quick" if args.quick else "full"]
    if args.outage_s is not None:
        plan = dataclasses.replace(plan, mem_outage_s=args.outage_s)
    if args.fleet_sizes:
        plan = dataclasses.replace(plan, fleet_sizes=tuple(int(n) for n in args.fleet_sizes.split(",")))
    output = args.output
    if output is None and set(names) == set(SECTIONS) and plan.mode == "full":
        output = DEFAULT_OUTPUT
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="powermon-bench-"))
    ctx = Context(plan, workdir, verbose=not args.quiet)
    ctx.log(f"mode {plan.mode}, sections {', '.join(names)}, work directory {workdir}")
    started = time.monotonic()
    sections: list[report.Section] = []
    failed = []
    facts = run_facts(prometheus_binary())
    try:
        for name in [s for s in SECTIONS if s in names]:
            ctx.log(f"--- {name}")
            try:
                section = run_section(name, ctx)
            except Exception as exc:  # noqa: BLE001 - report the failure, go on with the other sections
                traceback.print_exc()
                failed.append(name)
                section = report.Section(
                    name, f"{name} (FAILED)", f"This section failed: `{exc!r}`. See the run's log."
                )
            sections.append(section)
            print(section.markdown(), flush=True)
    finally:
        ctx.close()
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    text = report.document(sections, facts, plan.mode, time.monotonic() - started)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text)
        ctx.log(f"wrote {output}")
    targets = [t for s in sections for t in s.targets]
    if targets:
        print("## Targets\n")
        for target, measured, met in targets:
            print(f"- {target}: {measured} -> {'met' if met else 'NOT met' if met is not None else 'n/a in this mode'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
