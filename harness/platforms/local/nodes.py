"""Nodes of the local platform: the workers of reference/kind/cluster.yaml. A node can fail
(its pods die at once and stay down until it returns) and can be drained (cordoned, its
pods evicted one at a time as the PodDisruptionBudget allows, rescheduled elsewhere, or Pending
until it is uncordoned when their volumes bind them to it: binding.py)."""

from __future__ import annotations

import math
import time

from harness.errors import HarnessError
from harness.platforms.base import DisruptionRefused, DrainingNodes, FailingNodes, Node
from harness.platforms.local import binding
from harness.platforms.local.helpers import HelperPods
from harness.platforms.local.policy import selector_matches


class LocalNodes(HelperPods, FailingNodes, DrainingNodes):
    def nodes(self) -> list[Node]:
        return [Node(name, n["schedulable"], n["ready"]) for name, n in self.ledger.nodes.items()]

    def _node(self, node: str) -> dict[str, bool]:
        state = self.ledger.nodes.get(node)
        if state is None:
            raise HarnessError(f"no node named '{node}': the nodes are {', '.join(self.ledger.nodes)}")
        return state

    def fail_node(self, node: str) -> list[str]:
        state = self._node(node)
        pods = [r.name for r in self._redis_records() if r.node == node]
        with self._lock:
            state["ready"] = False
            for name in pods:
                self.ledger.pods[name].held = True
            self._save()
        self._kill(pods)
        return pods

    def recover_node(self, node: str) -> None:
        state = self._node(node)
        pods = [r.name for r in self._redis_records() if r.node == node and r.held]
        with self._lock:
            state["ready"] = True
            for name in pods:
                self.ledger.pods[name].held = False
            self._save()
        self._start([p for p in pods if not self.pod(p).running])

    def cordon(self, node: str) -> None:
        with self._lock:
            self._node(node)["schedulable"] = False
            self._save()

    def uncordon(self, node: str) -> None:
        with self._lock:
            self._node(node)["schedulable"] = True
            self._save()
        self._schedule_pending()

    def _schedule_pending(self) -> None:
        """kube-scheduler tries Pending pods again when a node changes: those that fit now start."""
        pending = [r.name for r in self._redis_records() if not r.node and r.pending and not r.held]
        placed = []
        for name in pending:
            try:
                self._reschedule(name)
                placed.append(name)
            except HarnessError:
                pass
        if placed:
            self._start(placed)

    def _disruptions_allowed(self) -> tuple[int, str]:
        """How many more Redis pods may go voluntarily now, and the budget's name."""
        records = self._redis_records()
        budget = next(
            (b for b in self.manifests.of_kind("PodDisruptionBudget") if records and selector_matches(b["spec"].get("selector"), records[0].labels)),
            None,
        )
        if budget is None:
            return len(records), "none"
        spec = budget["spec"]
        ready = sum(1 for r in records if r.pid and self._probe(r, "readiness"))

        def count(value) -> int:
            if isinstance(value, str) and value.endswith("%"):
                return math.ceil(len(records) * float(value[:-1]) / 100)
            return int(value)

        if "maxUnavailable" in spec:
            allowed = count(spec["maxUnavailable"]) - (len(records) - ready)
        else:
            allowed = ready - count(spec.get("minAvailable", 0))
        return allowed, budget["metadata"]["name"]

    def evict(self, pod: str, timeout: float = 120.0) -> str | None:
        self._record(pod)
        deadline = time.monotonic() + timeout
        while True:
            allowed, budget = self._disruptions_allowed()
            if allowed > 0:
                break
            if time.monotonic() > deadline:
                raise DisruptionRefused(f"evicting {pod}: the PodDisruptionBudget {budget} allowed no disruption for {timeout:.0f}s")
            time.sleep(0.25)
        self._stop([pod], graceful=True)
        while True:
            try:
                self._reschedule(pod)
                break
            except HarnessError:
                if binding.CONFLICT in self.ledger.pods[pod].pending:
                    return None  # its volume binds it to a node it cannot run on now: Pending until that changes
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)  # Pending: a node may become schedulable
        self._start([pod])
        return self.ledger.pods[pod].node
