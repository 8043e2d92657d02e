"""The platform contract: the only thing that differs between a laptop and a real cluster.

A small core every platform has, plus capabilities a platform declares by
inheriting them, in the manner of Jepsen's database protocols (Kill, Pause,
Primary): the nemesis and the suites ask for a capability with `require`, and a
platform without it answers "<fault> is not supported on the <platform> platform",
which the gate counts as not run, never as passed.

Every operation means what it means on Kubernetes. Pods are named, labelled,
addressed and scheduled onto nodes as there; no process ids, file paths or other
local notions appear here. The test process stands where a `role: client` pod
would: it reaches every pod's address, and nothing it does needs more. A platform
knows nothing of checkers.
"""

from __future__ import annotations

import abc
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from harness.errors import HarnessError, NotSupported

if TYPE_CHECKING:
    import redis
    from redis.cluster import RedisCluster


@dataclass(frozen=True)
class Pod:
    name: str
    address: str
    labels: dict[str, str]
    node: str
    running: bool
    port: int = 6379
    # why its Redis container last stopped, as the kubelet reports it (lastState.terminated.reason:
    # "OOMKilled", "Error", …); "" when the platform knows of no termination
    last_termination: str = ""


@dataclass(frozen=True)
class Node:
    """A Kubernetes node: `schedulable` is false when cordoned, `ready` false when it failed."""

    name: str
    schedulable: bool = True
    ready: bool = True


@dataclass(frozen=True)
class TlsFiles:
    """Client-side TLS material: the CA that signs the servers, and a client certificate."""

    ca: Path
    cert: Path
    key: Path


@dataclass(frozen=True)
class Credentials:
    tls: TlsFiles | None
    passwords: dict[str, str] = field(repr=False)  # ACL user → password; never printed

    def password(self, user: str) -> str:
        return self.passwords[user]


