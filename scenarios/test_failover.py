"""Failover gate: a master lost under a live workload is replaced by its replica
within the SLO, no WAITed write is lost, and the old master comes back as a replica.
Judged from recorded histories (harness/recording.py, harness/checkers.py)."""

from __future__ import annotations

import time

from harness.cluster import cluster_state, node_of, shards, wait_for
from harness.judgement import slo_reasons
from harness.observe import snapshot, wait_healthy
from harness.recording import check, start_recording

NODE_TIMEOUT_S = 5.0  # cluster-node-timeout of the reference redis.conf


def a_shard(platform):
    """The first shard: its master pod, one replica pod, and its slots."""
    shard = shards(snapshot(platform))[0]
    assert shard.replicas, f"master {shard.master} has no replica to fail over to"
    return shard


def test_kill_master_promotes_its_replica_within_slo(healthy, nemesis, slo, evidence):
    shard = a_shard(healthy)
    replica = shard.replicas[0]
    rec = start_recording(healthy, probe_master_address=healthy.pod(shard.master).address)
    nemesis.attach(rec.mark)
    try:
        rec.run_for(2.0)
        fault = nemesis.kill_master()["at"]
        _, promoted_after = wait_for(lambda: node_of(snapshot(healthy), replica).is_master, 60, f"{replica} to be promoted")
        rec.mark("promoted", pod=replica)
        rec.run_for(2.0)
        nemesis.heal("kill_master")
        wait_healthy(healthy, timeout=60)
        rec.run_for(1.0)
    finally:
        rec.stop()
    figures = check(rec, fault)
    old = node_of(snapshot(healthy), shard.master)
    evidence.figure(promoted_after_s=round(promoted_after, 3), **figures.as_dict())
    evidence.history("kill-master", rec.history, rec.probe_history)
    assert figures.workload_errors == []
    assert figures.probe_hz >= 100
    assert old.is_replica and old.master_id == node_of(snapshot(healthy), replica).id
    assert slo_reasons(figures, slo, "kill_master")[0] == []


def test_paused_master_is_replaced_and_stops_accepting_writes(healthy, nemesis, slo, evidence):
    shard = a_shard(healthy)
    replica = shard.replicas[0]
    old_address = healthy.pod(shard.master).address
    rec = start_recording(healthy, probe_master_address=old_address)
    nemesis.attach(rec.mark)
    try:
        rec.run_for(2.0)
        fault = nemesis.pause_master()["at"]
        wait_for(lambda: node_of(snapshot(healthy), replica).is_master, 60, f"{replica} to be promoted")
        promoted = rec.mark("promoted", pod=replica)
        rec.run_for(1.0)
        nemesis.heal("pause_master")
        resumed = rec.mark("resumed", pod=shard.master)
        wait_healthy(healthy, timeout=60)
        rec.run_for(1.0)
    finally:
        nemesis.heal_all()
        rec.stop()
    figures = check(rec, fault)
    # Writes the old master acknowledged after its replica had taken over.
    late = [
        op
        for op in rec.history.ops
        if op.f == "write"
        and op.outcome == "ok"
        and op.node == old_address
        and op.complete is not None
        and op.complete >= promoted
    ]
    still_accepting = [op for op in late if op.complete >= resumed + 1.0]
    evidence.figure(
        acknowledged_by_demoted_master=len(late),
        acknowledged_1s_after_resume=len(still_accepting),
        paused_s=round(resumed - fault, 3),
        **figures.as_dict(),
    )
    evidence.history("pause-master", rec.history, rec.probe_history)
    assert figures.workload_errors == []
    assert resumed - fault > NODE_TIMEOUT_S
    assert still_accepting == [], "the demoted master kept acknowledging writes a second after it resumed"
    assert node_of(snapshot(healthy), shard.master).is_replica
    assert slo_reasons(figures, slo, "pause_master")[0] == []


def test_manual_failover_under_load_loses_nothing(healthy, slo, evidence):
    shard = a_shard(healthy)
    replica = shard.replicas[0]
    rec = start_recording(healthy, probe_master_address=healthy.pod(shard.master).address)
    try:
        rec.run_for(2.0)
        fault = rec.mark("CLUSTER FAILOVER", pod=replica)
        healthy.exec_redis_cli(replica, "CLUSTER", "FAILOVER")
        wait_for(lambda: node_of(snapshot(healthy), replica).is_master, 30, f"{replica} to take over")
        rec.mark("promoted", pod=replica)
        wait_healthy(healthy, timeout=60)
        rec.run_for(2.0)
    finally:
        rec.stop()
    figures = check(rec, fault)
    evidence.figure(**figures.as_dict())
    evidence.history("manual-failover", rec.history, rec.probe_history)
    assert figures.workload_errors == []
    assert node_of(snapshot(healthy), shard.master).is_replica
    assert figures.lost == 0
    assert slo_reasons(figures, slo, "manual_failover")[0] == []


def test_losing_a_master_and_its_replica_stops_the_cluster_until_they_return(healthy, nemesis, evidence):
    shard = a_shard(healthy)
    others = [s.master for s in shards(snapshot(healthy)) if s.master != shard.master]
    client = healthy.client()
    keys = [f"app:both:{i}" for i in range(2000)]
    for i in range(0, len(keys), 500):
        client.mset_nonatomic({k: k for k in keys[i : i + 500]})
    client.close()
    start = time.monotonic()
    nemesis.kill_shard()
    _, fail_after = wait_for(lambda: cluster_state(healthy, others[0]) == "fail", 30, "cluster_state:fail")
    nemesis.heal("kill_shard")
    waited, _ = wait_healthy(healthy, timeout=90)
    present = len([v for v in healthy.client().mget_nonatomic(keys) if v is not None])
    evidence.figure(
        cluster_fail_after_s=round(fail_after, 3),
        healed_after_s=round(waited, 3),
        keys_present=present,
        total_s=round(time.monotonic() - start, 3),
    )
    assert fail_after < NODE_TIMEOUT_S * 4
    assert present == len(keys)
