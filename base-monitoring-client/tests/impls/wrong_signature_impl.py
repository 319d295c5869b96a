def get_power(output_queue):
    pass


def process_data(input_queue, output_queue, stop_event):
    pass
