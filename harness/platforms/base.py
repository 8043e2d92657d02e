"""The platform contract: the only thing that differs between a laptop and a real cluster.

Pods are named, labelled and addressed as on Kubernetes; no process ids, file
paths or other local notions appear here. A platform knows nothing of checkers.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import NotSupported

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
    """Stand the reference up, tear it down, and fault single pods."""

    name: str = "abstract"
    overlay: str = "kind"

    # --- lifecycle ----------------------------------------------------------
    @abc.abstractmethod
    def up(self) -> None:
        """Stand the reference up and wait until the cluster is formed."""

    @abc.abstractmethod
    def down(self, keep_volumes: bool = False) -> None:
        """Remove everything `up` made; with keep_volumes, the data survives for the next `up`."""

    # --- what is there --------------------------------------------------------
    @abc.abstractmethod
    def pods(self) -> list[Pod]:
        """The Redis pods, in StatefulSet order."""

    @abc.abstractmethod
    def credentials(self) -> Credentials:
        """How clients authenticate: TLS files and ACL passwords."""

    @abc.abstractmethod
    def versions(self) -> dict[str, str]:
        """Redis version the platform runs, and the image the manifests pin."""

    def layout(self) -> tuple[int, int]:
        """(masters, replicas per master) the overlay's bootstrap forms."""
        from harness import reference

        return reference.render(self.overlay).cluster_layout()

    def pod(self, name: str) -> Pod:
        for pod in self.pods():
            if pod.name == name:
                return pod
        raise KeyError(f"no pod named {name}")

    # --- clients ----------------------------------------------------------------
    def client(self, user: str = "app", **options) -> RedisCluster:
        from harness.clients import cluster_client

        return cluster_client(self, user=user, **options)

    def node_client(self, pod: str, user: str = "admin", **options) -> redis.Redis:
        from harness.clients import node_client

        return node_client(self, self.pod(pod), user=user, **options)

    @abc.abstractmethod
    def exec_redis_cli(self, pod: str, *args: str, user: str = "admin", bare: bool = False, timeout: float = 30) -> str:
        """redis-cli inside the pod (its network, its certificate), as `user`; returns stdout.
        With bare, no -h/-p is added (for `--cluster` subcommands that name their own target)."""

    # --- faults -------------------------------------------------------------
    @abc.abstractmethod
    def restart(self, pod: str, graceful: bool = True) -> None:
        """Stop the pod (SIGTERM, or SIGKILL when not graceful) and start it again with a new address."""

    @abc.abstractmethod
    def kill(self, pod: str) -> None:
        """SIGKILL the pod's Redis. Locally it stays down until `start`; Kubernetes brings it back itself."""

    @abc.abstractmethod
    def start(self, pod: str) -> None:
        """Bring a killed pod back (a new address) and wait until it answers."""

    @abc.abstractmethod
    def pause(self, pod: str, seconds: float | None = None) -> None:
        """Freeze the pod's Redis (SIGSTOP); resume after `seconds` when given."""

    @abc.abstractmethod
    def resume(self, pod: str) -> None:
        """Undo `pause`."""

    @abc.abstractmethod
    def restart_all(self, graceful: bool = True) -> None:
        """Stop every pod at once, start them all again (new addresses), wait until they answer."""

    def logs(self, pod: str) -> str:
        """Everything the pod's Redis container wrote to stdout/stderr."""
        raise NotSupported("logs", self.name)

    def scale(self, replicas: int) -> list[str]:
        """Scale the StatefulSet to `replicas` pods; returns the pods added or removed."""
        raise NotSupported("scale", self.name)

    def partition(self, groups: list[list[str]]) -> None:
        """Pods in different groups (pods named in none form one more) stop reaching each other;
        clients keep reaching every pod, so an isolated master still hears its clients."""
        raise NotSupported("partition", self.name)

    def heal(self) -> None:
        """Undo `partition`."""
        raise NotSupported("heal", self.name)

    def degrade_network(
        self, pod: str, delay_ms: float = 0, jitter_ms: float = 0, loss_percent: float = 0, rate_kbit: int | None = None
    ) -> None:
        """Slow the pod's network: added delay (± jitter), random loss, a bandwidth limit."""
        raise NotSupported("degrading the network", self.name)

    def restore_network(self, pod: str) -> None:
        """Undo `degrade_network`."""
        raise NotSupported("degrading the network", self.name)

    def fill_volume(self, pod: str) -> None:
        """Take every free block of the pod's data volume."""
        raise NotSupported("filling a volume", self.name)

    def free_volume(self, pod: str) -> None:
        """Undo `fill_volume`."""
        raise NotSupported("filling a volume", self.name)

    def reach(self, from_labels: dict[str, str], to_pod: str, ports: list[int], namespace: str | None = None) -> dict[int, str]:
        """From a new pod with these labels: port → "open", "refused" (admitted, nothing listens) or "filtered"."""
        raise NotSupported("reach", self.name)

    def reach_all(
        self, from_labels: dict[str, str], ports: list[int], namespace: str | None = None, pods: list[str] | None = None
    ) -> dict[str, dict[int, str]]:
        """`reach` against every Redis pod (or `pods`) from one new pod."""
        return {p: self.reach(from_labels, p, ports, namespace) for p in (pods or [pod.name for pod in self.pods()])}

    def policy_canary(self) -> dict[str, str]:
        """Reach a listener before and after a deny-all policy selects it: {"without_policy": ..., "with_deny_all": ...}."""
        raise NotSupported("policy_canary", self.name)

    def connect_probe(self, from_labels: dict[str, str], to_pod: str, port: int, namespace: str | None = None) -> bool:
        """Can a pod with these labels open a TCP connection to `to_pod`:`port`?"""
        return self.reach(from_labels, to_pod, [port], namespace)[port] == "open"
