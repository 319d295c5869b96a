"""The ``energy-report`` command: ``measure``, ``window`` and ``export``.

Configuration is checked once, before any work (and before ``measure`` runs the command), and every problem
the tool expects ends in one line on standard error and a documented exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from energy_report import __version__, render, stats
from energy_report.api import DEFAULT_WAIT_S, EnergyWindow
from energy_report.errors import EXIT_INTERNAL, ReportError, UsageError
from energy_report.export import export_csv
from energy_report.progress import Progress
from energy_report.report import Reporter, WindowReport
from energy_report.samples import DEFAULT_TARGET_SAMPLES
from energy_report.server import DEFAULT_URL, Connection, PromServer
from energy_report.timeparse import TIME_FORMATS, parse_time
from energy_report.windows_file import read_windows

EPILOG = f"""\
times: {TIME_FORMATS}.
selectors: --match '{{host="lab-7"}}' (repeatable; every matcher must hold).
environment: PROMETHEUS_URL, PROMETHEUS_USERNAME, PROMETHEUS_PASSWORD_FILE, PROMETHEUS_BEARER_TOKEN_FILE,
  PROMETHEUS_CA_FILE, PROMETHEUS_CERT_FILE, PROMETHEUS_KEY_FILE, ENERGY_REPORT_WRITE_URL (options win).
exit status: 0 report written; 2 bad command line, time, selector or file; 3 server unreachable, refusing or
  failing (or a missing optional package); 4 no matching series or no data in the window; 1 a bug.
  measure exits with the command's own status (126 not executable, 127 not found, 128+N killed by signal
  N); when the command succeeded but the report failed, with the report's status.
