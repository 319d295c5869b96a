"""``python -m monitoring_client``: the same as the ``monitoring-client`` command."""

import sys

from monitoring_client.cli import main

sys.exit(main())
