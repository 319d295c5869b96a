"""Load YAML in the stack tests (compose output, provisioning files) without adding a runtime dependency.

PyYAML is used when the test environment has it. Otherwise the YAML is handed to a system Python that has it
(Debian's docker-compose v1 depends on python3-yaml, so wherever the stack tests can run, one exists). Only
when neither exists does the calling test skip, saying why.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from typing import Any

import pytest

_CONVERT = "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)"


def _system_pythons() -> list[str]:
    found = []
    for candidate in ("/usr/bin/python3", shutil.which("python3")):
        if candidate and candidate != sys.executable and candidate not in found:
            found.append(candidate)
    return found


def load_yaml(text: str) -> Any:
    try:
        import yaml  # type: ignore[import-untyped]
    except ImportError:
        pass
    else:
        return yaml.safe_load(text)
    for python in _system_pythons():
        proc = subprocess.run([python, "-c", _CONVERT], input=text, capture_output=True, text=True, timeout=60)
        if proc.returncode == 0:
            return json.loads(proc.stdout)
        if "No module named 'yaml'" not in proc.stderr:
            raise ValueError(f"invalid YAML: {proc.stderr.strip()}")
    pytest.skip("no YAML parser: install PyYAML in the test environment (or python3-yaml)")
