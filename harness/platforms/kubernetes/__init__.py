"""The kubernetes platform: any cluster in a kubeconfig (kind provisions one from reference/kind/).

Here: the preflight that every operation starts with — kubectl present, a
cluster reachable — so that without a cluster the user gets one clear sentence.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any, NoReturn

from harness import reference
from harness.errors import NoCluster, NotSupported
from harness.platforms.base import Credentials, Platform, Pod


class KubernetesPlatform(Platform):
    """The core contract only, for now: every operation first checks that a cluster answers,
    and says in one sentence when none does. It declares no fault capability, so a test that
    needs one reports "<fault> is not supported on the kubernetes platform"."""

    name = "kubernetes"

    def __init__(self, overlay: str = "kind", context: str | None = None, kubeconfig: str | None = None):
        self.overlay = overlay
        self.context = context
        self.kubeconfig = kubeconfig

    def options(self) -> dict[str, Any]:
        return {"overlay": self.overlay, "context": self.context, "kubeconfig": self.kubeconfig}

    def _kubectl(self, *args: str, timeout: float = 20) -> subprocess.CompletedProcess:
        argv = [
            reference.kubectl(),
            *(["--kubeconfig", self.kubeconfig] if self.kubeconfig else []),
            *(["--context", self.context] if self.context else []),
            *args,
        ]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)

    def preflight(self) -> None:
        reference.overlay_path(self.overlay)
        proc = self._kubectl("cluster-info", "--request-timeout=5s")
        if proc.returncode != 0:
            hint = "create one with `kind create cluster --config reference/kind/cluster.yaml`"
            if shutil.which("docker") and subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
                hint = "kind needs a running Docker engine, and none answers here"
            raise NoCluster(f"no Kubernetes cluster is reachable from the current kubeconfig: {hint}")

    def _unsupported(self, operation: str) -> NoReturn:
        self.preflight()
        raise NotSupported(operation, self.name)

    def up(self) -> None:
        self._unsupported("standing the reference up")

    def down(self, keep_volumes: bool = False) -> None:
        self._unsupported("tearing the reference down")

    def pods(self) -> list[Pod]:
        self._unsupported("listing pods")

    def credentials(self) -> Credentials:
        self._unsupported("reading credentials")

    def versions(self) -> dict[str, str]:
        return {"image": reference.render(self.overlay).redis_container()["image"]}

    def logs(self, pod: str) -> str:
        self._unsupported("reading logs")

    def exec_redis_cli(self, pod: str, *args: str, user: str = "admin", bare: bool = False, timeout: float = 30) -> str:
        self._unsupported("exec into a pod")

    def restart(self, pod: str, graceful: bool = True) -> None:
        self._unsupported("restarting a pod")
