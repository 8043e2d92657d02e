"""A small part of the chaos catalogue in the default run: the kill-master experiment
through chaostoolkit with its expected alerts, and its negative controls (an overlay without
replicas must make it deviate; one whose alert can never fire must fail it)."""

from __future__ import annotations

import json

import pytest

from harness import slo
from harness.chaos import runner
from harness.platforms import registry

pytestmark = [pytest.mark.cluster, pytest.mark.netns]
KILL_MASTER = runner.CATALOGUE / "kill-master.yaml"


def test_kill_master_experiment_holds_its_steady_state(healthy, tmp_path):
    result = runner.run_one(KILL_MASTER, healthy, tmp_path)
    limits = slo.load()
    assert result.journal["status"] == "completed" and not result.journal["deviated"]
    assert result.verdict.passed, result.verdict.reasons
    assert result.figures["recovery_s"] <= limits.recovery("kill_master")
    assert result.figures["lost_waited"] == 0
    assert result.figures["probe_hz"] >= 100
    alerts = result.figures["alerts"]
    assert set(alerts) == {"RedisDown", "RedisFailoverHappened", "RedisMasterWithoutReplica"}
    assert all(a["fired_after_s"] is not None and a["delivered_after_s"] >= a["fired_after_s"] for a in alerts.values()), alerts
    report = json.loads((result.run_dir / "report.json").read_text())
    assert {span["alert"] for span in report["alerts"]} >= set(alerts)
    # What a log pipeline would index: a node marking the master failing, and its replica's election.
    story = {e["event"] for e in report["log_events"]}
    assert {"fail", "election_won"} <= story, story
    assert report["outcome"] == "pass" and report["figures"]["acknowledged"] > 0
    assert {"journal.json", "history.jsonl", "probe.jsonl", "timeline.png", "index.html"} <= {
        p.name for p in result.run_dir.iterdir()
    }
    assert all(p.running for p in healthy.pods())  # the rollback brought the killed master back


def kill_master_on(overlay: str, tmp_path):
    """The kill-master experiment against a fresh cluster of a negative control's overlay."""
    broken = registry.create("local", overlay=overlay, cluster=f"rh-chaos-{overlay}"[:40], state_dir=tmp_path / "state")
    broken.up()
    try:
        return runner.run_one(KILL_MASTER, broken, tmp_path / "reports")
    finally:
        broken.down()


def test_kill_master_deviates_without_replicas(tmp_path):
    result = kill_master_on("broken-no-replicas", tmp_path)
    assert not result.verdict.passed
    assert result.journal["steady_states"]["before"]["steady_state_met"] is False
    assert result.journal["run"] == []  # the method never ran against a cluster without redundancy
    assert any("every-master-has-a-connected-replica" in reason for reason in result.verdict.reasons)


def test_kill_master_fails_when_an_alert_can_never_fire(tmp_path):
    result = kill_master_on("broken-silent-alert", tmp_path)
    assert result.journal["status"] == "completed" and not result.journal["deviated"]  # the cluster itself coped
    assert not result.verdict.passed
    assert result.verdict.reasons == ["alert RedisMasterWithoutReplica did not fire (expected within 20 s of the fault)"]
