"""The Grafana dashboard of the monitoring component (hand-written JSON): the overlays ship it as a
ConfigMap Grafana's sidecar finds, and it passes the structural check (identity, unique panel ids,
panels inside the grid and not overlapping, every query on the dashboard's Prometheus variable and
parsed by promtool). Each way the check can fail is shown on a broken copy. Whether every query
returns series is checked live by the observability suite."""

from __future__ import annotations

import copy
import json

import pytest

from harness import dashboard, reference

FILE = reference.REFERENCE_DIR / "components" / "monitoring" / "dashboard.json"


def shipped() -> dict:
    return json.loads(FILE.read_text())


def test_the_overlays_ship_the_dashboard_grafana_finds():
    for overlay in ("kind", "production"):
        assert dashboard.of(reference.render(overlay)) == shipped(), overlay


def test_the_dashboard_passes_the_structural_check():
    assert dashboard.problems(shipped()) == []
    titles = " ".join(p["title"].lower() for p in shipped()["panels"])
    for subject in ("operations per second", "latency", "maxmemory", "replication lag", "links", "cluster state", "slots",
                    "failovers", "rejected", "append-only"):  # fmt: skip
        assert subject in titles, f"no panel for {subject}"


def broken(change) -> dict:
    d = copy.deepcopy(shipped())
    change(d)
    return d


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda d: d["panels"][1].update(id=d["panels"][0]["id"]), "panel ids must be present and unique"),
        (lambda d: d["panels"][1].update(gridPos=dict(d["panels"][0]["gridPos"])), "overlaps"),
        (lambda d: d["panels"][0]["gridPos"].update(x=20), "within 24 columns"),
        (lambda d: d["panels"][2]["targets"][0].update(datasource={"type": "prometheus", "uid": "prod-prom"}), "dashboard's Prometheus"),
        (lambda d: d["panels"][3]["targets"][0].update(expr="rate(redis_commands_total[1m]"), "does not parse"),
        (lambda d: d["panels"][4].update(targets=[]), "needs queries"),
        (lambda d: d["templating"].update(list=[]), "no 'datasource' variable"),
    ],
)
def test_each_structural_problem_is_named(change, says):
    found = dashboard.problems(broken(change))
    assert any(says in p for p in found), found
