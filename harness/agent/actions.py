"""What the node agent does to a pod's Redis once it has found it: the local platform's own
fault code, entered through the process instead of through a named network namespace.

- signals: SIGKILL as the local platform kills (ledger.sigkill: nothing before it, wait until
  gone), SIGSTOP / SIGCONT as it pauses and resumes, each checked in the process's state;
- partition / heal: faults.partition_ruleset in table rh_partition, replaced by
  network.apply_table_in inside `nsenter -t PID -n`;
- shape / unshape: faults.qdisc_argv by network.set_qdisc_in and faults.loss_ruleset in table
  rh_degrade; a qdisc the kernel lacks (sch_netem) fails the verb, nothing applied;
- handshake: harness.tlsprobe run inside the pod's network namespace, presenting the pod's own
  certificate (read through /proc/PID/root), none, or one from a foreign CA: how a peer's
  connection to another pod's cluster-bus port is received, where the NetworkPolicy admits peers only;
- fill / free: faults.fill and faults.free on the volume Redis works in (its `dir`, /data in the
  reference), reached through /proc/PID/root; only a filesystem of its own is filled, never a
  directory of the node's disk (a hostPath or local-path volume).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.agent.procs import BadInput, Target
from harness.errors import HarnessError, NotSupported
from harness.platforms.local import faults
from harness.platforms.local.ledger import is_alive, sigkill
from harness.platforms.local.network import apply_table_in, set_qdisc_in

PLATFORM = "kubernetes"  # whose node agent this is, in NotSupported sentences
TOOLS = {"nsenter": "util-linux", "nft": "nftables", "tc": "iproute2"}


class NotApplied(HarnessError):
    """The fault could not be applied (exit 1)."""


def _alive(target: Target) -> None:
    if not is_alive(target.pid, target.start_time):
        raise NotApplied(f"the redis-server of pod {target.namespace}/{target.pod} (pid {target.pid}) is no longer running")


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return "gone"


def _wait_state(pid: int, done, seconds: float = 2.0) -> str:
    deadline = time.monotonic() + seconds
    state = _state(pid)
    while not done(state) and time.monotonic() < deadline:
        time.sleep(0.01)
        state = _state(pid)
    return state


# --- signals -----------------------------------------------------------------------------
def kill(target: Target) -> dict[str, Any]:
    _alive(target)
    sigkill(target.pid, target.start_time)
    if is_alive(target.pid, target.start_time):
        raise NotApplied(f"pid {target.pid} still runs 5 s after SIGKILL")
    return {"signal": "SIGKILL"}


def stop(target: Target) -> dict[str, Any]:
    _alive(target)
    os.kill(target.pid, signal.SIGSTOP)
    state = _wait_state(target.pid, lambda s: s in ("T", "t"))
    if state not in ("T", "t"):
        raise NotApplied(f"pid {target.pid} is in state {state}, not stopped, after SIGSTOP")
    return {"signal": "SIGSTOP", "state": state}


def cont(target: Target) -> dict[str, Any]:
    _alive(target)
    os.kill(target.pid, signal.SIGCONT)
    state = _wait_state(target.pid, lambda s: s not in ("T", "t"))
    if state in ("T", "t"):
        raise NotApplied(f"pid {target.pid} is still stopped after SIGCONT")
    return {"signal": "SIGCONT", "state": state}


# --- network ---------------------------------------------------------------------------------
def _enter(target: Target, *tools: str) -> list[str]:
    for tool in ("nsenter", *tools):
        if shutil.which(tool) is None:
            raise NotApplied(f"'{tool}' is not installed where the agent runs: install {TOOLS[tool]}")
    _alive(target)
    return ["nsenter", "-t", str(target.pid), "-n"]


def partition(target: Target, peers: list[str]) -> dict[str, Any]:
    own = sorted(set(peers) & set(target.addresses))
    if own:
        raise BadInput(f"--peers names the pod's own address {own[0]}: a pod is never cut from itself")
    apply_table_in(_enter(target, "nft"), faults.PARTITION_TABLE, faults.partition_ruleset(peers))
    return {"table": faults.PARTITION_TABLE, "peers": sorted(peers)}


def heal(target: Target) -> dict[str, Any]:
    apply_table_in(_enter(target, "nft"), faults.PARTITION_TABLE, None)
    return {"table": faults.PARTITION_TABLE, "peers": []}


def shape(target: Target, loss: float, delay_ms: float, jitter_ms: float, rate_kbit: int | None) -> dict[str, Any]:
    qdisc = faults.qdisc_argv(delay_ms, jitter_ms, rate_kbit)
    ruleset = faults.loss_ruleset(loss)
    enter = _enter(target, "nft", "tc")
    # As the local platform degrades a link: the qdisc first (none: back to the default), so a
    # kernel without sch_netem fails the verb with NotSupported before any loss is in place.
    set_qdisc_in(enter, qdisc, PLATFORM)
    apply_table_in(enter, faults.DEGRADE_TABLE, ruleset)
    return {"qdisc": qdisc, "loss_percent": loss, "table": faults.DEGRADE_TABLE if ruleset else None}


def unshape(target: Target) -> dict[str, Any]:
    enter = _enter(target, "nft", "tc")
    set_qdisc_in(enter, None, PLATFORM)
    apply_table_in(enter, faults.DEGRADE_TABLE, None)
    return {"qdisc": None, "loss_percent": 0}


# --- the data volume ---------------------------------------------------------------------------
def _unescape(field: str) -> str:
    """A mountinfo path: space, tab, newline and backslash come as octal escapes (\\040 …)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def data_volume(target: Target, proc_root: Path = Path("/proc")) -> tuple[str, Path, dict[str, str] | None]:
    """(the directory Redis works in as the pod sees it, that directory from here, its mount:
    {"root", "fstype", "source"} or None when it is no mount point of its own)."""
    base = proc_root / str(target.pid)
    try:
        inside = os.readlink(base / "cwd")
        lines = (base / "mountinfo").read_text().splitlines()
    except OSError as exc:
        raise NotApplied(f"cannot read the working directory of pid {target.pid}: {exc.strerror}") from None
    mount = None
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) >= 5 and _unescape(fields[4]) == inside:
            mount = {"root": _unescape(fields[3]), "fstype": tail[0] if tail else "", "source": tail[1] if len(tail) > 1 else ""}
    return inside, base / "root" / inside.lstrip("/"), mount


