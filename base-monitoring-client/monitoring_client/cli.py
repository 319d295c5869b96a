"""The ``monitoring-client`` command: configure, load the implementation, run, exit with a clear status.

Exit statuses: 0 clean stop (also after SIGTERM/SIGINT), 1 crash (traceback logged), 2 configuration
error, 3 environment problem. A ``UserError`` (2 or 3) is printed to stderr as-is, without a traceback,
whether it comes from the configuration, from importing the implementation or from its threads.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from types import FrameType

from monitoring_client import __version__
from monitoring_client.config import load_config
from monitoring_client.errors import UserError
from monitoring_client.impl_loader import load_impl
from monitoring_client.pipeline import Pipeline

log = logging.getLogger("monitoring_client")

EPILOG = """\
Configured through environment variables (REMOTE_WRITE_URL, SCRAPE_INTERVAL_S, PUSH_INTERVAL_S,
MONITOR_IMPL, ...); see the package README for every variable and its default.
Exit status: 0 clean stop, 1 crash, 2 configuration error, 3 environment problem."""


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="monitoring-client",
        description="Run a monitor implementation and push its samples to a Prometheus remote-write receiver.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"monitoring-client {__version__}")
    parser.add_argument(
        "--check",
        action="store_true",
        help="validate the configuration and load the implementation, then exit (0 when all is well)",
    )
    return parser.parse_args(argv)


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def tune_switch_interval(scrape_interval_s: float) -> float:
    """Let a sampling thread that wakes every few milliseconds get the interpreter lock back in time.

    All threads of the client share one interpreter lock. A thread that wakes up while another one runs
    Python code (the batcher encoding, the processor building records) waits until that one is made to
    let go, after the switch interval: 5 ms by default, longer than a 1 kHz tick, so ticks were missed.
    For short sampling intervals the switch interval is set to a twentieth of it (not below 0.1 ms, where
    the switching itself starts to cost). Returns the value in force.
    """
    current = sys.getswitchinterval()
    wanted = max(1e-4, scrape_interval_s / 20)
    if wanted < current:
        sys.setswitchinterval(wanted)
    return sys.getswitchinterval()


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Entry point; returns the exit status instead of exiting, so tests can call it."""
    args = _parse_args(argv)
    env = os.environ if environ is None else environ
    try:
        config = load_config(env)
    except UserError as exc:
        print(exc, file=sys.stderr)
        return exc.exit_status
    _setup_logging(config.log_level)
    tune_switch_interval(config.scrape_interval_s)

    try:
        impl = load_impl(config.monitor_impl)
        pipeline = Pipeline(config, impl)
    except UserError as exc:
        print(exc, file=sys.stderr)
        return exc.exit_status
    except Exception:
        log.exception("could not load the implementation MONITOR_IMPL=%r", config.monitor_impl)
        return 1
    if args.check:
        print(f"configuration OK; implementation {impl.__name__} from {getattr(impl, '__file__', '?')}")
        return 0
    # Everything allocated so far (modules, the implementation, the pipeline) lives as long as the process:
    # keep it out of the cyclic garbage collector's full passes, which would otherwise walk all of it again
    # every few minutes for nothing.
    gc.freeze()

    signals_seen = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        signals_seen.append(name)
        if len(signals_seen) > 1:
            # Quit at once, but say what it costs (with a spool, what can be kept is kept on disk).
            log.error("%s", pipeline.abort(f"second {name}"))
            log.info("stopped: %s", pipeline.summary())
            logging.shutdown()
            os._exit(1)
        pipeline.request_stop(name)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)

    try:
        status = pipeline.run()
    except UserError as exc:  # e.g. the spool directory is held by another client: nothing was started
        pipeline.close()
        print(exc, file=sys.stderr)
        return exc.exit_status
    log.info("stopped: %s", pipeline.summary())
    if pipeline.fatal_message and status not in (0, 1):
        print(pipeline.fatal_message, file=sys.stderr)
    return status


def main_exit() -> None:
    """Console-script entry point: ``sys.exit(main())``."""
    sys.exit(main())
