"""The reference deployment as Kubernetes objects, rendered by `kubectl kustomize`.

Both platforms read the reference from here, so the local platform runs the very
redis.conf, scripts, NetworkPolicies and certificate names that Kubernetes gets.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.errors import HarnessError

REFERENCE_DIR = Path(os.environ.get("REDIS_HARNESS_REFERENCE", Path(__file__).resolve().parent.parent / "reference"))
SERVER_COMPONENT = "server"
SETTINGS = "redis-cluster-settings"  # the ConfigMap of the cluster's settings (its DNS domain)


def overlays() -> list[str]:
    """Names of the overlays under reference/overlays, sorted."""
    root = REFERENCE_DIR / "overlays"
    return sorted(p.name for p in root.iterdir() if (p / "kustomization.yaml").is_file())


def overlay_path(name: str) -> Path:
    known = overlays()
    if name not in known:
        raise HarnessError(f"unknown overlay '{name}': choose one of {', '.join(known)}")
    return REFERENCE_DIR / "overlays" / name


def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        raise HarnessError("kubectl is not installed: install kubectl (it carries kustomize) to render the reference")
    return path


@functools.lru_cache(maxsize=32)
def _render_dir(directory: str) -> tuple[dict[str, Any], ...]:
    proc = subprocess.run([kubectl(), "kustomize", directory], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise HarnessError(f"kubectl kustomize {directory} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return tuple(doc for doc in yaml.safe_load_all(proc.stdout) if doc)


def load_manifests(directory: Path) -> Manifests:
    """A kustomization is rendered; a plain directory of YAML files is read as is."""
    if (directory / "kustomization.yaml").is_file():
        return Manifests(list(_render_dir(str(directory))))
    docs: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.yaml")):
        docs.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return Manifests(docs)


def render(overlay: str) -> Manifests:
    return load_manifests(overlay_path(overlay))


@dataclass(frozen=True)
class Manifests:
    objects: list[dict[str, Any]]

    def of_kind(self, kind: str) -> Iterator[dict[str, Any]]:
        return (o for o in self.objects if o.get("kind") == kind)

    def find(self, kind: str, name: str) -> dict[str, Any] | None:
        return next((o for o in self.of_kind(kind) if o["metadata"]["name"] == name), None)

    def find_prefixed(self, kind: str, prefix: str) -> dict[str, Any] | None:
        """configMapGenerator appends a content hash to the name."""
        return next((o for o in self.of_kind(kind) if o["metadata"]["name"].startswith(prefix)), None)

    def redis_statefulset(self) -> dict[str, Any]:
        for sts in self.of_kind("StatefulSet"):
            labels = sts["spec"]["template"]["metadata"].get("labels", {})
            if labels.get("app.kubernetes.io/component") == SERVER_COMPONENT:
                return sts
        raise HarnessError("the reference has no Redis StatefulSet (component=server)")

    def redis_container(self) -> dict[str, Any]:
        containers = self.redis_statefulset()["spec"]["template"]["spec"]["containers"]
        return next(c for c in containers if c["name"] == "redis")

    def redis_files(self) -> dict[str, str]:
        """The files of the redis-config ConfigMap: redis.conf, scripts, ACL template."""
        cm = self.find_prefixed("ConfigMap", "redis-config")
        if cm is None:
            raise HarnessError("the reference has no redis-config ConfigMap")
        return dict(cm["data"])

    def namespace(self) -> str:
        return self.redis_statefulset()["metadata"].get("namespace", "default")

    def cluster_domain(self) -> str:
        """The cluster's DNS domain the overlay declares (ConfigMap redis-cluster-settings, clusterDomain)."""
        settings = self.find("ConfigMap", SETTINGS)
        domain = ((settings or {}).get("data") or {}).get("clusterDomain")
        if not domain:
            raise HarnessError(f"the reference has no ConfigMap {SETTINGS} with a clusterDomain: the cluster's DNS domain is unknown")
        return str(domain)

    def config_value(self, name: str, key: str, namespace: str) -> str | None:
        """A ConfigMap's value as a configMapKeyRef reads it: the ConfigMap in the pod's namespace."""
        found = self.find("ConfigMap", name)
        if found is None or found["metadata"].get("namespace", "default") != namespace:
            return None
        value = (found.get("data") or {}).get(key)
        return None if value is None else str(value)

    def certificate_for_secret(self, secret_name: str) -> dict[str, Any] | None:
        return next((c for c in self.of_kind("Certificate") if c["spec"].get("secretName") == secret_name), None)

    def cluster_layout(self) -> tuple[int, int]:
        """(masters, replicas per master) the bootstrap Job forms."""
        job = next((j for j in self.of_kind("Job") if j["metadata"]["name"].endswith("bootstrap")), None)
        env = {
            e["name"]: e.get("value")
            for e in (job or {}).get("spec", {}).get("template", {}).get("spec", {}).get("containers", [{}])[0].get("env", [])
            if "value" in e
        }
        pods = int(env.get("REDIS_POD_COUNT") or self.redis_statefulset()["spec"]["replicas"])
        replicas = int(env.get("REDIS_REPLICAS_PER_MASTER") or 1)
        return pods // (replicas + 1), replicas

    def network_policies(self) -> list[dict[str, Any]]:
        return list(self.of_kind("NetworkPolicy"))
