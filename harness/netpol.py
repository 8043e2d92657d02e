"""Kubernetes NetworkPolicy semantics as one pure function: may this pod open a connection
to that pod's port? Written from the NetworkPolicy API's documented meaning, sharing
nothing with the nftables translation that enforces policies on the local platform
(harness/platforms/local/policy.py), so that a translation bug shows as a disagreement
between the two instead of hiding in both.

The rules kept here (networking.k8s.io/v1):
- A policy selects the pods of its own namespace that its `podSelector` matches ({} = all).
- `policyTypes` absent means Ingress, plus Egress when the policy has egress rules.
- A pod selected by no policy of a direction is not isolated in that direction: all allowed.
- A pod isolated in a direction admits a connection when some rule of some selecting policy
  of that direction admits it: policies and rules add up, nothing denies.
- A connection needs both: the source's egress and the destination's ingress allow it.
- A rule without peers (`from` / `to` absent or empty) matches every peer; without `ports`
  every port. A port is a number (with `endPort`, a range) or the name of a container port of
  the destination pod; `protocol` defaults to TCP; a port entry without `port` is every port.
- A peer: `podSelector` alone means pods of the policy's namespace; `namespaceSelector` alone
  means every pod of the matching namespaces; both in one peer means pods matching both
  (AND); two peers in a list are alternatives (OR). `ipBlock` matches the peer's address
  inside `cidr` and outside every `except`.
- Every namespace carries the label kubernetes.io/metadata.name=<its name>.
- A pod's connection to itself is not judged (CNIs differ; the upstream e2e tests ignore it).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

NAME_LABEL = "kubernetes.io/metadata.name"


class PolicyError(ValueError):
    """A policy the API server would reject, or one this evaluator cannot judge."""


@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    ip: str | None = None
    # container port name → (number, protocol), for policies that name ports
    ports: Mapping[str, tuple[int, str]] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """metav1.LabelSelector: every matchLabels pair and every matchExpressions requirement holds."""
    if selector is None:
        return True
    if any(labels.get(key) != value for key, value in (selector.get("matchLabels") or {}).items()):
        return False
    for requirement in selector.get("matchExpressions") or []:
        key, operator, values = requirement["key"], requirement["operator"], list(requirement.get("values") or [])
        if operator == "In":
            ok = key in labels and labels[key] in values
        elif operator == "NotIn":
            ok = key not in labels or labels[key] not in values
        elif operator == "Exists":
            ok = key in labels
        elif operator == "DoesNotExist":
            ok = key not in labels
        else:
            raise PolicyError(f"label selector operator {operator!r} is not one of In, NotIn, Exists, DoesNotExist")
        if not ok:
            return False
    return True


def _types(policy: Mapping[str, Any]) -> set[str]:
    spec = policy.get("spec") or {}
    if spec.get("policyTypes"):
        return set(spec["policyTypes"])
    return {"Ingress"} | ({"Egress"} if spec.get("egress") else set())


def _namespace(policy: Mapping[str, Any]) -> str:
    namespace = (policy.get("metadata") or {}).get("namespace")
    if not namespace:
        raise PolicyError(f"NetworkPolicy {(policy.get('metadata') or {}).get('name')!r} has no namespace")
    return namespace


def _selecting(policies: Iterable[Mapping[str, Any]], pod: Pod, direction: str) -> list[Mapping[str, Any]]:
    return [
        p
        for p in policies
        if direction in _types(p)
        and _namespace(p) == pod.namespace
        and selects((p.get("spec") or {}).get("podSelector") or {}, pod.labels)
    ]


def isolated(policies: Iterable[Mapping[str, Any]], pod: Pod, direction: str = "Ingress") -> bool:
    """Does some policy of this direction select `pod` (so that only what it admits gets through)?"""
    return bool(_selecting([p for p in policies if p.get("kind", "NetworkPolicy") == "NetworkPolicy"], pod, direction))


def _peer_matches(
    peer: Mapping[str, Any], policy_namespace: str, other: Pod, namespaces: Mapping[str, Mapping[str, str]]
) -> bool:
    if "ipBlock" in peer:
        if "podSelector" in peer or "namespaceSelector" in peer:
            raise PolicyError("a peer with ipBlock may have no pod or namespace selector")
        if other.ip is None:
            return False
        address = ipaddress.ip_address(other.ip)
        block = peer["ipBlock"]
        if address not in ipaddress.ip_network(block["cidr"], strict=False):
            return False
        return not any(address in ipaddress.ip_network(ex, strict=False) for ex in block.get("except") or [])
    pod_selector, namespace_selector = peer.get("podSelector"), peer.get("namespaceSelector")
    if pod_selector is None and namespace_selector is None:
        raise PolicyError("a peer needs a podSelector, a namespaceSelector or an ipBlock")
    if namespace_selector is None:
        in_scope = other.namespace == policy_namespace
    else:
        labels = {**namespaces.get(other.namespace, {}), NAME_LABEL: other.namespace}
        in_scope = selects(namespace_selector, labels)
    return in_scope and selects(pod_selector or {}, other.labels)


def _port_matches(entries: list[Mapping[str, Any]] | None, destination: Pod, port: int, protocol: str) -> bool:
    if not entries:
        return True
    for entry in entries:
        if entry.get("protocol", "TCP") != protocol:
            continue
        wanted = entry.get("port")
        if wanted is None:
            return True
        if isinstance(wanted, str) and not wanted.isdigit():
            if entry.get("endPort") is not None:
                raise PolicyError("endPort needs a numeric port")
            named = destination.ports.get(wanted)
            if named is not None and named == (port, protocol):
                return True
            continue
        low = int(wanted)
        high = int(entry.get("endPort") or low)
        if low <= port <= high:
            return True
    return False


def _direction_allows(
    policies: list[Mapping[str, Any]],
    namespaces: Mapping[str, Mapping[str, str]],
    isolated: Pod,
    other: Pod,
    destination: Pod,
    port: int,
    protocol: str,
    direction: str,
) -> bool:
    selecting = _selecting(policies, isolated, direction)
    if not selecting:
        return True
    rules_key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    for policy in selecting:
        for rule in (policy.get("spec") or {}).get(rules_key) or []:
            peers = rule.get(peers_key) or []
            if peers and not any(_peer_matches(peer, _namespace(policy), other, namespaces) for peer in peers):
                continue
            if _port_matches(rule.get("ports"), destination, port, protocol):
                return True
    return False


def allowed(
    policies: Iterable[Mapping[str, Any]],
    namespaces: Mapping[str, Mapping[str, str]],
    source: Pod,
    destination: Pod,
    port: int,
    protocol: str = "TCP",
) -> bool:
    """May `source` open a connection to `destination`:`port`/`protocol` under these policies?
    `namespaces`: namespace name → its labels (the name label is implied)."""
    policies = [p for p in policies if p.get("kind", "NetworkPolicy") == "NetworkPolicy"]
    if (source.namespace, source.name) == (destination.namespace, destination.name):
        return True
    egress = _direction_allows(policies, namespaces, source, destination, destination, port, protocol, "Egress")
    ingress = _direction_allows(policies, namespaces, destination, source, destination, port, protocol, "Ingress")
    return egress and ingress


def truth_table(
    policies: Iterable[Mapping[str, Any]],
    namespaces: Mapping[str, Mapping[str, str]],
    sources: Iterable[Pod],
    destinations: Iterable[Pod],
    ports: Iterable[int],
    protocol: str = "TCP",
) -> dict[tuple[str, str, int], bool]:
    """(source, destination, port) → allowed, for every combination (self pairs left out)."""
    policies = list(policies)
    table = {}
    for src in sources:
        for dst in destinations:
            if (src.namespace, src.name) == (dst.namespace, dst.name):
                continue
            for port in ports:
                table[(str(src), str(dst), port)] = allowed(policies, namespaces, src, dst, port, protocol)
    return table
