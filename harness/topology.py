"""Redis Cluster topology: parsers for CLUSTER NODES / CLUSTER SHARDS / INFO, and
the invariants a healthy reference cluster holds. Pure functions over text and
snapshots; collecting a snapshot from a live cluster is harness/observe.py's job."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SLOTS = 16384
BAD_FLAGS = {"fail", "fail?", "handshake", "noaddr", "nofailover"}


@dataclass(frozen=True)
class NodeEntry:
    """One line of CLUSTER NODES."""

    id: str
    ip: str
    port: int
    bus_port: int
    hostname: str
    flags: frozenset[str]
    master_id: str | None
    link_state: str
    config_epoch: int
    slots: tuple[tuple[int, int], ...] = ()

    @property
    def is_master(self) -> bool:
        return "master" in self.flags

    @property
    def is_replica(self) -> bool:
        return "slave" in self.flags

    @property
    def is_myself(self) -> bool:
        return "myself" in self.flags

    def slot_count(self) -> int:
        return sum(end - start + 1 for start, end in self.slots)


def parse_cluster_nodes(text: str) -> list[NodeEntry]:
    """Parse CLUSTER NODES output. Slot migration markers ([slot->-id]) are skipped."""
    entries = []
    for line in text.strip().splitlines():
        parts = line.split()
        if len(parts) < 8:
            raise ValueError(f"malformed CLUSTER NODES line: {line!r}")
        node_id, addr, flags, master, _ping, _pong, epoch, link = parts[:8]
        address, _, hostname = addr.partition(",")
        hostport, _, bus = address.partition("@")
        ip, _, port = hostport.rpartition(":")
        slots = []
        for item in parts[8:]:
            if item.startswith("["):
                continue
            start, _, end = item.partition("-")
            slots.append((int(start), int(end or start)))
        entries.append(
            NodeEntry(
                id=node_id,
                ip=ip,
                port=int(port or 0),
                bus_port=int(bus or 0),
                hostname=hostname,
                flags=frozenset(flags.split(",")),
                master_id=None if master == "-" else master,
                link_state=link,
                config_epoch=int(epoch),
                slots=tuple(slots),
            )
        )
    return entries


def parse_info(text: str) -> dict[str, str]:
    """INFO / CLUSTER INFO as a flat dict of strings."""
    result = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        key, _, value = line.partition(":")
        result[key] = value
    return result


def shards_from_reply(reply: list[Any]) -> list[dict[str, Any]]:
    """Normalise CLUSTER SHARDS (RESP2 flat lists or dicts) to [{"slots": [(a, b)], "nodes": [dict]}]."""

    def as_dict(item: Any) -> dict[str, Any]:
        if isinstance(item, dict):
            return {str(k): v for k, v in item.items()}
        return {str(item[i]): item[i + 1] for i in range(0, len(item), 2)}

    shards = []
    for raw in reply:
        shard = as_dict(raw)
        flat = [int(s) for s in shard.get("slots", [])]
        slots = [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]
        shards.append({"slots": slots, "nodes": [as_dict(n) for n in shard.get("nodes", [])]})
    return shards


@dataclass(frozen=True)
class PodState:
    """What one pod said about itself and the cluster, or why it could not."""

    pod: str
    address: str
    node: str
    nodes: list[NodeEntry] = field(default_factory=list)
    cluster_info: dict[str, str] = field(default_factory=dict)
    replication: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    def myself(self) -> NodeEntry | None:
        return next((n for n in self.nodes if n.is_myself), None)


@dataclass(frozen=True)
class Violation:
    code: str
    message: str


def check_invariants(
    states: list[PodState], expected_masters: int = 3, replicas_per_master: int = 1, placement: bool = True
) -> list[Violation]:
    """Everything a healthy reference cluster holds; an empty list means healthy. With placement, also
    where roles run: no replica on its master's node, masters on distinct nodes ("co-located")."""
    out: list[Violation] = []
    answering = [s for s in states if s.error is None]
    for s in states:
        if s.error is not None:
            out.append(Violation("pod-unreachable", f"{s.pod} did not answer: {s.error}"))
    if not answering:
        return out
    for s in answering:
        state = s.cluster_info.get("cluster_state")
        if state != "ok":
            out.append(Violation("cluster-state", f"{s.pod} reports cluster_state:{state}"))

    addresses = {s.address: s for s in states}
    view = answering[0].nodes
    by_id = {n.id: n for n in view}

    # Slots: every slot served by exactly one master, and every pod agrees.
    owner: dict[int, str] = {}
    for n in view:
        if not n.is_master:
            continue
        for start, end in n.slots:
            for slot in range(start, end + 1):
                if slot in owner:
                    out.append(Violation("slots-overlap", f"slot {slot} claimed by {owner[slot][:8]} and {n.id[:8]}"))
                    break
                owner[slot] = n.id
    if len(owner) != SLOTS:
        out.append(Violation("slots-uncovered", f"{SLOTS - len(owner)} of {SLOTS} slots have no master"))
    reference_map = {n.id: n.slots for n in view if n.is_master}
    for s in answering[1:]:
        if {n.id: n.slots for n in s.nodes if n.is_master} != reference_map:
            out.append(Violation("slots-disagree", f"{s.pod} and {answering[0].pod} disagree about slot ownership"))

    # Membership: one node per pod, at the pod's current address, none failing.
    if len(view) != len(states):
        out.append(Violation("membership", f"{answering[0].pod} knows {len(view)} nodes, there are {len(states)} pods"))
    for s in answering:
        for n in s.nodes:
            if n.ip not in addresses:
                out.append(Violation("stale-address", f"{s.pod} lists {n.id[:8]} at {n.ip}, which no pod has"))
            bad = n.flags & BAD_FLAGS
            if bad:
                out.append(Violation("node-flagged", f"{s.pod} flags {n.id[:8]} ({n.ip}) as {','.join(sorted(bad))}"))
            if not n.is_myself and n.link_state != "connected":
                out.append(Violation("link-down", f"{s.pod} has no bus link to {n.id[:8]} ({n.ip})"))

    # Layout: the expected masters, each with its connected replicas on another node.
    masters = [n for n in view if n.is_master and n.slots]
    if len(masters) != expected_masters:
        out.append(Violation("master-count", f"{len(masters)} masters serve slots, expected {expected_masters}"))
    for m in masters:
        replicas = [n for n in view if n.is_replica and n.master_id == m.id]
        live = []
        for r in replicas:
            rs = addresses.get(r.ip)
            if rs is not None and rs.error is None and rs.replication.get("master_link_status") == "up":
                live.append(r)
            master_state = addresses.get(m.ip)
            if rs is not None and master_state is not None and rs.node == master_state.node:
                out.append(
                    Violation("co-located", f"replica {rs.pod} runs on the node of its master {master_state.pod} ({rs.node})")
                )
        if len(live) < replicas_per_master:
            out.append(
                Violation(
                    "master-without-replica", f"master {m.id[:8]} ({m.ip}) has {len(live)} replica(s) with master_link_status:up"
                )
            )
    # Spread: with at least as many nodes as masters, no two masters share a node (losing it
    # would take a majority of the voters, and no failover could follow).
    node_of_address = {s.address: s.node for s in states}
    master_nodes = [node_of_address.get(m.ip) for m in masters if node_of_address.get(m.ip)]
    if len({s.node for s in states if s.node}) >= len(masters) and len(set(master_nodes)) < len(master_nodes):
        shared = sorted({n for n in master_nodes if master_nodes.count(n) > 1})
        out.append(Violation("co-located", f"masters share node(s) {', '.join(shared)} while another node runs none"))
    if not placement:
        out = [v for v in out if v.code != "co-located"]
    for rid, r in by_id.items():
        if r.is_replica and r.master_id not in by_id:
            out.append(Violation("orphan-replica", f"replica {rid[:8]} follows unknown master {r.master_id}"))
    return out
