"""What every part of the local platform shares: the ledger (what exists), the rendered
manifests, the pod network, and the policies in force."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from harness import reference
from harness.errors import HarnessError
from harness.platforms.local import faults, policy
from harness.platforms.local.ledger import Ledger, PodRecord
from harness.platforms.local.network import AUTO_PREFIX, DEFAULT_LOOPBACK_SUBNET, LoopbackNetwork, NamespaceNetwork, free_range

# Where the reference mounts its volumes → the variable its scripts read that path from.
MOUNT_ENV = {
    "/etc/redis-config": "REDIS_CONFIG_DIR",
    "/etc/redis-tls": "REDIS_TLS_DIR",
    "/etc/redis-auth": "REDIS_SECRETS_DIR",
    "/data": "REDIS_DATA_DIR",
    "/run/redis": "REDIS_RUN_DIR",
}
AUTH_SECRET = "redis-auth"
CLIENT_TLS_SECRET = "redis-client-tls"
DEFAULT_STATE_DIR = Path(os.environ.get("REDIS_HARNESS_STATE_DIR", Path.home() / ".local" / "state" / "redis-harness"))


class LocalState:
    overlay: str
    cluster: str
    root: Path
    subnet: str | None
    startup_timeout: float
    tag: str
    _ledger: Ledger | None
    _manifests: reference.Manifests | None
    _lock: threading.RLock
    _extra_policies: list[dict[str, Any]]

    @property
    def ledger_path(self) -> Path:
        return self.root / "ledger.json"

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            self._ledger = Ledger.load(self.ledger_path)
            if self._ledger is None:
                raise HarnessError(f"cluster '{self.cluster}' is not up: run `redis-harness up` first")
        return self._ledger

    def _save(self) -> None:
        if self._ledger is not None:
            self._ledger.save(self.ledger_path)

    @property
    def manifests(self) -> reference.Manifests:
        if self._manifests is None:
            overlay = self._ledger.overlay if self._ledger else self.overlay
            self._manifests = reference.render(overlay)
        return self._manifests

    def _network(self) -> NamespaceNetwork | LoopbackNetwork:
        if self.ledger.network == "netns":
            return NamespaceNetwork(self.ledger, self.tag, self.ledger.subnet or self.subnet or free_range(AUTO_PREFIX))
        return LoopbackNetwork(self.ledger, self.ledger.subnet or self.subnet or DEFAULT_LOOPBACK_SUBNET)

    def _redis_records(self) -> list[PodRecord]:
        return [p for p in self.ledger.pods.values() if p.kind == "redis"]

    def _record(self, pod: str) -> PodRecord:
        rec = self.ledger.pods.get(pod)
        if rec is None or rec.kind != "redis":
            raise HarnessError(f"no pod named '{pod}' in cluster '{self.cluster}'")
        return rec

    def _port(self) -> int:
        for port in self.manifests.redis_container().get("ports", []):
            if port.get("name") == "redis":
                return int(port["containerPort"])
        return 6379

    def _grace_seconds(self) -> float:
        return float(self.manifests.redis_statefulset()["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30))

    def _refresh_policies(self) -> None:
        """Re-translate every NetworkPolicy for every isolated namespace (addresses changed)."""
        network = self._network()
        if not network.enforces_policy:
            return
        policies = self.manifests.network_policies() + self._extra_policies
        port_names = {p["name"]: int(p["containerPort"]) for p in self.manifests.redis_container().get("ports", [])}
        records = [r for r in self.ledger.pods.values() if r.address]
        peers = [
            policy.PolicyPod(r.name, r.namespace, r.labels, r.address, named_ports=port_names if r.kind == "redis" else {})
            for r in records
        ]
        for rec, peer in zip(records, peers, strict=True):
            if rec.netns:
                network.apply_ruleset(rec, policy.ingress_ruleset(policies, peer, peers, str(self.ledger.gateway)))
        self._apply_partition()

    def _apply_partition(self) -> None:
        """The partition's drops in every Redis pod's namespace (addresses change on restarts)."""
        network = self._network()
        redis = [r for r in self._redis_records() if r.netns]
        address = {r.name: r.address for r in redis}
        cuts = faults.partition_cuts(self.ledger.partition, list(address)) if self.ledger.partition else {}
        for rec in redis:
            cut = [address[p] for p in cuts.get(rec.name, []) if address[p]]
            network.apply_table(rec, faults.PARTITION_TABLE, faults.partition_ruleset(cut))
