"""The reference's Grafana dashboard (components/monitoring/dashboard.json, hand-written): its
structural check, and its panel queries for the live check against a Prometheus that scrapes the
reference (scenarios/test_observability.py)."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

from harness.errors import HarnessError

DATASOURCE_VARIABLE = "${datasource}"
GRID_COLUMNS = 24


def of(manifests) -> dict[str, Any]:
    """The dashboard the overlay ships: the ConfigMap labelled grafana_dashboard."""
    for cm in manifests.of_kind("ConfigMap"):
        if (cm["metadata"].get("labels") or {}).get("grafana_dashboard"):
            (text,) = cm["data"].values()
            return json.loads(text)
    raise HarnessError("the overlay ships no Grafana dashboard (a ConfigMap labelled grafana_dashboard)")


def queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL expression) of every target."""
    return [(p.get("title", ""), t["expr"]) for p in dashboard.get("panels", []) for t in p.get("targets", []) if "expr" in t]


def problems(dashboard: dict[str, Any]) -> list[str]:
    """What Grafana would refuse or show wrongly: identity, panel ids and places, datasources, queries."""
    out = []
    if not dashboard.get("uid") or not dashboard.get("title"):
        out.append("the dashboard needs a uid and a title")
    variables = {v.get("name"): v for v in (dashboard.get("templating") or {}).get("list", [])}
    if (variables.get("datasource") or {}).get("query") != "prometheus":
        out.append("no 'datasource' variable of Prometheus data sources to pick from")
    panels = dashboard.get("panels") or []
    if not panels:
        out.append("the dashboard has no panels")
    ids = [p.get("id") for p in panels]
    if len(set(ids)) != len(ids) or None in ids:
        out.append(f"panel ids must be present and unique: {ids}")
    cells: dict[tuple[int, int], str] = {}
    for p in panels:
        title = p.get("title") or f"panel {p.get('id')}"
        grid = p.get("gridPos") or {}
        if not all(isinstance(grid.get(k), int) for k in ("x", "y", "w", "h")) or grid["x"] + grid["w"] > GRID_COLUMNS:
            out.append(f"{title}: gridPos must place it within {GRID_COLUMNS} columns")
            continue
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                if (x, y) in cells:
                    out.append(f"{title} overlaps {cells[(x, y)]}")
                    break
                cells[(x, y)] = title
            else:
                continue
            break
        sources = [p.get("datasource"), *[t.get("datasource") for t in p.get("targets") or []]]
        if any((s or {}).get("uid") != DATASOURCE_VARIABLE for s in sources):
            out.append(f"{title}: every query must use the dashboard's Prometheus ({DATASOURCE_VARIABLE})")
        targets = p.get("targets") or []
        refs = [t.get("refId") for t in targets]
        if not targets or len(set(refs)) != len(refs) or not all(t.get("expr") for t in targets):
            out.append(f"{title}: needs queries, each with an expression and a refId of its own")
    return out + invalid_queries(dashboard)


def invalid_queries(dashboard: dict[str, Any]) -> list[str]:
    """Queries Prometheus would not parse, found offline by promtool (each as a recording rule)."""
    found = queries(dashboard)
    if not found:
        return []
    rules = {
        "groups": [{"name": "dashboard", "rules": [{"record": f"panel:query_{i}", "expr": e} for i, (_t, e) in enumerate(found)]}]
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "queries.yaml"
        path.write_text(yaml.safe_dump(rules))
        from harness.alert_cases import promtool

        proc = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    if proc.returncode == 0:
        return []
    return [
        f"a query does not parse: {line.strip()}"
        for line in (proc.stdout + proc.stderr).splitlines()
        if "parse error" in line or "error" in line.lower()
    ][:5] or ["promtool refused the queries"]
