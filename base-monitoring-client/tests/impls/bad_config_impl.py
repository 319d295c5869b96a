"""An implementation that validates its own variable at import, the way real ones should."""

from monitoring_client.config import env_float

GAIN = env_float("IMPL_GAIN", 1.0, minimum=0)


def get_power(output_queue, scrape_interval_s, stop_event):
    stop_event.wait()


def process_data(input_queue, output_queue, stop_event):
    stop_event.wait()
