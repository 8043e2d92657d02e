"""A small part of the chaos catalogue in the default run: the local platform's fault
primitives on real namespaces, the kill-master experiment through chaostoolkit, and its
negative control (an overlay without replicas must make it deviate)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from harness import slo
from harness.chaos import runner
from harness.platforms.local.platform import LocalPlatform

pytestmark = [pytest.mark.cluster, pytest.mark.netns]
KILL_MASTER = runner.CATALOGUE / "kill-master.yaml"


def inside(platform, pod: str, *argv: str) -> str:
    rec = platform.ledger.pods[pod]
    return subprocess.run(["ip", "netns", "exec", rec.netns, *argv], capture_output=True, text=True).stdout


def test_partition_cuts_pods_apart_but_not_their_clients(healthy):
    a, b, c = (p.name for p in healthy.pods()[:3])
    address = {p.name: p.address for p in healthy.pods()}
    rec = {name: healthy.ledger.pods[name] for name in (a, b, c)}
    healthy.partition([[a]])
    try:
        cut = healthy._tcp(rec[b], [(address[a], 6379), (address[c], 6379)])
        assert cut == {(address[a], 6379): "filtered", (address[c], 6379): "open"}
        assert healthy._tcp(rec[a], [(address[b], 16379)]) == {(address[b], 16379): "filtered"}
        assert healthy.node_client(a).ping()  # the node (and every client) still reaches it
    finally:
        healthy.heal()
    assert healthy._tcp(rec[b], [(address[a], 6379)]) == {(address[a], 6379): "open"}


def test_degraded_network_and_its_restore(healthy):
    pod = healthy.pods()[1].name
    healthy.degrade_network(pod, loss_percent=2, rate_kbit=4000)
    try:
        assert "tbf" in inside(healthy, pod, "tc", "qdisc", "show", "dev", "eth0")
        assert "numgen random mod 1000 < 20 drop" in inside(healthy, pod, "nft", "list", "table", "inet", "rh_degrade")
        assert healthy.node_client(pod).ping()
    finally:
        healthy.restore_network(pod)
    assert "tbf" not in inside(healthy, pod, "tc", "qdisc", "show", "dev", "eth0")
    assert "rh_degrade" not in inside(healthy, pod, "nft", "list", "tables")


def test_a_filled_volume_refuses_writes_cleanly_until_freed(healthy):
    pod = healthy.pods()[0].name
    volume = healthy._data_volume(pod)
    healthy.fill_volume(pod)
    try:
        stat = os.statvfs(volume)
        assert stat.f_bavail * stat.f_frsize < 64 * 1024
    finally:
        healthy.free_volume(pod)
    stat = os.statvfs(volume)
    assert stat.f_bavail * stat.f_frsize > 64 * 1024**2


def test_kill_master_experiment_holds_its_steady_state(healthy, tmp_path):
    result = runner.run_one(KILL_MASTER, healthy, tmp_path)
    limits = slo.load()
    assert result.journal["status"] == "completed" and not result.journal["deviated"]
    assert result.verdict.passed, result.verdict.reasons
    assert result.figures["recovery_s"] <= limits.recovery("kill_master")
    assert result.figures["lost_waited"] == 0
    assert result.figures["probe_hz"] >= 100
    report = json.loads((result.run_dir / "report.json").read_text())
    assert report["outcome"] == "pass" and report["figures"]["acknowledged"] > 0
    assert {"journal.json", "history.jsonl", "probe.jsonl", "timeline.png", "index.html"} <= {
        p.name for p in result.run_dir.iterdir()
    }
    assert all(p.running for p in healthy.pods())  # the rollback brought the killed master back


def test_kill_master_deviates_without_replicas(tmp_path):
    broken = LocalPlatform(
        overlay="broken-no-replicas", cluster="rh-chaos-neg", state_dir=tmp_path / "state", subnet="198.18.9.0/24"
    )
    broken.up()
    try:
        result = runner.run_one(KILL_MASTER, broken, tmp_path / "reports")
    finally:
        broken.down()
    assert not result.verdict.passed
    assert result.journal["steady_states"]["before"]["steady_state_met"] is False
    assert result.journal["run"] == []  # the method never ran against a cluster without redundancy
    assert any("every-master-has-a-connected-replica" in reason for reason in result.verdict.reasons)
