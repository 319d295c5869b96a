"""Load YAML in the stack tests (compose output, provisioning files).

PyYAML is a test-only requirement (requirements-test.txt): the shipped packages never parse YAML, and
compose files and Grafana provisioning are YAML, so the tests read them with a real parser.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml


def load_yaml(text: str) -> Any:
    return yaml.safe_load(text)


INTERPOLATION_RE = re.compile(r"\$\$|\$\{(\w+)(?:(:?-)([^}]*))?\}")


def compose_interpolate(value: str, environ: Mapping[str, str]) -> str:
    """``${VAR}``, ``${VAR:-default}``, ``${VAR-default}`` and ``$$`` as Compose resolves them (the forms the
    stack's files use), for tests that run a service's process outside Docker with the environment Compose
    would give it."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, default = match.group(1), match.group(2), match.group(3) or ""
        value = environ.get(name)
        if op == ":-" and not value:
            return default
        if op == "-" and value is None:
            return default
        return value or ""

    return INTERPOLATION_RE.sub(one, value)
