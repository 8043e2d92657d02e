"""What a local cluster created, on disk, so that another process (the CLI's
`status`/`down`, or the next `up` after a crash) can find and remove it."""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class PodRecord:
    name: str
    address: str
    labels: dict[str, str]
    namespace: str
    netns: str | None = None
    host_link: str | None = None
    pid: int | None = None
    start_time: str | None = None  # /proc/<pid>/stat field 22, guards against pid reuse
    paused: bool = False
    generation: int = 0  # how many times this pod was (re)created
    kind: str = "redis"  # "redis" for StatefulSet pods; "job" or "probe" for helpers
    node: str = ""  # the node it is bound to ("" while Pending)
    held: bool = False  # held down: not restarted until released (pod-failure, a failed node)
    pending: str = ""  # why the scheduler could not place it
    oom_base: int = 0  # its memory cgroup's OOM kills when its Redis last started (cgroups.py)
    backoff_s: float = 0.0  # the kubelet's crash back-off for its container now (0: none yet)
    backoff_at: float = 0.0  # when that back-off was last set (time.time())


@dataclass
class Ledger:
    cluster: str
    overlay: str
    network: str  # "netns" or "loopback"
    owner_pid: int
    detached: bool = False
    bridge: str | None = None
    gateway: str | None = None
    subnet: str | None = None
    next_host: int = 2
    pods: dict[str, PodRecord] = field(default_factory=dict)
    netns: list[str] = field(default_factory=list)  # every namespace created, pods' and helpers'
    links: list[str] = field(default_factory=list)
    partition: list[list[str]] = field(default_factory=list)  # pod groups cut off from each other
    nodes: dict[str, dict[str, bool]] = field(default_factory=dict)  # node → {"schedulable", "ready"}

    @classmethod
    def load(cls, path: Path) -> Ledger | None:
        if not path.is_file():
            return None
        raw = json.loads(path.read_text())
        known = set(cls.__dataclass_fields__)
        raw["pods"] = {k: PodRecord(**{f: x for f, x in v.items() if f in PodRecord.__dataclass_fields__}) for k, v in raw.get("pods", {}).items()}
        return cls(**{k: v for k, v in raw.items() if k in known})

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        os.replace(tmp, path)


def process_start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces; fields after it are plain.
    return stat.rsplit(")", 1)[1].split()[19]


def is_alive(pid: int | None, start_time: str | None) -> bool:
    if not pid:
        return False
    current = process_start_time(pid)
    if current is None or (start_time is not None and current != start_time):
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:  # it exited between the two reads
        return False
    return state != "Z"


def owner_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sigkill(pid: int | None, start_time: str | None, group: bool = False) -> None:
    """SIGKILL and nothing before it (kill -9); returns once the process is gone. With group,
    every process of its process group too (what it forked: an AOF rewrite, a save), as when
    a container's cgroup is killed; returns once none of them runs."""
    if not is_alive(pid, start_time):
        return
    assert pid is not None
    try:
        os.killpg(pid, signal.SIGKILL) if group else os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 5
    while (is_alive(pid, start_time) or (group and _group_runs(pid))) and time.monotonic() < deadline:
        time.sleep(0.01)


def _group_runs(pgid: int) -> bool:
    """Whether a process of this process group still runs (zombies do not count)."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False


def terminate(pid: int | None, start_time: str | None, grace: float) -> None:
    """SIGCONT (a paused process cannot exit), SIGTERM, then SIGKILL after `grace` seconds."""
    if not is_alive(pid, start_time):
        return
    assert pid is not None
    for sig in (signal.SIGCONT, signal.SIGTERM):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not is_alive(pid, start_time):
            return
        time.sleep(0.05)
    sigkill(pid, start_time)
