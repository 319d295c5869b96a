"""Generic Prometheus remote-write client: runs an implementation's collector and processor threads and
ships their records to a remote-write receiver without losing what it can keep.

An implementation is a module with ``get_power(output_queue, scrape_interval_s, stop_event)`` and
``process_data(input_queue, output_queue, stop_event)`` (see README.md); this package does the rest:
validation, ordering, batching, encoding, retries, buffering, self-metrics and a clean shutdown.
"""

from __future__ import annotations

__version__ = "1.0.0"

__all__ = ["__version__"]