class Platform(abc.ABC):
    """The core: stand the reference up, see it, reach it, restart a pod."""

    name: str = "abstract"
    overlay: str = "kind"

    # --- lifecycle ----------------------------------------------------------
    @abc.abstractmethod
    def up(self, form: bool = True) -> None:
        """Apply the overlay and wait until the cluster is formed (every pod ready). form=False: the
        pods alone, as Kubernetes leaves them when the bootstrap Job cannot form a cluster (the
        network-policy suite's fallback); a platform that cannot offer that raises NotSupported."""

    @abc.abstractmethod
    def down(self, keep_volumes: bool = False) -> None:
        """Delete everything `up` made and return when it is gone (`kubectl delete --wait`);
        with keep_volumes the PersistentVolumeClaims survive for the next `up`."""

    def detach(self) -> None:  # noqa: B027 — a platform whose clusters outlive their process has nothing to do
        """Leave the cluster up after this process exits (`redis-harness up`, `run --keep`)."""

    @abc.abstractmethod
    def options(self) -> dict[str, Any]:
        """The options that build this platform again in another process (registry.create)."""

    # --- what is there --------------------------------------------------------
    @abc.abstractmethod
    def pods(self) -> list[Pod]:
        """The StatefulSet's pods in ordinal order, with their current address and node."""

    @abc.abstractmethod
    def credentials(self) -> Credentials:
        """How a client pod authenticates: the client certificate and the ACL passwords of the Secret."""

    @abc.abstractmethod
    def versions(self) -> dict[str, str]:
        """The Redis version the pods run, and the image the manifests pin."""

    @abc.abstractmethod
    def logs(self, pod: str) -> str:
        """What the pod's Redis container wrote to stdout/stderr (`kubectl logs`)."""

    def layout(self) -> tuple[int, int]:
        """(masters, replicas per master) the overlay's bootstrap forms."""
        from harness import reference

        return reference.render(self.overlay).cluster_layout()

    def pod(self, name: str) -> Pod:
        for pod in self.pods():
            if pod.name == name:
                return pod
        raise KeyError(f"no pod named {name}")

    def stands_up_from_here(self) -> bool:
        """Can this process tear the reference down and stand it up again? Not from the runner Job's
        pod on Kubernetes: it lives in the reference's namespace, and the caller stood it up."""
        return True

    # --- clients ----------------------------------------------------------------
    def reaches_pods(self) -> bool:
        """Can this process open connections to the pods' addresses, as a `role: client` pod
        would? Locally yes; on Kubernetes only from inside the cluster (the runner Job). Where
        it cannot, observers ask the pods through exec_redis_cli instead."""
        return True

    def client(self, user: str = "app", **options) -> RedisCluster:
        from harness.clients import cluster_client

        return cluster_client(self.pods(), self.credentials(), user=user, **options)

    def node_client(self, pod: str, user: str = "admin", **options) -> redis.Redis:
        from harness.clients import node_client

        return node_client(self.pod(pod), self.credentials(), user=user, **options)

    def handshake(self, address: str, port: int, present: str = "reference", trust: str = "reference", ping: bool = True):
        """A TLS handshake to `address`:`port` from where a client or peer of the reference would make it,
        presenting a certificate of the reference's CA ("reference"), none ("none") or one of a CA the
        cluster has never seen ("foreign"), and trusting the reference's CA or the foreign one. Here,
        from this process with the client certificate; a platform whose NetworkPolicy admits only peers
        to a port makes it from a peer pod."""
        from harness import tlsprobe

        tls = self.credentials().tls
        if tls is None:
            return tlsprobe.Handshake(False, "the reference has no TLS", None)
        foreign = self._foreign_tls() if "foreign" in (present, trust) else None
        ca = foreign / "ca.crt" if foreign is not None and trust == "foreign" else tls.ca
        shown = {"reference": (tls.cert, tls.key), "none": (None, None)}.get(present)
        if shown is None and foreign is not None:
            shown = (foreign / "tls.crt", foreign / "tls.key")
        return tlsprobe.handshake(address, port, ca, *shown, ping=ping)  # type: ignore[misc]

    def _foreign_tls(self) -> Path:
        """A foreign CA and client certificate, made once per platform object, removed at exit."""
        if getattr(self, "_foreign_dir", None) is None:
            import atexit
            import shutil
            import tempfile

            from harness.tlsprobe import foreign_credentials

            directory = Path(tempfile.mkdtemp(prefix="redis-harness-foreign-"))
            atexit.register(shutil.rmtree, directory, True)
            self._foreign_dir = foreign_credentials(directory / "tls")
        return self._foreign_dir

    @abc.abstractmethod
    def exec_redis_cli(self, pod: str, *args: str, user: str = "admin", bare: bool = False, timeout: float = 30) -> str:
        """`kubectl exec POD -- redis-cli …`: its network, its certificate, as `user`; returns stdout.
        With bare, no -h/-p is added (for `--cluster` subcommands that name their own target)."""

    @abc.abstractmethod
    def restart(self, pod: str, graceful: bool = True) -> None:
        """`kubectl delete pod` (graceful: SIGTERM and the grace period; else grace 0, SIGKILL) and
        wait until the StatefulSet's replacement answers: same name and volume, a new address."""


# --- capabilities -------------------------------------------------------------------------
# A platform declares one by inheriting it. Each docstring says what it is on Kubernetes.


class Killing(abc.ABC):
    @abc.abstractmethod
    def kill(self, pod: str) -> None:
        """SIGKILL of the pod's Redis, nothing before it. The platform brings the container back
        as kubelet does under restartPolicy Always, after a short delay and (here) at a new address;
        `kill` returns at once, without waiting for that."""


class HoldingDown(abc.ABC):
    @abc.abstractmethod
    def hold_down(self, pod: str) -> dict[str, Any] | None:
        """SIGKILL the pod's Redis and keep it from running until `release` (Chaos Mesh's
        pod-failure): the pod is there, its process is not. Returns what the platform saw doing it
        (the nemesis records it), or None."""

    @abc.abstractmethod
    def release(self, pod: str) -> dict[str, Any] | None:
        """Let a held pod run again (a new address) and wait until it answers; returns what the
        platform saw (a crash back-off, say), or None."""


class Pausing(abc.ABC):
    @abc.abstractmethod
    def pause(self, pod: str, seconds: float | None = None) -> None:
        """SIGSTOP of the pod's Redis (from the node: Redis is PID 1 in its container, where
        `kill -STOP 1` is ignored); resumed after `seconds` when given."""

    @abc.abstractmethod
    def resume(self, pod: str) -> None:
        """SIGCONT: undo `pause`."""


class RestartingAll(abc.ABC):
    @abc.abstractmethod
    def restart_all(self, graceful: bool = True) -> None:
        """Delete every pod at once (`kubectl delete pods -l …`); wait until the replacements answer."""


