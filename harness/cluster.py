"""Live cluster queries and admin operations the suites compose: who is master of
what, waiting for a role change, failover and resharding through redis-cli."""

from __future__ import annotations

import time
from dataclasses import dataclass

from harness.errors import HarnessError
from harness.platforms.base import Platform
from harness.topology import NodeEntry, PodState


@dataclass(frozen=True)
class Shard:
    master: str  # pod name
    master_id: str
    replicas: tuple[str, ...]  # pod names
    slots: tuple[tuple[int, int], ...]


def shards(states: list[PodState]) -> list[Shard]:
    """Shards as the first answering pod sees them, in pod order of their masters."""
    view = next(s for s in states if s.error is None)
    pod_at = {s.address: s.pod for s in states}
    result = []
    for n in view.nodes:
        if n.is_master and n.slots:
            replicas = tuple(sorted(pod_at.get(r.ip, r.ip) for r in view.nodes if r.is_replica and r.master_id == n.id))
            result.append(Shard(pod_at.get(n.ip, n.ip), n.id, replicas, n.slots))
    return sorted(result, key=lambda s: s.master)


def node_of(states: list[PodState], pod: str) -> NodeEntry:
    state = next(s for s in states if s.pod == pod)
    me = state.myself()
    if me is None:
        raise HarnessError(f"{pod} did not answer: {state.error}")
    return me


def wait_for(condition, timeout: float, what: str, interval: float = 0.1):
    """Poll `condition` (returning a truthy value) until it holds; returns (value, seconds waited)."""
    start = time.monotonic()
    while True:
        try:
            value = condition()
        except Exception:  # the cluster is in flux; keep asking
            value = None
        if value:
            return value, time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise HarnessError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def node_timeout_s(platform: Platform) -> float:
    """The running cluster's cluster-node-timeout, in seconds (asked, not read from a file)."""
    pod = next(p.name for p in platform.pods() if p.running)
    reply = platform.exec_redis_cli(pod, "CONFIG", "GET", "cluster-node-timeout").split()
    return int(reply[-1]) / 1000


def cluster_state(platform: Platform, pod: str) -> str:
    out = platform.exec_redis_cli(pod, "CLUSTER", "INFO")
    return next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("cluster_state:")), "?")


def reshard(platform: Platform, anchor: str, source_id: str, target_id: str, slots: int) -> str:
    """Move `slots` slots from one master to another with redis-cli --cluster reshard."""
    pod = platform.pod(anchor)
    return platform.exec_redis_cli(
        anchor,
        "--cluster",
        "reshard",
        f"{pod.address}:{pod.port}",
        "--cluster-from",
        source_id,
        "--cluster-to",
        target_id,
        "--cluster-slots",
        str(slots),
        "--cluster-yes",
        "--cluster-pipeline",
        "100",
        bare=True,
        timeout=300,
    )


def survivors_serve_all(platform: Platform, dead: list[str]) -> bool:
    """Every slot has a master among the pods not in `dead`, and every answering pod says cluster_state:ok."""
    from harness.observe import snapshot

    states = [s for s in snapshot(platform) if s.pod not in dead and s.error is None]
    if not states or any(s.cluster_info.get("cluster_state") != "ok" for s in states):
        return False
    dead_addresses = {platform.pod(p).address for p in dead}
    covered = sum(
        end - start + 1
        for n in states[0].nodes
        if n.is_master and n.ip not in dead_addresses and not ({"fail", "fail?"} & n.flags)
        for start, end in n.slots
    )
    return covered == 16384
