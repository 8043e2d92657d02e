"""A container's memory limit, enforced as the kubelet has its runtime enforce it: a cgroup of the
memory controller per container with `memory.limit_in_bytes` set to `resources.limits.memory`; a
container that goes over is killed by the kernel's OOM killer, which the kubelet reports as the
container's last termination reason `OOMKilled` (https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/#requests-and-limits;
the kernel's Documentation/admin-guide/cgroup-v1/memory.rst for the files).

cgroup v1's memory controller only (this platform's machines mount it, writable as root); where it
is not there the limit is not enforced, and `enforced()` says why. Each cluster's cgroups live
under one parent, removed with the cluster (and swept when a crashed run left them).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

MEMORY = Path("/sys/fs/cgroup/memory")
PARENT = "redis-harness"


def enforced() -> str | None:
    """None when limits can be enforced here; else why not."""
    if not (MEMORY / "memory.limit_in_bytes").is_file():
        return "this machine has no cgroup v1 memory controller at /sys/fs/cgroup/memory"
    if not os.access(MEMORY, os.W_OK):
        return "the cgroup v1 memory controller is not writable (not root)"
    return None


def cluster_dir(cluster: str) -> Path:
    return MEMORY / PARENT / cluster


def container_dir(cluster: str, pod: str, container: str) -> Path:
    return cluster_dir(cluster) / f"{pod}.{container}"


def limit(directory: Path, limit_bytes: int) -> Path:
    """The container's cgroup, made if need be, with this limit (its OOM count starts where it is)."""
    for attempt in range(3):  # another cluster's down may remove the common parent between two mkdirs
        try:
            directory.mkdir(parents=True, exist_ok=True)
            break
        except FileNotFoundError:
            if attempt == 2:
                raise
    (directory / "memory.limit_in_bytes").write_text(str(limit_bytes))
    return directory


def run_inside(directory: Path, argv: list[str]) -> list[str]:
    """argv started inside the cgroup: the shell joins it, then execs argv, so every process the
    container starts (and forks later) is counted from its first instruction."""
    return ["/bin/sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', str(directory), *argv]


def oom_kills(directory: Path) -> int:
    """How many processes the OOM killer has killed in this cgroup (memory.oom_control's oom_kill)."""
    try:
        text = (directory / "memory.oom_control").read_text()
    except OSError:
        return 0
    match = re.search(r"^oom_kill (\d+)$", text, re.MULTILINE)
    return int(match.group(1)) if match else 0


def remove(directory: Path, timeout: float = 5.0) -> None:
    """rmdir, once the kernel has let go of its processes (a cgroup with tasks cannot be removed)."""
    for child in sorted((p for p in directory.glob("*") if p.is_dir()), reverse=True):
        remove(child, timeout)
    deadline = time.monotonic() + timeout
    while directory.exists():
        try:
            directory.rmdir()
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def remove_cluster(cluster: str) -> bool:
    """Remove the cluster's cgroups, and their common parent when no other cluster uses it; whether
    there was anything to remove."""
    directory = cluster_dir(cluster)
    if not directory.exists():
        return False
    remove(directory)
    try:
        directory.parent.rmdir()
    except OSError:  # another cluster's cgroups are in it
        pass
    return True
