"""The local platform's scheduler: kube-scheduler's filters on synthetic nodes and pods."""

from __future__ import annotations

import copy

from harness import reference
from harness.platforms.local.scheduler import NodeInfo, Placed, kind_workers, schedule

LABELS = {"app.kubernetes.io/name": "redis-cluster", "app.kubernetes.io/component": "server"}
NODES = [NodeInfo("w1"), NodeInfo("w2"), NodeInfo("w3")]


def pod_spec(overlay: str = "kind") -> dict:
    return copy.deepcopy(reference.render(overlay).redis_statefulset()["spec"]["template"]["spec"])


def place_all(spec: dict, count: int, nodes=NODES) -> list[Placed]:
    placed: list[Placed] = []
    for i in range(count):
        node, why = schedule(spec, LABELS, nodes, placed)
        assert node is not None, why
        placed.append(Placed(f"redis-cluster-{i}", node, LABELS))
    return placed


def test_kind_names_its_workers():
    assert kind_workers(reference.REFERENCE_DIR / "kind" / "cluster.yaml") == [
        "redis-harness-worker",
        "redis-harness-worker2",
        "redis-harness-worker3",
    ]


def test_the_reference_spreads_six_pods_two_per_node_in_turn():
    placed = place_all(pod_spec(), 6)
    assert [p.node for p in placed] == ["w1", "w2", "w3", "w1", "w2", "w3"]


def test_a_cordoned_node_takes_no_pod_and_honoured_taints_let_evicted_pods_move():
    placed = place_all(pod_spec(), 6)
    nodes = [NodeInfo("w1", schedulable=False), NodeInfo("w2"), NodeInfo("w3")]
    rest = [p for p in placed if p.name != "redis-cluster-0"]
    node, why = schedule(pod_spec(), LABELS, nodes, rest)
    assert node in ("w2", "w3"), why


def test_with_the_default_taint_policy_a_drain_leaves_the_evicted_pod_pending():
    spec = pod_spec()
    for constraint in spec["topologySpreadConstraints"]:
        constraint.pop("nodeTaintsPolicy", None)  # Ignore: the cordoned node still counts as a domain
    placed = place_all(spec, 6)
    nodes = [NodeInfo("w1", schedulable=False), NodeInfo("w2"), NodeInfo("w3")]
    node, why = schedule(spec, LABELS, nodes, [p for p in placed if p.name != "redis-cluster-0"])
    assert node is None
    assert why == "0/3 nodes are available: 1 node(s) were unschedulable, 2 node(s) didn't match pod topology spread constraints"


def test_required_anti_affinity_leaves_pods_beyond_one_per_node_pending():
    spec = pod_spec()
    spec.pop("topologySpreadConstraints")
    term = {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": LABELS}}
    spec["affinity"] = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}
    placed = place_all(spec, 3)
    node, why = schedule(spec, LABELS, NODES, placed)
    assert node is None and "3 node(s) didn't match pod anti-affinity rules" in why


def test_without_constraints_pods_still_balance_over_nodes():
    spec = pod_spec()
    spec.pop("topologySpreadConstraints")
    spec.pop("affinity")
    assert sorted(p.node for p in place_all(spec, 6)) == ["w1", "w1", "w2", "w2", "w3", "w3"]


def test_a_failed_node_takes_no_pod():
    nodes = [NodeInfo("w1", ready=False), NodeInfo("w2"), NodeInfo("w3")]
    spec = pod_spec()
    spec["topologySpreadConstraints"][0]["maxSkew"] = 6
    assert {p.node for p in place_all(spec, 4, nodes)} == {"w2", "w3"}


def test_a_pod_whose_volume_is_bound_to_a_cordoned_node_stays_pending_and_runs_only_there():
    placed = place_all(pod_spec(), 6)
    rest = [p for p in placed if p.name != "redis-cluster-0"]
    cordoned = [NodeInfo("w1", schedulable=False), NodeInfo("w2"), NodeInfo("w3")]
    node, why = schedule(pod_spec(), LABELS, cordoned, rest, volume_node="w1")
    assert node is None
    assert why == "0/3 nodes are available: 1 node(s) were unschedulable, 2 node(s) had volume node affinity conflict"
    node, _ = schedule(pod_spec(), LABELS, [NodeInfo("w1"), NodeInfo("w2"), NodeInfo("w3")], rest, volume_node="w1")
    assert node == "w1"
