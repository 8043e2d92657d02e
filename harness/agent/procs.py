"""Which process is a pod's Redis, seen from the node (the host PID namespace).

A redis-server process cannot say whose it is: Redis rewrites its process title over the
memory that held its environment, so /proc/<pid>/environ of a running redis-server is all
zeroes (POD_NAME and HOSTNAME included). The pod a process belongs to therefore comes from
whoever started it, as Chaos Mesh's chaos-daemon asks the container runtime:

- on a Kubernetes node, the container id at the end of /proc/<pid>/cgroup names the OCI
  bundle the runtime wrote for it, whose annotations carry the pod's name and namespace
  (containerd: io.kubernetes.cri.sandbox-name/-namespace; CRI-O: io.kubernetes.pod.name/
  .namespace), read through the node's root (/proc/1/root);
- on the local platform, its ledger records each pod's process id and start time.

The pod's address (the API's status.podIP), when the caller gives it, must be an address
of the process's network namespace: a guard against acting on a process the caller did not
mean, and what tells apart same-named pods of two local clusters on one machine.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError

REDIS_COMM = "redis-server"
# Where container runtimes keep each container's OCI bundle (config.json), under the node's root.
OCI_BUNDLES = (
    "run/containerd/io.containerd.runtime.v2.task/k8s.io/{id}/config.json",  # containerd (kind)
    "run/k3s/containerd/io.containerd.runtime.v2.task/k8s.io/{id}/config.json",  # k3s's containerd
    "run/containers/storage/overlay-containers/{id}/userdata/config.json",  # CRI-O
)
NAME_KEYS = ("io.kubernetes.cri.sandbox-name", "io.kubernetes.pod.name")
NAMESPACE_KEYS = ("io.kubernetes.cri.sandbox-namespace", "io.kubernetes.pod.namespace")
CONTAINER_ID = re.compile(r"([0-9a-f]{64})(?:\.scope)?$")


class BadInput(HarnessError):
    """The caller asked for something that cannot be meant (exit 2)."""


class UnknownPod(BadInput):
    """No process, or more than one, answers to the pod named."""


@dataclass(frozen=True)
class Proc:
    pid: int
    comm: str
    state: str
    ppid: int
    start_time: str  # /proc/<pid>/stat field 22: with the pid, names one process for good


@dataclass(frozen=True)
class Target:
    """A pod's Redis process, as found: who says it is that pod (`source`), and its addresses."""

    pod: str
    namespace: str
    pid: int
    start_time: str
    source: str
    addresses: tuple[str, ...]


