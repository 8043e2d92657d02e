"""Where a pod may run: kube-scheduler's filters and a simplified scoring, as pure functions.

The nodes are the workers of reference/kind/cluster.yaml, named as kind names them
(`<cluster>-worker`, `<cluster>-worker2`, …). Filters, as kube-scheduler applies them:
unschedulable (cordoned) and not-ready nodes, required pod anti-affinity and affinity,
topology spread constraints with `whenUnsatisfiable: DoNotSchedule` (honouring
`nodeTaintsPolicy`: with the default Ignore a cordoned node still counts as a domain).
Scoring prefers fewer matching pods under preferred anti-affinity and ScheduleAnyway
constraints, then the node with fewest pods (resource balance); ties go to the first node
in order, where kube-scheduler would pick at random among them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.platforms.local.binding import CONFLICT
from harness.platforms.local.policy import selector_matches

HOSTNAME = "kubernetes.io/hostname"


@dataclass(frozen=True)
class NodeInfo:
    name: str
    schedulable: bool = True
    ready: bool = True

    @property
    def labels(self) -> dict[str, str]:
        return {HOSTNAME: self.name}

    @property
    def tainted(self) -> bool:
        """Cordoned nodes carry node.kubernetes.io/unschedulable, failed ones not-ready/unreachable."""
        return not (self.schedulable and self.ready)


@dataclass(frozen=True)
class Placed:
    """A pod already bound to a node."""

    name: str
    node: str
    labels: dict[str, str]


def kind_workers(cluster_yaml: Path) -> list[str]:
    """The worker node names kind gives the cluster described by `cluster_yaml`."""
    config = yaml.safe_load(cluster_yaml.read_text())
    name = config.get("name") or "kind"
    workers = [n for n in config.get("nodes", []) if n.get("role") == "worker"]
    if not workers:
        return [f"{name}-control-plane"]  # a single-node kind cluster schedules onto its control plane
    return [f"{name}-worker" + (str(i + 1) if i else "") for i in range(len(workers))]


def _domain(node: NodeInfo, key: str) -> str | None:
    return node.labels.get(key)


def _matching(term_selector, pods: list[Placed], nodes: dict[str, NodeInfo], key: str) -> dict[str, int]:
    """Pods the selector matches, counted per topology domain."""
    counts: dict[str, int] = {}
    for pod in pods:
        node = nodes.get(pod.node)
        if node is None or not selector_matches(term_selector, pod.labels):
            continue
        domain = _domain(node, key)
        if domain is not None:
            counts[domain] = counts.get(domain, 0) + 1
    return counts


def _spread_ok(constraint: dict[str, Any], candidate: NodeInfo, nodes: list[NodeInfo], placed: list[Placed]) -> bool:
    key = constraint["topologyKey"]
    honour_taints = constraint.get("nodeTaintsPolicy", "Ignore") == "Honor"
    eligible = [n for n in nodes if _domain(n, key) is not None and not (honour_taints and n.tainted)]
    by_name = {n.name: n for n in eligible}
    counts = _matching(constraint.get("labelSelector"), placed, by_name, key)
    domains = {_domain(n, key) for n in eligible}
    if not domains:
        return False
    lowest = min(counts.get(d, 0) for d in domains)
    mine = _domain(candidate, key)
    return mine in domains and counts.get(mine, 0) + 1 - lowest <= int(constraint.get("maxSkew", 1))


def filter_reason(
    pod_spec: dict[str, Any],
    pod_labels: dict[str, str],
    node: NodeInfo,
    nodes: list[NodeInfo],
    placed: list[Placed],
    volume_node: str | None = None,
) -> str | None:
    """Why the pod cannot run on `node` (None when it can), in kube-scheduler's words: the first of its
    filters that fails, in their default order (pkg/scheduler/apis/config/v1/default_plugins.go:
    NodeUnschedulable, TaintToleration, VolumeBinding, PodTopologySpread, InterPodAffinity).
    `volume_node`: the node the pod's bound volumes live on (binding.py)."""
    if not node.schedulable:
        return "node(s) were unschedulable"
    if not node.ready:
        return "node(s) had untolerated taint {node.kubernetes.io/unreachable}"
    if volume_node is not None and node.name != volume_node:
        return CONFLICT
    for constraint in pod_spec.get("topologySpreadConstraints") or []:
        if constraint.get("whenUnsatisfiable", "DoNotSchedule") == "DoNotSchedule" and not _spread_ok(constraint, node, nodes, placed):
            return "node(s) didn't match pod topology spread constraints"
    all_nodes = {n.name: n for n in nodes}
    affinity = pod_spec.get("affinity") or {}
    for term in (affinity.get("podAntiAffinity") or {}).get("requiredDuringSchedulingIgnoredDuringExecution") or []:
        counts = _matching(term.get("labelSelector"), placed, all_nodes, term["topologyKey"])
        if counts.get(_domain(node, term["topologyKey"]) or "", 0):
            return "node(s) didn't match pod anti-affinity rules"
    for term in (affinity.get("podAffinity") or {}).get("requiredDuringSchedulingIgnoredDuringExecution") or []:
        counts = _matching(term.get("labelSelector"), placed, all_nodes, term["topologyKey"])
        if not counts.get(_domain(node, term["topologyKey"]) or "", 0):
            return "node(s) didn't match pod affinity rules"
    return None


def _score(pod_spec: dict[str, Any], node: NodeInfo, nodes: list[NodeInfo], placed: list[Placed]) -> float:
    all_nodes = {n.name: n for n in nodes}
    score = 0.0
    affinity = pod_spec.get("affinity") or {}
    for weighted in (affinity.get("podAntiAffinity") or {}).get("preferredDuringSchedulingIgnoredDuringExecution") or []:
        term = weighted["podAffinityTerm"]
        counts = _matching(term.get("labelSelector"), placed, all_nodes, term["topologyKey"])
        score -= weighted.get("weight", 1) * counts.get(_domain(node, term["topologyKey"]) or "", 0)
    for constraint in pod_spec.get("topologySpreadConstraints") or []:
        if constraint.get("whenUnsatisfiable") == "ScheduleAnyway":
            counts = _matching(constraint.get("labelSelector"), placed, all_nodes, constraint["topologyKey"])
            score -= counts.get(_domain(node, constraint["topologyKey"]) or "", 0)
    return score - 0.01 * sum(p.node == node.name for p in placed)


def schedule(
    pod_spec: dict[str, Any], pod_labels: dict[str, str], nodes: list[NodeInfo], placed: list[Placed], volume_node: str | None = None
) -> tuple[str | None, str]:
    """(node, "") for the best feasible node, or (None, why) as a Pending pod's event says it:
    "0/3 nodes are available: 2 node(s) didn't match …, 1 node(s) were unschedulable"."""
    reasons: dict[str, int] = {}
    feasible = []
    for node in nodes:
        why = filter_reason(pod_spec, pod_labels, node, nodes, placed, volume_node)
        if why is None:
            feasible.append(node)
        else:
            reasons[why] = reasons.get(why, 0) + 1
    if not feasible:
        # sorted as "<count> <reason>" strings, as FitError.Error does (pkg/scheduler/framework/types.go)
        detail = ", ".join(sorted(f"{count} {why}" for why, count in reasons.items()))
        return None, f"0/{len(nodes)} nodes are available: {detail}"
    best = max(feasible, key=lambda n: (_score(pod_spec, n, nodes, placed), -nodes.index(n)))
    return best.name, ""
