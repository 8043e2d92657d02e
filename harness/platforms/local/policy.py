"""NetworkPolicy → nftables: the ingress rules one pod's network namespace enforces.

Pure translation, no side effects: given the policies, the pod and every peer
(with labels, namespace and current address), produce an `nft -f` script. The
Kubernetes semantics kept here: a pod selected by no Ingress policy accepts
everything; a selected pod accepts only what some rule of some selecting policy
admits (rules add up); a rule without `from` admits every source, without
`ports` every port; `podSelector` alone means the policy's namespace,
`namespaceSelector` alone means every pod of the matching namespaces, both
together means their intersection. Like kubelet probes on a real node, the
node's own address (the bridge gateway) is always admitted.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from harness.errors import HarnessError

TABLE = "k8s_network_policy"


@dataclass(frozen=True)
class PolicyPod:
    name: str
    namespace: str
    labels: dict[str, str]
    address: str
    namespace_labels: dict[str, str] = field(default_factory=dict)
    # container port name → number, for policies that name their ports
    named_ports: dict[str, int] = field(default_factory=dict)


def selector_matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """Kubernetes LabelSelector semantics; an empty selector matches everything."""
    if selector is None:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise HarnessError(f"unknown label selector operator '{op}'")
    return True


def _namespace_labels(pod: PolicyPod) -> dict[str, str]:
    # Kubernetes labels every namespace with its own name.
    return {"kubernetes.io/metadata.name": pod.namespace, **pod.namespace_labels}


def _policy_types(policy: dict[str, Any]) -> list[str]:
    spec = policy["spec"]
    if "policyTypes" in spec:
        return spec["policyTypes"]
    return ["Ingress"] + (["Egress"] if "egress" in spec else [])


def selecting_policies(policies: list[dict[str, Any]], pod: PolicyPod) -> list[dict[str, Any]]:
    """Ingress policies that select `pod`."""
    chosen = []
    for policy in policies:
        if "Egress" in _policy_types(policy) and policy["spec"].get("egress"):
            raise HarnessError(f"NetworkPolicy {policy['metadata']['name']}: egress rules are not enforced locally")
        if "Ingress" not in _policy_types(policy):
            continue
        if policy["metadata"].get("namespace", pod.namespace) != pod.namespace:
            continue
        if selector_matches(policy["spec"].get("podSelector") or {}, pod.labels):
            chosen.append(policy)
    return chosen


def _peer_sources(peer: dict[str, Any], policy_ns: str, pods: list[PolicyPod]) -> list[str]:
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        excepts = block.get("except") or []
        if excepts:
            network = ipaddress.ip_network(block["cidr"])
            parts = [network]
            for ex in excepts:
                ex_net = ipaddress.ip_network(ex)
                parts = [p for part in parts for p in (part.address_exclude(ex_net) if ex_net.subnet_of(part) else [part])]
            return [str(p) for p in parts]
        return [block["cidr"]]
    pod_sel = peer.get("podSelector")
    ns_sel = peer.get("namespaceSelector")
    sources = []
    for p in pods:
        if ns_sel is None:
            in_scope = p.namespace == policy_ns
        else:
            in_scope = selector_matches(ns_sel, _namespace_labels(p))
        if in_scope and selector_matches(pod_sel or {}, p.labels):
            sources.append(p.address)
    return sources


def _ports(rule: dict[str, Any], target: PolicyPod) -> list[tuple[str, str]] | None:
    """(protocol, port-or-range) pairs; None means every port."""
    if not rule.get("ports"):
        return None
    result = []
    for spec in rule["ports"]:
        proto = spec.get("protocol", "TCP").lower()
        port = spec.get("port")
        if port is None:
            result.append((proto, "0-65535"))
            continue
        if isinstance(port, str) and not port.isdigit():
            if port not in target.named_ports:
                continue  # a named port this pod does not have admits nothing here
            port = target.named_ports[port]
        end = spec.get("endPort")
        result.append((proto, f"{port}-{end}" if end else str(port)))
    return result


def allowed(
    policies: list[dict[str, Any]], target: PolicyPod, pods: list[PolicyPod]
) -> list[tuple[list[str] | None, list[tuple[str, str]] | None]]:
    """(sources or None=any, ports or None=any) the target admits; [] means deny all; None if not isolated."""
    rules = []
    for policy in selecting_policies(policies, target):
        ns = policy["metadata"].get("namespace", target.namespace)
        for rule in policy["spec"].get("ingress") or []:
            peers = rule.get("from")
            sources = None if not peers else sorted({s for peer in peers for s in _peer_sources(peer, ns, pods)})
            rules.append((sources, _ports(rule, target)))
    return rules


def ingress_ruleset(policies: list[dict[str, Any]], target: PolicyPod, pods: list[PolicyPod], node_address: str) -> str | None:
    """The nft script for the target's namespace, or None when no policy isolates it."""
    if not selecting_policies(policies, target):
        return None
    lines = [
        f"table inet {TABLE} {{",
        "  chain ingress {",
        "    type filter hook input priority 0; policy drop;",
        "    ct state established,related accept",
        "    ct state invalid drop",
        '    iifname "lo" accept',
        f"    ip saddr {node_address} accept",
    ]
    for sources, ports in allowed(policies, target, pods):
        if sources is not None and not sources:
            continue  # a rule whose peers match no pod admits nothing
        match_src = "" if sources is None else f"ip saddr {{ {', '.join(sources)} }} "
        if ports is None:
            lines.append(f"    {match_src}accept")
            continue
        for proto, port in ports:
            lines.append(f"    {match_src}{proto} dport {port} accept")
    lines += ["  }", "}"]
    return "\n".join(lines) + "\n"