def read_stat(proc_root: Path, pid: int) -> Proc | None:
    try:
        stat = (proc_root / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name may contain spaces and parentheses; the fields after its last ")" are plain.
    head, _, tail = stat.rpartition(")")
    fields = tail.split()
    if len(fields) < 20:
        return None
    return Proc(pid, head.partition("(")[2], fields[0], int(fields[1]), fields[19])


def _is_redis_server(proc_root: Path, proc: Proc) -> bool:
    if proc.comm == REDIS_COMM:
        return True
    try:
        argv0 = (proc_root / str(proc.pid) / "cmdline").read_bytes().split(b"\0")[0].split()
    except OSError:
        return False
    return bool(argv0) and os.path.basename(argv0[0].decode(errors="replace")) == REDIS_COMM


def redis_processes(proc_root: Path = Path("/proc")) -> list[Proc]:
    """Every running redis-server that is not a child of another (a save or AOF rewrite is)."""
    procs = []
    for entry in proc_root.iterdir():
        if not entry.name.isdigit():
            continue
        proc = read_stat(proc_root, int(entry.name))
        if proc is not None and proc.state != "Z" and _is_redis_server(proc_root, proc):
            procs.append(proc)
    pids = {p.pid for p in procs}
    return sorted((p for p in procs if p.ppid not in pids), key=lambda p: p.pid)


# --- who started it --------------------------------------------------------------------------
def container_id(proc_root: Path, pid: int) -> str | None:
    """The container id a Kubernetes node's runtime gave the process, from its cgroup path."""
    try:
        lines = (proc_root / str(pid) / "cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        match = CONTAINER_ID.search(line.rsplit(":", 1)[-1].strip())
        if match:
            return match.group(1)
    return None


def oci_identity(host_root: Path, cid: str) -> tuple[str, str, str] | None:
    """(pod, namespace, source) from the runtime's OCI bundle of container `cid`."""
    for pattern in OCI_BUNDLES:
        path = host_root / pattern.format(id=cid)
        try:
            spec = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        notes = spec.get("annotations") or {}
        name = next((notes[k] for k in NAME_KEYS if notes.get(k)), None)
        namespace = next((notes[k] for k in NAMESPACE_KEYS if notes.get(k)), None)
        if name and namespace:
            return name, namespace, f"container {cid[:12]} ({pattern.split('/')[1]})"
    return None


def local_records(state_dirs: list[Path]) -> dict[tuple[int, str], tuple[str, str, str]]:
    """(pid, start time) → (pod, namespace, source) for every Redis pod the local platform's
    ledgers under `state_dirs` record."""
    from harness.platforms.local.ledger import Ledger

    records = {}
    for state_dir in state_dirs:
        for path in sorted(state_dir.glob("*/ledger.json")) if state_dir.is_dir() else []:
            try:
                ledger = Ledger.load(path)
            except (OSError, ValueError, TypeError):
                continue
            for rec in ledger.pods.values() if ledger else []:
                if rec.kind == "redis" and rec.pid and rec.start_time:
                    records[(int(rec.pid), str(rec.start_time))] = (rec.name, rec.namespace, f"local cluster {ledger.cluster}")
    return records


def addresses(proc_root: Path, pid: int) -> tuple[str, ...]:
    """The addresses of the process's network namespace other than loopback (its pod's IPs)."""
    found: list[str] = []
    net = proc_root / str(pid) / "net"
    try:
        last = None
        for line in (net / "fib_trie").read_text().splitlines():
            text = line.strip()
            if text.startswith("|--"):
                last = text[3:].strip()
            elif text.startswith("/32 host LOCAL") and last and last not in found:
                found.append(last)
    except OSError:
        pass
    try:
        for line in (net / "if_inet6").read_text().splitlines():
            fields = line.split()
            if len(fields) >= 6:
                found.append(str(ipaddress.IPv6Address(int(fields[0], 16))))
    except (OSError, ValueError):
        pass
    return tuple(a for a in found if not ipaddress.ip_address(a).is_loopback and not ipaddress.ip_address(a).is_link_local)


def find_pod(
    pod: str,
    namespace: str,
    pod_ip: str | None = None,
    proc_root: Path = Path("/proc"),
    host_root: Path | None = None,
    state_dirs: list[Path] | None = None,
) -> Target:
    """The one Redis process of pod `namespace/pod` on this node; UnknownPod when none or several."""
    host_root = proc_root / "1" / "root" if host_root is None else host_root
    if state_dirs is None:
        from harness.platforms.local.state import DEFAULT_STATE_DIR

        state_dirs = [DEFAULT_STATE_DIR]
    local = local_records(state_dirs)
    matches = []
    for proc in redis_processes(proc_root):
        cid = container_id(proc_root, proc.pid)
        who = (oci_identity(host_root, cid) if cid else None) or local.get((proc.pid, proc.start_time))
        if who is None or who[:2] != (pod, namespace):
            continue
        addrs = addresses(proc_root, proc.pid)
        if pod_ip is not None and pod_ip not in addrs:
            continue
        matches.append(Target(pod, namespace, proc.pid, proc.start_time, who[2], addrs))
    where = f" at {pod_ip}" if pod_ip else ""
    if not matches:
        raise UnknownPod(f"no redis-server of pod {namespace}/{pod}{where} runs on this node")
    if len(matches) > 1:
        which = ", ".join(f"pid {m.pid} ({m.source}, {'/'.join(m.addresses) or 'no address'})" for m in matches)
        raise UnknownPod(
            f"{len(matches)} redis-server processes are pod {namespace}/{pod} here ({which}): name one with --pod-ip"
        )
    return matches[0]
