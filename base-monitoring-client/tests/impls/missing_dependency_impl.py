import a_dependency_that_is_not_installed  # noqa: F401


def get_power(output_queue, scrape_interval_s, stop_event):
    pass


def process_data(input_queue, output_queue, stop_event):
    pass