class Scaling(abc.ABC):
    @abc.abstractmethod
    def scale(self, replicas: int) -> list[str]:
        """`kubectl scale statefulset`: new pods start empty (not yet cluster members); removed pods
        keep their PersistentVolumeClaims. Returns the pods added or removed."""


class Partitioning(abc.ABC):
    @abc.abstractmethod
    def partition(self, groups: list[list[str]]) -> None:
        """Pods in different groups (pods named in none form one more) stop reaching each other,
        established connections included (nftables drops in each pod's network namespace);
        clients keep reaching every pod, so an isolated master still hears its clients."""

    @abc.abstractmethod
    def heal(self) -> None:
        """Undo `partition`."""


class ShapingNetwork(abc.ABC):
    @abc.abstractmethod
    def degrade_network(
        self, pod: str, delay_ms: float = 0, jitter_ms: float = 0, loss_percent: float = 0, rate_kbit: int | None = None
    ) -> None:
        """Slow the pod's network (tc and nftables in its namespace): delay ± jitter, random loss, a
        bandwidth limit. A kernel without sch_netem cannot delay: NotSupported names that."""

    @abc.abstractmethod
    def restore_network(self, pod: str) -> None:
        """Undo `degrade_network`."""


class FillingVolumes(abc.ABC):
    @abc.abstractmethod
    def fill_volume(self, pod: str) -> None:
        """Take every free block of the pod's data volume (its PersistentVolume)."""

    @abc.abstractmethod
    def free_volume(self, pod: str) -> None:
        """Undo `fill_volume`."""


class LosingPower(abc.ABC):
    @abc.abstractmethod
    def lose_power(self, pod: str) -> dict[str, int]:
        """The power fails under the pod: its Redis dies at once (SIGKILL, with every process it
        started) and its data volume loses what the node had not written to disk — every file
        goes back to its contents at its last fsync/fdatasync, as Jepsen's LazyFS makes happen.
        The platform then brings the container back as after `kill`; `lose_power` returns at
        once, with what the volume lost ({"files": ..., "bytes": ...}).

        On Kubernetes no API does this: it takes a node's power switch, or a storage layer
        built to drop its cache (a LazyFS-backed CSI driver), so the kubernetes platform does
        not declare it."""


class Nodes(abc.ABC):
    @abc.abstractmethod
    def nodes(self) -> list[Node]:
        """The worker nodes pods can be scheduled onto (`kubectl get nodes`)."""


class FailingNodes(Nodes):
    @abc.abstractmethod
    def fail_node(self, node: str) -> list[str]:
        """The node is lost: every pod on it dies at once and stays unreachable (a StatefulSet does
        not replace pods of an unreachable node). Returns those pods."""

    @abc.abstractmethod
    def recover_node(self, node: str) -> None:
        """The node returns: its pods start again (new addresses) and answer."""


class DrainingNodes(Nodes):
    @abc.abstractmethod
    def cordon(self, node: str) -> None:
        """Mark the node unschedulable."""

    @abc.abstractmethod
    def uncordon(self, node: str) -> None:
        """Mark the node schedulable again; pods do not move back by themselves."""

    @abc.abstractmethod
    def evict(self, pod: str, timeout: float = 120.0) -> str | None:
        """The Eviction API: wait until the PodDisruptionBudget allows it (DisruptionRefused when it
        has not within `timeout`), stop the pod gracefully, and wait until its replacement is scheduled
        (onto a schedulable node, honouring the StatefulSet's constraints) and answers. Returns the
        node it now runs on; None when its volumes bind it to a node it cannot run on now (a cordoned
        one: kind's local-path volumes), where it stays Pending until that node is back; raises when
        it stays Pending for another reason, saying why."""

    def drain(self, node: str, timeout: float = 300.0, first: Collection[str] = ()) -> Drained:
        """`kubectl drain`: cordon, then evict the node's pods one at a time, those named in `first`
        before the others (kubectl asks for every eviction at once, so the PodDisruptionBudget may
        admit them in any order).

        With node-bound volumes an evicted pod cannot move: it waits, Pending, for the node to be
        uncordoned, and the budget counts it unavailable meanwhile. The drain then evicts what the
        budget still allows within BUDGET_RETRY_SECONDS and keeps the rest on the node (kubectl
        drain would retry until its timeout: nothing changes while the node is cordoned). What such a
        drain proves is that every shard kept serving while the node's pods were gone."""
        self.cordon(node)
        result = Drained()
        on_node = [p.name for p in self.pods() if p.node == node]  # type: ignore[attr-defined]
        for pod in sorted(on_node, key=lambda name: name not in first):
            try:
                went = self.evict(pod, timeout=BUDGET_RETRY_SECONDS if result.waiting else timeout)
            except DisruptionRefused as exc:
                if not result.waiting:
                    raise
                result.kept[pod] = f"{exc}, while {', '.join(result.waiting)} waits for this node"
                continue
            if went is None:
                result.waiting[pod] = f"its volume binds it to {node}"
            else:
                result.moved[pod] = went
        return result