def fill(target: Target, proc_root: Path = Path("/proc")) -> dict[str, Any]:
    _alive(target)
    inside, directory, mount = data_volume(target, proc_root)
    if mount is None:
        raise NotSupported(f"filling the data volume ({inside} is a directory, not a volume of its own)", PLATFORM)
    if mount["root"] != "/":
        raise NotSupported(
            f"filling the data volume ({inside} is {mount['root']} of {mount['source'] or mount['fstype']}, a directory of a "
            "larger filesystem such as the node's disk, which filling would fill)",
            PLATFORM,
        )
    taken = faults.fill(directory)
    return {"path": inside, "fstype": mount["fstype"], "bytes": taken}


def free(target: Target, proc_root: Path = Path("/proc")) -> dict[str, Any]:
    _alive(target)
    inside, directory, _ = data_volume(target, proc_root)
    faults.free(directory)
    return {"path": inside}


# --- TLS, from a peer's position ----------------------------------------------------------------
PRESENTED = ("own", "none", "foreign")


def handshake(
    target: Target, to: str, port: int, present: str, trust: str, tls_dir: str, ping: bool, proc_root: Path = Path("/proc")
) -> dict[str, Any]:
    """A TLS handshake from the pod's network namespace to `to`:`port`, trusting the pod's CA (or a
    foreign one) and presenting the pod's own certificate, none, or a foreign CA's."""
    own = proc_root / str(target.pid) / "root" / tls_dir.lstrip("/")
    if not (own / "ca.crt").exists():
        raise NotApplied(f"pod {target.namespace}/{target.pod} has no TLS files at {tls_dir}")
    with tempfile.TemporaryDirectory(prefix="rh-foreign-") as scratch:
        from harness.tlsprobe import foreign_credentials

        foreign = foreign_credentials(Path(scratch)) if "foreign" in (present, trust) else None
        ca = (foreign if trust == "foreign" else own) / "ca.crt"  # type: ignore[operator]
        shown = {"own": own, "foreign": foreign, "none": None}[present]
        files = ["--cert", str(shown / "tls.crt"), "--key", str(shown / "tls.key")] if shown else []
        argv = [*_enter(target), sys.executable, "-m", "harness.tlsprobe", to, str(port), "--ca", str(ca), *files]
        proc = subprocess.run([*argv, *(["--ping"] if ping else [])], capture_output=True, text=True, timeout=30, check=False)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise NotApplied(f"the handshake probe failed: {(proc.stderr.strip().splitlines() or ['no output'])[-1]}")
    return {"handshake": json.loads(lines[-1])}
