"""Load YAML in the stack tests (compose output, provisioning files).

PyYAML is a test-only requirement (requirements-test.txt): the shipped packages never parse YAML, and
compose files and Grafana provisioning are YAML, so the tests read them with a real parser.
"""

from __future__ import annotations

from typing import Any

import yaml


def load_yaml(text: str) -> Any:
    return yaml.safe_load(text)