# kube-scheduler's VolumeBinding filter, for a node the pod's bound volume cannot be used on
# (pkg/scheduler/framework/plugins/volumebinding: ErrReasonNodeConflict).
VOLUME_NODE_CONFLICT = "node(s) had volume node affinity conflict"
BUDGET_RETRY_SECONDS = 5.0  # kubectl drain asks again every 5 s: once more


class DisruptionRefused(HarnessError):
    """The PodDisruptionBudget did not allow an eviction in time."""


@dataclass
class Drained:
    """What a drain did: pods moved (→ their node), pods waiting Pending for the drained node (→ why),
    pods kept on it because the budget allowed no more evictions (→ why)."""

    moved: dict[str, str] = field(default_factory=dict)
    waiting: dict[str, str] = field(default_factory=dict)
    kept: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, dict[str, str]]:
        return {"moved": dict(self.moved), "waiting": dict(self.waiting), "kept": dict(self.kept)}


class ProbingPolicy(abc.ABC):
    @abc.abstractmethod
    def reach_all(
        self, from_labels: dict[str, str], ports: list[int], namespace: str | None = None, pods: list[str] | None = None
    ) -> dict[str, dict[int, str]]:
        """From one short-lived pod with these labels (in `namespace`, default the Redis one), to
        every Redis pod (or `pods`): port → "open", "refused" (admitted, nothing listens) or
        "filtered" (dropped by policy)."""

    @abc.abstractmethod
    def policy_canary(self) -> dict[str, str]:
        """A listener reached before and after a deny-all policy selects it:
        {"without_policy": ..., "with_deny_all": ...} — does this platform enforce NetworkPolicy at all?"""

    def reach(self, from_labels: dict[str, str], to_pod: str, ports: list[int], namespace: str | None = None) -> dict[int, str]:
        return self.reach_all(from_labels, ports, namespace, pods=[to_pod])[to_pod]


class Bootstrapping(abc.ABC):
    @abc.abstractmethod
    def run_bootstrap(self) -> str:
        """Run the reference's bootstrap Job again (it must be idempotent); returns its log."""


class Monitoring(abc.ABC):
    @abc.abstractmethod
    def monitoring(self):
        """The reference's monitoring, running: its exporters scraped by a Prometheus with its scrape
        job and alert rules, delivering to an Alertmanager whose webhook the harness receives. The
        object (a context manager; `stop()` ends what it started) answers `alerts()`,
        `alert_durations()` (each rule's `for:`), `query(expr)` and `deliveries()`.

        On Kubernetes this is the cluster's own Prometheus and Alertmanager, which the harness does
        not stand up, so the kubernetes platform does not declare it."""


C = TypeVar("C")

CAPABILITIES: dict[type, str] = {
    Killing: "killing a pod",
    HoldingDown: "holding a pod down",
    Pausing: "pausing a pod",
    RestartingAll: "restarting every pod",
    Scaling: "scaling the StatefulSet",
    Partitioning: "a network partition",
    ShapingNetwork: "a degraded network",
    FillingVolumes: "filling a volume",
    LosingPower: "a power loss",
    Nodes: "listing nodes",
    FailingNodes: "a node failure",
    DrainingNodes: "draining a node",
    ProbingPolicy: "probing NetworkPolicy",
    Bootstrapping: "re-running the bootstrap Job",
    Monitoring: "watching the reference's alerts",
}


def capabilities(platform: Platform) -> list[str]:
    """What this platform declares, by capability name."""
    return [cap.__name__ for cap in CAPABILITIES if isinstance(platform, cap)]


def require(platform: Platform, capability: type[C]) -> C:
    """The platform as `capability`, or NotSupported: "<fault> is not supported on the <name> platform"."""
    if not isinstance(platform, capability):
        raise NotSupported(CAPABILITIES[capability], platform.name)
    return platform  # type: ignore[return-value]
