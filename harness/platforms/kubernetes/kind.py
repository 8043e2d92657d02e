"""A kind cluster from reference/kind/cluster.yaml, made with pytest-kubernetes' kind provider.

The kind release is pinned here and nowhere else. Before anything is created the machine is
checked: a kind binary of at least v0.24 (its kindnet enforces NetworkPolicy) and a container
engine that answers; what is missing is said in one sentence, and nothing is made.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from harness import reference
from harness.errors import HarnessError

KIND_VERSION = "v0.27.0"  # the one pin; reference/kind/cluster.yaml's node image is this release's
MIN_KIND = (0, 24)
INSTALL_KIND = f"`go install sigs.k8s.io/kind@{KIND_VERSION}` or its release binary, or pass --kind-bin"
STATE_DIR = Path(os.environ.get("REDIS_HARNESS_STATE_DIR") or Path.home() / ".local" / "state" / "redis-harness")


def cluster_config() -> Path:
    return reference.REFERENCE_DIR / "kind" / "cluster.yaml"


def cluster_name() -> str:
    import yaml

    return str(yaml.safe_load(cluster_config().read_text()).get("name") or "kind")


def find_kind(kind_bin: str | None) -> str | None:
    if kind_bin:
        path = Path(kind_bin).expanduser()
        return str(path) if path.is_file() and os.access(path, os.X_OK) else None
    return shutil.which("kind")


def kind_version(binary: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run([binary, "version"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"v(\d+)\.(\d+)", out)
    return (int(match.group(1)), int(match.group(2))) if match else None


def engine_problem() -> str | None:
    """Why kind cannot make node containers here, or None. kind uses Docker unless
    KIND_EXPERIMENTAL_PROVIDER names podman or nerdctl."""
    engine = os.environ.get("KIND_EXPERIMENTAL_PROVIDER") or "docker"
    binary = shutil.which(engine)
    if binary is None:
        return f"no {engine} is installed (kind runs its nodes as {engine} containers: install Docker Engine and start it)"
    try:
        proc = subprocess.run([binary, "info"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"`{engine} info` failed ({exc}): start the {engine} engine"
    if proc.returncode != 0:
        return f"the {engine} engine does not answer (`{engine} info` failed): start it, or run as a user allowed to use it"
    return None


def preflight(kind_bin: str | None) -> str:
    """The kind binary to use; HarnessError in one sentence naming everything that is missing."""
    binary = find_kind(kind_bin)
    missing = []
    if binary is None:
        where = f"--kind-bin {kind_bin} is not an executable file" if kind_bin else "kind is not installed"
        missing.append(f"{where} (install kind {KIND_VERSION}: {INSTALL_KIND})")
    else:
        version = kind_version(binary)
        if version is None or version < MIN_KIND:
            shown = "an unknown version" if version is None else f"v{version[0]}.{version[1]}"
            missing.append(
                f"{binary} is {shown}, older than v0.24 whose kindnet enforces NetworkPolicy (install kind {KIND_VERSION}: {INSTALL_KIND})"
            )
    problem = engine_problem()
    if problem:
        missing.append(problem)
    if missing:
        raise HarnessError("the kind platform cannot make a cluster here: " + " and ".join(missing))
    return binary  # type: ignore[return-value]


class KindCluster:
    """The kind cluster reference/kind/cluster.yaml describes: its kubeconfig lives in the harness's
    state directory; a marker there records that the harness made it (so `down` may delete it)."""

    def __init__(self, kind_bin: str | None = None, state_dir: Path | None = None):
        self.kind_bin = kind_bin
        self.name = cluster_name()
        self.dir = Path(state_dir or STATE_DIR) / "kind"
        self.kubeconfig = self.dir / f"{self.name}.kubeconfig"
        self.marker = self.dir / f"{self.name}.created-by-harness"
        self.context = f"kind-{self.name}"

    def _manager(self, binary: str):
        from pytest_kubernetes.providers.kind import KindManagerBase

        class KindManager(KindManagerBase):
            @property
            def _exec_path(self) -> Path:  # --kind-bin, or the one on PATH
                return Path(binary)

        return KindManager(provider_config=str(cluster_config()), kubeconfig=self.kubeconfig)

    def exists(self, binary: str) -> bool:
        proc = subprocess.run([binary, "get", "clusters"], capture_output=True, text=True, timeout=30)
        return self.name in proc.stdout.split()

    def ensure(self) -> bool:
        """Create the cluster unless it is there (then its kubeconfig is exported again). Returns
        whether this call created it."""
        binary = preflight(self.kind_bin)
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.exists(binary):
            proc = subprocess.run(
                [binary, "export", "kubeconfig", "--name", self.name, "--kubeconfig", str(self.kubeconfig)],
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            if proc.returncode != 0:
                raise HarnessError(
                    f"kind cluster '{self.name}' exists but its kubeconfig cannot be read: {proc.stderr.strip()[-200:]}"
                )
            return False
        manager = self._manager(binary)
        try:
            manager.create(timeout=240)
        except (subprocess.SubprocessError, RuntimeError) as exc:
            detail = getattr(exc, "stderr", b"") or str(exc).encode()
            text = detail.decode(errors="replace") if isinstance(detail, bytes) else str(detail)
            raise HarnessError(f"kind could not create cluster '{self.name}': {text.strip()[-300:]}") from None
        self.marker.write_text(json.dumps({"name": self.name, "kind": KIND_VERSION}))
        return True

    def ours(self) -> bool:
        return self.marker.exists()

    def delete(self) -> None:
        binary = preflight(self.kind_bin)
        subprocess.run([binary, "delete", "cluster", "--name", self.name], capture_output=True, text=True, timeout=300)
        self.marker.unlink(missing_ok=True)
        self.kubeconfig.unlink(missing_ok=True)
