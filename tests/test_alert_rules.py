"""The alert rules of reference/components/monitoring (alert-rules.yaml) under promtool: they parse
(`promtool check rules`), and `promtool test rules` holds each alert to what it is about — it fires
on the series of its fault, with its labels and summary, and stays silent on a healthy cluster of
three masters with a replica each (the cases: harness/alert_cases.py). A rule broken to never fire,
or to never resolve, fails its cases."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from harness import alert_cases, reference

RULES = reference.REFERENCE_DIR / "components" / "monitoring" / "alert-rules.yaml"


def rules_text() -> str:
    config_map = yaml.safe_load(RULES.read_text())
    (text,) = config_map["data"].values()
    return text


def test_the_rules_parse(tmp_path):
    (tmp_path / "rules.yaml").write_text(rules_text())
    proc = subprocess.run(
        [alert_cases.promtool(), "check", "rules", str(tmp_path / "rules.yaml")], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{len(alert_cases.ALERTS)} rules found" in proc.stdout


def test_the_overlays_carry_the_components_rules():
    for overlay in ("kind", "production"):
        assert alert_cases.rules_of(reference.render(overlay)) == rules_text(), overlay


def test_every_alert_fires_on_its_fault_and_not_on_a_healthy_cluster(tmp_path):
    groups = yaml.safe_load(rules_text())["groups"]
    assert sorted(r["alert"] for g in groups for r in g["rules"]) == sorted(alert_cases.ALERTS), "a rule without cases"
    proc = alert_cases.run_promtool_tests(rules_text(), alert_cases.cases(), tmp_path)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]


@pytest.mark.parametrize(
    ("rule", "broken"),
    [
        ("RedisDown", 'redis_up{job="redis-cluster"} == 2'),
        ("RedisTargetMissing", 'max by (job) (redis_cluster_known_nodes{job="redis-cluster"}) > 6'),
        ("RedisMasterWithoutReplica", 'redis_connected_slaves{job="redis-cluster"} < 0'),
        ("RedisFailoverHappened", 'max by (job) (changes(redis_cluster_current_epoch{job="redis-cluster"}[5m])) > 0'),
    ],
)
def test_a_silenced_or_sticky_rule_fails_its_cases(rule, broken, tmp_path):
    """A rule that can never fire, or one that does not resolve after recovery, is caught and named."""
    data = yaml.safe_load(rules_text())
    for group in data["groups"]:
        for r in group["rules"]:
            if r["alert"] == rule:
                r["expr"] = broken
    proc = alert_cases.run_promtool_tests(yaml.safe_dump(data), alert_cases.cases(), tmp_path)
    assert proc.returncode != 0
    assert alert_cases.failing_alerts(proc.stdout + proc.stderr) == [rule]


def test_rules_in_several_config_maps_are_all_loaded():
    """A rule pack added beside the component's rules is what Prometheus runs too: the
    live checks must see it (broken-blind-monitoring adds one that fires on a healthy cluster)."""
    groups = yaml.safe_load(alert_cases.rules_of(reference.render("broken-blind-monitoring")))["groups"]
    alerts = sorted(r["alert"] for g in groups for r in g["rules"])
    assert alerts == sorted([*alert_cases.ALERTS, "RedisTooManyMasters"])
