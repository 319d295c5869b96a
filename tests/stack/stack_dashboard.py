"""Read the provisioned Grafana dashboard and datasource the way Grafana would, without Grafana.

Grafana has no package in any registry this project's CI can reach, so its side of the stack is checked
through its inputs: the provisioning YAML, the dashboard JSON, and every PromQL query in it, run against the
real Prometheus with Grafana's variables substituted as Grafana would substitute them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
GRAFANA_DIR = ROOT / "grafana"
DASHBOARD_DIR = GRAFANA_DIR / "dashboards"
DATASOURCE_FILE = GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml"
PROVIDER_FILE = GRAFANA_DIR / "provisioning" / "dashboards" / "power-monitoring.yml"
DATASOURCE_UID = "prometheus"


@dataclass(frozen=True)
class PanelQuery:
    panel: str
    ref_id: str
    unit: str
    expr: str


def load_dashboards() -> dict[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARD_DIR.glob("*.json"))}


def iter_panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # panels inside collapsed rows


def panel_queries(dashboard: Mapping[str, Any]) -> list[PanelQuery]:
    out = []
    for panel in iter_panels(dashboard):
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "")
        for target in panel.get("targets", []):
            out.append(PanelQuery(panel["title"], target["refId"], unit, target["expr"]))
    return out


def variables(dashboard: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(dashboard.get("templating", {}).get("list", []))


def variable_query(variable: Mapping[str, Any]) -> str:
    query = variable.get("query")
    return str(query["query"] if isinstance(query, Mapping) else query)


LABEL_VALUES_RE = re.compile(r"^label_values\(\s*(?:(?P<selector>.+?)\s*,\s*)?(?P<label>[a-zA-Z_]\w*)\s*\)$")


def parse_label_values(query: str) -> tuple[str | None, str]:
    """``label_values(metric{...}, label)`` -> (selector, label); Grafana's only variable syntax used here."""
    match = LABEL_VALUES_RE.match(query.strip())
    if not match:
        raise ValueError(f"not a label_values() query: {query!r}")
    return match.group("selector"), match.group("label")


def regex_for(values: list[str]) -> str:
    """What Grafana substitutes for a multi-value variable inside =~: an alternation of escaped values."""
    escaped = [re.sub(r"([\\.+*?()|\[\]{}^$])", r"\\\\\1", v) for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """Replace ``$name`` and ``${name}`` (longest names first, so $__range is not cut at $__r...)."""
    for name in sorted(values, key=len, reverse=True):
        expr = expr.replace("${" + name + "}", values[name]).replace("$" + name, values[name])
    leftover = re.search(r"\$\{?\w+", expr)
    if leftover:
        raise ValueError(f"unsubstituted variable {leftover.group(0)} in {expr!r}")
    return expr


def datasource_uids(node: Any) -> Iterator[str]:
    """Every datasource uid referenced anywhere in a dashboard (panels, targets, variables)."""
    if isinstance(node, Mapping):
        ds = node.get("datasource")
        if isinstance(ds, Mapping) and "uid" in ds:
            yield str(ds["uid"])
        elif isinstance(ds, str):
            yield ds
        for value in node.values():
            yield from datasource_uids(value)
    elif isinstance(node, list):
        for item in node:
            yield from datasource_uids(item)


FILE_VARIABLE_RE = re.compile(r"\$__file\{([^}]*)\}")
ENV_VARIABLE_RE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def expand_provisioning(value: str, environ: Mapping[str, str], secrets_dir: Path) -> str:
    """A provisioning value as Grafana expands it: ``$__file{/run/secrets/NAME}`` (read from ``secrets_dir``,
    where the test keeps what compose mounts there; Grafana trims the content) then ``${VAR}``/``$VAR``."""

    def read_file(match: re.Match[str]) -> str:
        path = Path(match.group(1))
        assert path.parent == Path("/run/secrets"), f"the datasource reads {path}, which is not a compose secret"
        return (secrets_dir / path.name).read_text().strip()

    value = FILE_VARIABLE_RE.sub(read_file, value)
    return ENV_VARIABLE_RE.sub(lambda m: environ.get(m.group(1) or m.group(2), ""), value)


def provisioned_datasource(environ: Mapping[str, str], secrets_dir: Path) -> dict[str, Any]:
    """The one provisioned datasource with every string value expanded as Grafana would."""

    def expand(node: Any) -> Any:
        if isinstance(node, str):
            return expand_provisioning(node, environ, secrets_dir)
        if isinstance(node, Mapping):
            return {k: expand(v) for k, v in node.items()}
        return node

    (datasource,) = yaml.safe_load(DATASOURCE_FILE.read_text())["datasources"]
    return dict(expand(datasource))
