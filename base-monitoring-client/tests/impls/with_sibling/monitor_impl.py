"""An implementation that imports a sibling module: MONITOR_IMPL as a path must make that work."""

from sibling_helper import METRIC  # noqa: F401  (a sibling of this file, found by the loader)


def get_power(output_queue, scrape_interval_s, stop_event):
    stop_event.wait()


def process_data(input_queue, output_queue, stop_event):
    stop_event.wait()
