"""The parsers and invariant checks, on synthetic cluster states: healthy ones must pass, broken ones must fail."""

from __future__ import annotations

import dataclasses

import pytest

from harness.topology import PodState, check_invariants, parse_cluster_nodes, parse_info, shards_from_reply

M = ["a" * 40, "b" * 40, "c" * 40]
R = ["d" * 40, "e" * 40, "f" * 40]
IPS = [f"10.0.0.{i}" for i in range(1, 7)]
SLOTS = ["0-5460", "5461-10922", "10923-16383"]


def nodes_text(me: int, ips=IPS, slots=SLOTS, extra: dict[int, str] | None = None) -> str:
    lines = []
    for i in range(6):
        node_id = (M + R)[i]
        flags = ("myself," if i == me else "") + ("master" if i < 3 else "slave")
        flags += (extra or {}).get(i, "")
        master = "-" if i < 3 else M[i - 3]
        slot = slots[i] if i < 3 else ""
        host = f"redis-cluster-{i}.redis-cluster-headless.redis.svc.cluster.local"
        lines.append(f"{node_id} {ips[i]}:6379@16379,{host} {flags} {master} 0 1 {i + 1} connected {slot}".rstrip())
    return "\n".join(lines) + "\n"


def healthy_states(**kw) -> list[PodState]:
    return [
        PodState(
            pod=f"redis-cluster-{i}",
            address=IPS[i],
            node=f"node-{i}",
            nodes=parse_cluster_nodes(nodes_text(i, **kw)),
            cluster_info={"cluster_state": "ok"},
            replication={"role": "slave", "master_link_status": "up"} if i >= 3 else {"role": "master"},
        )
        for i in range(6)
    ]


def codes(states) -> set[str]:
    return {v.code for v in check_invariants(states)}


def test_parse_cluster_nodes_reads_addresses_flags_and_slots():
    entries = parse_cluster_nodes(
        nodes_text(0) + f"{'9' * 40} 10.0.0.9:6379@16379 master,fail - 0 0 9 disconnected 1 [5->-{'a' * 40}]\n"
    )
    first = entries[0]
    assert (first.ip, first.port, first.bus_port) == ("10.0.0.1", 6379, 16379)
    assert first.hostname.startswith("redis-cluster-0.") and first.is_myself and first.is_master
    assert first.slots == ((0, 5460),) and first.slot_count() == 5461
    assert entries[3].is_replica and entries[3].master_id == M[0]
    assert entries[-1].flags == {"master", "fail"} and entries[-1].slots == ((1, 1),)


def test_parse_cluster_nodes_rejects_garbage():
    with pytest.raises(ValueError):
        parse_cluster_nodes("not a cluster nodes line")


def test_parse_info_skips_sections_and_blank_lines():
    assert parse_info("# Replication\r\nrole:master\r\n\r\nconnected_slaves:1\r\n") == {"role": "master", "connected_slaves": "1"}


def test_shards_reply_flat_and_dict_forms_agree():
    flat = [["slots", [0, 5460], "nodes", [["id", "x", "role", "master"]]]]
    as_dict = [{"slots": [0, 5460], "nodes": [{"id": "x", "role": "master"}]}]
    assert (
        shards_from_reply(flat)
        == shards_from_reply(as_dict)
        == [{"slots": [(0, 5460)], "nodes": [{"id": "x", "role": "master"}]}]
    )


def test_healthy_cluster_has_no_violations():
    assert check_invariants(healthy_states()) == []


def test_uncovered_slots_fail():
    assert "slots-uncovered" in codes(healthy_states(slots=["0-5460", "5461-10922", "10923-16382"]))


def test_overlapping_slots_fail():
    assert "slots-overlap" in codes(healthy_states(slots=["0-5461", "5461-10922", "10923-16383"]))


def test_pods_disagreeing_about_slots_fail():
    states = healthy_states()
    states[1] = dataclasses.replace(
        states[1], nodes=parse_cluster_nodes(nodes_text(1, slots=["0-5000", "5001-10922", "10923-16383"]))
    )
    assert "slots-disagree" in codes(states)


def test_stale_address_fails():
    stale = IPS[:2] + ["10.0.0.99"] + IPS[3:]
    states = healthy_states()
    states[0] = dataclasses.replace(states[0], nodes=parse_cluster_nodes(nodes_text(0, ips=stale)))
    assert "stale-address" in codes(states)


def test_failing_node_flag_fails():
    states = healthy_states()
    states[0] = dataclasses.replace(states[0], nodes=parse_cluster_nodes(nodes_text(0, extra={2: ",fail?"})))
    assert "node-flagged" in codes(states)


def test_replica_with_link_down_fails():
    states = healthy_states()
    states[4] = dataclasses.replace(states[4], replication={"role": "slave", "master_link_status": "down"})
    assert "master-without-replica" in codes(states)


def test_unreachable_pod_fails():
    states = healthy_states()
    states[5] = PodState("redis-cluster-5", IPS[5], "node-5", error="connection refused")
    assert {"pod-unreachable", "master-without-replica"} <= codes(states)


def test_replica_on_its_masters_node_fails():
    states = healthy_states()
    states[3] = dataclasses.replace(states[3], node="node-0")
    assert "co-located" in codes(states)


def test_two_masters_on_one_node_fail_while_a_node_runs_none():
    # Three nodes: masters 0 and 1 share node-a, replicas spread so none is with its own master.
    nodes = {0: "node-a", 1: "node-a", 2: "node-b", 3: "node-c", 4: "node-b", 5: "node-c"}
    states = [dataclasses.replace(s, node=nodes[i]) for i, s in enumerate(healthy_states())]
    violations = check_invariants(states)
    assert [v.message for v in violations] == ["masters share node(s) node-a while another node runs none"]
    assert check_invariants(states, placement=False) == []


def test_masters_may_share_a_node_when_there_are_fewer_nodes_than_masters():
    nodes = {0: "node-a", 1: "node-a", 2: "node-b", 3: "node-b", 4: "node-b", 5: "node-a"}
    states = [dataclasses.replace(s, node=nodes[i]) for i, s in enumerate(healthy_states())]
    assert "masters share" not in " ".join(v.message for v in check_invariants(states))


def test_cluster_state_fail_is_reported():
    states = healthy_states()
    states[2] = dataclasses.replace(states[2], cluster_info={"cluster_state": "fail"})
    assert "cluster-state" in codes(states)


def test_wrong_master_count_fails():
    assert "master-count" in {v.code for v in check_invariants(healthy_states(), expected_masters=4)}
