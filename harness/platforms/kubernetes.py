"""The kubernetes platform: any cluster in a kubeconfig (kind provisions one from reference/kind/).

Here: the preflight that every operation starts with — kubectl present, a
cluster reachable — so that without a cluster the user gets one clear sentence.
"""

from __future__ import annotations

import shutil
import subprocess

from harness import reference
from harness.errors import HarnessError, NoCluster, NotSupported
from harness.platforms.base import Credentials, Platform, Pod


class KubernetesPlatform(Platform):
    name = "kubernetes"

    def __init__(self, overlay: str = "kind", context: str | None = None, **_ignored):
        self.overlay = overlay
        self.context = context

    def _kubectl(self, *args: str, timeout: float = 20) -> subprocess.CompletedProcess:
        argv = [reference.kubectl(), *(["--context", self.context] if self.context else []), *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)

    def preflight(self) -> None:
        reference.overlay_path(self.overlay)
        proc = self._kubectl("cluster-info", "--request-timeout=5s")
        if proc.returncode != 0:
            hint = "create one with `kind create cluster --config reference/kind/cluster.yaml`"
            if shutil.which("docker") and subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
                hint = "kind needs a running Docker engine, and none answers here"
            raise NoCluster(f"no Kubernetes cluster is reachable from the current kubeconfig: {hint}")

    def _unsupported(self, operation: str):
        self.preflight()
        raise NotSupported(operation, self.name)

    def up(self) -> None:
        self._unsupported("up")

    def down(self, keep_volumes: bool = False) -> None:
        self._unsupported("down")

    def pods(self) -> list[Pod]:
        self._unsupported("pods")
        return []

    def credentials(self) -> Credentials:
        self._unsupported("credentials")
        raise HarnessError("unreachable")

    def versions(self) -> dict[str, str]:
        return {"image": reference.render(self.overlay).redis_container()["image"]}

    def exec_redis_cli(self, pod: str, *args: str, user: str = "admin", bare: bool = False, timeout: float = 30) -> str:
        self._unsupported("exec_redis_cli")
        return ""

    def restart(self, pod: str, graceful: bool = True) -> None:
        self._unsupported("restart")

    def kill(self, pod: str) -> None:
        self._unsupported("kill")

    def start(self, pod: str) -> None:
        self._unsupported("start")

    def pause(self, pod: str, seconds: float | None = None) -> None:
        self._unsupported("pause")

    def resume(self, pod: str) -> None:
        self._unsupported("resume")

    def restart_all(self, graceful: bool = True) -> None:
        self._unsupported("restart_all")

    def partition(self, groups: list[list[str]]) -> None:
        self._unsupported("partition")

    def heal(self) -> None:
        self._unsupported("heal")

    def degrade_network(
        self, pod: str, delay_ms: float = 0, jitter_ms: float = 0, loss_percent: float = 0, rate_kbit=None
    ) -> None:
        self._unsupported("degrading the network")

    def restore_network(self, pod: str) -> None:
        self._unsupported("degrading the network")

    def fill_volume(self, pod: str) -> None:
        self._unsupported("filling a volume")

    def free_volume(self, pod: str) -> None:
        self._unsupported("filling a volume")