"""


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name, "").strip()
    return Path(value) if value else None


def _common(parser: argparse.ArgumentParser, *, report_outputs: bool = True) -> None:
    server = parser.add_argument_group("server")
    server.add_argument(
        "--prometheus",
        metavar="URL",
        default=os.environ.get("PROMETHEUS_URL") or DEFAULT_URL,
        help="Prometheus or VictoriaMetrics base URL (PROMETHEUS_URL; default %(default)s)",
    )
    server.add_argument("--username", default=os.environ.get("PROMETHEUS_USERNAME") or None, help="basic auth user")
    server.add_argument("--password-file", type=Path, default=_env_path("PROMETHEUS_PASSWORD_FILE"), metavar="FILE")
    server.add_argument(
        "--bearer-token-file", type=Path, default=_env_path("PROMETHEUS_BEARER_TOKEN_FILE"), metavar="FILE"
    )
    server.add_argument(
        "--ca-file", type=Path, default=_env_path("PROMETHEUS_CA_FILE"), metavar="FILE", help="CA of an https server"
    )
    server.add_argument("--cert-file", type=Path, default=_env_path("PROMETHEUS_CERT_FILE"), metavar="FILE")
    server.add_argument("--key-file", type=Path, default=_env_path("PROMETHEUS_KEY_FILE"), metavar="FILE")
    server.add_argument("--timeout-s", type=float, default=30.0, metavar="S", help="per request (default 30)")
    select = parser.add_argument_group("selection and output")
    select.add_argument(
        "--match",
        action="append",
        default=[],
        metavar="SELECTOR",
        help="label matchers such as '{host=\"lab-7\"}' (repeatable, all must hold)",
    )
    if report_outputs:
        select.add_argument("--json", metavar="FILE", help="write the report as JSON ('-' for standard output)")
        select.add_argument("--csv", metavar="FILE", help="write one row per window and series ('-' for stdout)")
        select.add_argument("--plot", metavar="FILE.png", help="draw power per zone (needs energy-report[plot])")
    select.add_argument("-q", "--quiet", action="store_true", help="no table and no progress on the terminal")
    select.add_argument(
        "--chunk-samples",
        type=int,
        default=DEFAULT_TARGET_SAMPLES,
        metavar="N",
        help="samples to ask the server for per query (default %(default)s)",
    )


DESCRIPTION = "Exact joules per run from the power-monitoring stack's counters in Prometheus."


def build_parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser("energy-report", description=DESCRIPTION, epilog=EPILOG, formatter_class=formatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    parser.add_argument("--version", action="version", version=f"energy-report {__version__}")

    measure = sub.add_parser(
        "measure",
        help="run a command and report the energy of its run",
        description="Run CMD, wait until every matching series has data past its end, report that window, and "
        "exit with CMD's status.",
        usage="energy-report measure [--name NAME] [--wait-s S] [--write-url URL] [options] -- CMD [ARGS...]",
        epilog=EPILOG,
        formatter_class=formatter,
    )
    measure.add_argument("--name", default="", help="the window's name (in the report and the annotation)")
    measure.add_argument(
        "--wait-s",
        type=float,
        default=DEFAULT_WAIT_S,
        metavar="S",
        help="wait at most this long for data past the end (default %(default)g)",
    )
    measure.add_argument(
        "--write-url",
        default=os.environ.get("ENERGY_REPORT_WRITE_URL") or None,
        metavar="URL",
        help="record the window there by remote write (e.g. http://127.0.0.1:9090/api/v1/write)",
    )
    _common(measure)
    measure.add_argument("cmd", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)

    window = sub.add_parser(
        "window",
        help="report a past window, or many runs from a CSV file",
        description="Report the energy of a past window (--start/--end), or of many runs (--windows) with "
        "per-zone statistics across them.",
        epilog=EPILOG,
        formatter_class=formatter,
    )
    window.add_argument("--start", metavar="T", help="window start")
    window.add_argument("--end", metavar="T", default=None, help="window end (default now)")
    window.add_argument("--name", default="", help="the window's name in the report")
    window.add_argument("--windows", type=Path, metavar="FILE.csv", help="runs to report: columns name,start,end")
    _common(window)

    export = sub.add_parser(
        "export",
        help="write every raw sample of a window to CSV",
        description="Write every raw sample of the matching energy and power series (--all-metrics: every "
        "metric of those clients), exactly as stored, to CSV (streamed in chunks: bounded memory for any window).",
        epilog=EPILOG,
        formatter_class=formatter,
    )
    export.add_argument("--start", metavar="T", required=True, help="window start")
    export.add_argument("--end", metavar="T", default=None, help="window end (default now)")
    export.add_argument("--csv", metavar="FILE", required=True, help="output file ('-' for standard output)")
    export.add_argument(
        "--all-metrics",
        action="store_true",
        help="every metric of the matching clients (<prefix>_*), not only energy and power",
    )
    _common(export, report_outputs=False)
    return parser


def connection(args: argparse.Namespace) -> Connection:
    conn = Connection(
        url=args.prometheus,
        username=args.username,
        password_file=args.password_file,
        bearer_token_file=args.bearer_token_file,
        ca_file=args.ca_file,
        cert_file=args.cert_file,
        key_file=args.key_file,
        timeout_s=args.timeout_s,
    )
    conn.validate()
    if args.chunk_samples < 1:
        raise UsageError("--chunk-samples must be at least 1")
    return conn


def _outputs(args: argparse.Namespace, windows: list[WindowReport], multi: bool, server_url: str) -> None:
    table_stream = sys.stderr if "-" in (args.json, args.csv) else sys.stdout
    zone_stats = stats.zone_statistics(windows) if multi else None
    total_stats = stats.total_statistics(windows) if multi else None
    warnings: list[str] = []
    if args.plot:
        from energy_report.plot import plot_windows

        warnings = plot_windows(windows, args.plot)
    if args.json:
        doc = render.document(
            windows, server_url=server_url, matchers=args.match, zone_stats=zone_stats, total_stats=total_stats
        )
        render.write_json(args.json, doc)
    if args.csv:
        render.write_report_csv(args.csv, windows)
    if not args.quiet:
        text = "\n\n".join(render.window_table(w) for w in windows)
        if zone_stats is not None and total_stats is not None:
            text += "\n\n" + render.statistics_table(zone_stats, total_stats)
        print(text, file=table_stream, flush=True)
    for warning in warnings:
        print(f"energy-report: warning: {warning}", file=sys.stderr)


def _check_plot_extra(args: argparse.Namespace) -> None:
    if getattr(args, "plot", None):
        from energy_report.plot import _pyplot

        _pyplot()  # fail before the work, not after it


def cmd_window(args: argparse.Namespace) -> int:
    conn = connection(args)
    _check_plot_extra(args)
    now = time.time()
    if args.windows:
        if args.start or args.end:
            raise UsageError("--windows and --start/--end exclude each other")
        runs = read_windows(args.windows, now)
    else:
        if not args.start:
            raise UsageError("window needs --start T (and --end T, default now), or --windows FILE.csv")
        start = parse_time(args.start, "--start", now=lambda: now)
        end = parse_time(args.end or "now", "--end", now=lambda: now)
        runs = [(args.name, start, end)]
    server = PromServer(conn)
    progress = Progress(enabled=not args.quiet)
    try:
        reporter = Reporter(
            server, args.match, progress=progress, keep_power=bool(args.plot), target_samples=args.chunk_samples
        )
        windows = [reporter.report(name, start, end) for name, start, end in runs]
    finally:
        server.close()
    _outputs(args, windows, multi=bool(args.windows), server_url=conn.url)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    conn = connection(args)
    now = time.time()
    start = parse_time(args.start, "--start", now=lambda: now)
    end = parse_time(args.end or "now", "--end", now=lambda: now)
    server = PromServer(conn)
    progress = Progress(enabled=not args.quiet)
    try:
        result = export_csv(
            server,
            args.match,
            start,
            end,
            args.csv,
            progress=progress,
            target_samples=args.chunk_samples,
            all_metrics=args.all_metrics,
        )
    finally:
        server.close()
    if not args.quiet:
        where = "standard output" if args.csv == "-" else args.csv
        print(
            f"energy-report: exported {result.rows:,} samples of {result.series} series to {where} "
            f"in {result.chunks} queries",
            file=sys.stderr,
        )
    return 0


def run_command(argv: Sequence[str], *, stdout_to_stderr: bool = False) -> int:
    """Run CMD with this terminal; Ctrl-C goes to it (not to us), SIGTERM is passed on. Shell-style status.

    ``stdout_to_stderr``: the report owns standard output (``--json -``), so CMD's output goes to stderr.
    """
    try:
        child = subprocess.Popen(list(argv), stdout=sys.stderr.fileno() if stdout_to_stderr else None)
    except FileNotFoundError:
        print(f"energy-report: {argv[0]}: command not found", file=sys.stderr)
        return 127
    except PermissionError:
        print(f"energy-report: {argv[0]}: not executable", file=sys.stderr)
        return 126
    except OSError as exc:
        print(f"energy-report: {argv[0]}: cannot run it ({exc.strerror})", file=sys.stderr)
        return 126

    def forward(signum: int, _frame: FrameType | None) -> None:
        child.send_signal(signum)

    previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    previous_term = signal.signal(signal.SIGTERM, forward)
    try:
        status = child.wait()
    finally:
        signal.signal(signal.SIGINT, previous_int)
        signal.signal(signal.SIGTERM, previous_term)
    return 128 - status if status < 0 else status


def cmd_measure(args: argparse.Namespace) -> int:
    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        raise UsageError("measure needs a command: energy-report measure [options] -- CMD [ARGS...]")
    conn = connection(args)
    _check_plot_extra(args)
    if args.wait_s < 0:
        raise UsageError("--wait-s must be >= 0")
    probe = PromServer(conn)
    try:
        probe.query("vector(1)", time.time())  # an unreachable or refusing server fails before the experiment
    finally:
        probe.close()
    window = EnergyWindow(
        args.name,
        prometheus=conn,
        match=args.match,
        wait_s=args.wait_s,
        write_url=args.write_url,
        progress=Progress(enabled=not args.quiet),
        keep_power=bool(args.plot),
    )
    window.begin()
    status = run_command(cmd, stdout_to_stderr="-" in (args.json, args.csv))
    try:
        report = window.end()
    except ReportError as exc:
        print(f"energy-report: {exc}", file=sys.stderr)
        return status if status != 0 else exc.exit_status
    report.command = cmd
    report.exit_status = status
    try:
        _outputs(args, [report], multi=False, server_url=conn.url)
    except ReportError as exc:
        print(f"energy-report: {exc}", file=sys.stderr)
        return status if status != 0 else exc.exit_status
    return status


COMMANDS = {"measure": cmd_measure, "window": cmd_window, "export": cmd_export}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ReportError as exc:
        print(f"energy-report: {exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print("energy-report: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of our standard output went away (| head): stop quietly, as shells do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except Exception:  # noqa: BLE001 - a bug: show it, with the status that says so
        import traceback

        traceback.print_exc()
        return EXIT_INTERNAL


def main_exit() -> None:
    sys.exit(main())
