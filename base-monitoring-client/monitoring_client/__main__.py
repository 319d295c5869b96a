"""``python -m monitoring_client``: the same as the ``monitoring-client`` command."""

from __future__ import annotations

import sys

from monitoring_client.cli import main

sys.exit(main())
