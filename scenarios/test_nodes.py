"""Node gate: pods spread over the nodes so that losing one never takes a master and its
replica together. No replica runs on its master's node; losing any one node keeps every
slot served and loses no WAITed write; draining a node keeps every shard serving."""

from __future__ import annotations

import pytest

from harness.cluster import shards, survivors_serve_all, wait_for
from harness.errors import HarnessError
from harness.judgement import assert_met, margin, margins, slo_reasons
from harness.observe import snapshot, wait_healthy
from harness.platforms.base import Nodes, require
from harness.recording import check, start_recording

pytestmark = pytest.mark.cluster


def test_no_replica_shares_a_node_with_its_master(well_placed, evidence):
    nodes = [n.name for n in require(well_placed, Nodes).nodes()]
    placement = {p.name: p.node for p in well_placed.pods()}
    pairs = [(s.master, r) for s in shards(snapshot(well_placed)) for r in s.replicas]
    evidence.figure(nodes=nodes, placement=placement, pairs=pairs)
    assert set(placement.values()) <= set(nodes), f"pods on nodes the platform does not have: {placement}"
    together = [f"{r} with its master {m} on {placement[m]}" for m, r in pairs if placement[m] == placement[r]]
    assert together == [], "replicas share a node with their master: " + "; ".join(together)


def test_losing_any_one_node_keeps_every_slot_served(well_placed, nemesis, slo, evidence):
    limit = slo.recovery("node_failure")
    outcomes = {}
    remaining = [n.name for n in require(well_placed, Nodes).nodes()]
    while remaining:
        wait_healthy(well_placed, timeout=90)
        node = nemesis.quiet_first(remaining)[0]  # every node in turn, each when its loss may fail over at once
        remaining.remove(node)
        lost_pods = sorted(p.name for p in well_placed.pods() if p.node == node)
        rec = start_recording(well_placed)
        nemesis.attach(rec.mark)
        try:
            rec.warm_up(1.0)
            fault = nemesis.fail_node(node)["at"]
            try:
                _, served_after = wait_for(
                    lambda lost_pods=lost_pods: survivors_serve_all(well_placed, lost_pods),
                    limit,
                    "the other nodes to serve every slot",
                )
            except HarnessError:
                served_after = None
            rec.mark("served" if served_after is not None else "not served", node=node)
            rec.run_for(1.0)
            nemesis.heal("node_failure")
            wait_healthy(well_placed, timeout=90)
            rec.run_for(1.0)
        finally:
            nemesis.heal_all()
            rec.stop()
        figures = check(rec, fault)
        outcomes[node] = {"pods": lost_pods, "served_after_s": served_after and round(served_after, 3), **figures.headline()}
        evidence.history(f"node-failure-{node}", rec.history)
    served = [o["served_after_s"] for o in outcomes.values() if o["served_after_s"] is not None]
    slowest = max(served, default=None)
    evidence.figure(
        limit_s=limit,
        nodes=outcomes,
        margins=[] if slowest is None else [margin("slowest node loss served again", slowest, limit)],
    )
    unserved = [f"{n} (pods {', '.join(o['pods'])})" for n, o in outcomes.items() if o["served_after_s"] is None]
    assert unserved == [], f"slots went unserved for more than {limit:g} s after losing " + "; ".join(unserved)
    for node, o in outcomes.items():
        assert o["workload_errors"] == [], f"{node}: {o['workload_errors']}"
        assert o["lost_waited"] <= slo.lost_writes(waited=True), f"losing {node} lost {o['lost_waited']} WAITed writes"
        assert o["unexpected"] == 0


def shard_to_drain(platform, nemesis) -> int:
    """The shard whose master's node a drain should empty: one whose master shares its node with
    its own replica, where the placement allows that (the drain must then move both), else the one
    whose master may fail over soonest (an earlier test's repair may have just failed the others over)."""
    node_of = {p.name: p.node for p in platform.pods()}
    found = shards(snapshot(platform))
    free = nemesis.free_master()
    return next(
        (n for n, s in enumerate(found) if any(node_of[r] == node_of[s.master] for r in s.replicas)),
        next((n for n, s in enumerate(found) if s.master == free), 0),
    )


def test_drain_keeps_every_shard_serving(well_placed, nemesis, slo, evidence):
    target = shard_to_drain(well_placed, nemesis)
    shard = shards(snapshot(well_placed))[target]
    rec = start_recording(well_placed, probe_master_address=well_placed.pod(shard.master).address)
    nemesis.attach(rec.mark)
    try:
        rec.warm_up(1.0)
        drained = nemesis.drain_node(shard=target)
        rec.mark("drained", node=drained["node"])
        rec.run_for(1.0)
        nemesis.heal("drain")
        wait_healthy(well_placed, timeout=90)
        rec.run_for(1.0)
    finally:
        nemesis.heal_all()
        rec.stop()
    figures = check(rec, drained["at"])
    evidence.figure(
        node=drained["node"],
        moved=drained["moved"],
        waiting=drained["waiting"],
        kept=drained["kept"],
        margins=margins(figures, slo, "drain", one_shard=True),
        **figures.as_dict(),
    )
    evidence.history("drain", rec.history, rec.probe_history)
    assert figures.workload_errors == []
    # Moved off the node, or (volumes bound to it) Pending until it is back, or kept by the budget meanwhile.
    assert set(drained["moved"].values()).isdisjoint({drained["node"]}), f"pods stayed on the drained node: {drained['moved']}"
    assert sorted([*drained["moved"], *drained["waiting"], *drained["kept"]]) == sorted(drained["pods"]), drained
    assert drained["moved"] or drained["waiting"], f"the drain evicted nothing: {drained['kept']}"
    assert figures.unavailable_s <= slo.unavailability("drain"), (
        f"a shard stopped serving for {figures.unavailable_s:.2f} s during the drain (limit {slo.unavailability('drain'):g} s)"
    )
    assert figures.lost == 0 and figures.unexpected == 0, f"the drain lost {figures.lost} writes, {figures.unexpected} unexpected"
    reasons = slo_reasons(figures, slo, "drain", one_shard=True)[0]
    assert_met(reasons)
