"""Snapshots of a live cluster, for the pure checks in harness/topology.py."""

from __future__ import annotations

import time
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor

from harness.errors import HarnessError
from harness.platforms.base import Platform, Pod
from harness.topology import PodState, Violation, check_invariants, parse_cluster_nodes, parse_info


def pod_state(platform: Platform, pod: Pod, timeout: float = 2.0) -> PodState:
    if not pod.running:
        return PodState(pod.name, pod.address, pod.node, error="not running")
    if not platform.reaches_pods():
        return _pod_state_by_exec(platform, pod, timeout)
    try:
        with platform.node_client(pod.name, socket_timeout=timeout) as client:
            return PodState(
                pod=pod.name,
                address=pod.address,
                node=pod.node,
                # Split command names bypass redis-py's reply parsers: the raw text is parsed here.
                nodes=parse_cluster_nodes(client.execute_command("CLUSTER", "NODES")),
                cluster_info=parse_info(client.execute_command("CLUSTER", "INFO")),
                replication={k: str(v) for k, v in client.info("replication").items()},
            )
    except Exception as exc:  # any failure to answer is a finding, not a crash
        return PodState(pod.name, pod.address, pod.node, error=f"{type(exc).__name__}: {exc}")


def _pod_state_by_exec(platform: Platform, pod: Pod, timeout: float) -> PodState:
    """The same three answers through `kubectl exec … redis-cli`, for a process outside the cluster."""
    try:
        ask = lambda *args: platform.exec_redis_cli(pod.name, *args, timeout=max(timeout, 10.0))  # noqa: E731
        return PodState(
            pod=pod.name,
            address=pod.address,
            node=pod.node,
            nodes=parse_cluster_nodes(ask("CLUSTER", "NODES")),
            cluster_info=parse_info(ask("CLUSTER", "INFO")),
            replication=parse_info(ask("INFO", "replication")),
        )
    except Exception as exc:  # any failure to answer is a finding, not a crash
        return PodState(pod.name, pod.address, pod.node, error=f"{type(exc).__name__}: {exc}")


def snapshot(platform: Platform, only: Collection[str] | None = None) -> list[PodState]:
    """Every pod's state, asked side by side; with `only`, those pods' alone."""
    pods = [p for p in platform.pods() if only is None or p.name in only]
    with ThreadPoolExecutor(max_workers=len(pods) or 1) as pool:
        return list(pool.map(lambda p: pod_state(platform, p), pods))


def wait_healthy(
    platform: Platform, timeout: float = 60.0, placement: bool = False, masters: int | None = None
) -> tuple[float, list[PodState]]:
    """Poll until every invariant holds for the layout the overlay asks for (or for `masters`
    shards, while a test has scaled it); returns (seconds waited, final snapshot). Replica
    placement (no replica on its master's node) is checked only with `placement`: a cluster whose
    pods share nodes still serves, and the placement suite judges it where it is the point."""
    layout_masters, replicas = platform.layout()
    masters = masters or layout_masters
    start = time.monotonic()
    violations: list[Violation] = []
    while True:
        states = snapshot(platform)
        violations = check_invariants(states, expected_masters=masters, replicas_per_master=replicas, placement=placement)
        if not violations:
            return time.monotonic() - start, states
        if time.monotonic() - start > timeout:
            detail = "; ".join(v.message for v in violations[:5])
            raise HarnessError(f"cluster not healthy after {timeout:.0f}s: {detail}")
        time.sleep(0.25)
