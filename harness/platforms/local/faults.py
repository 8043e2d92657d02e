"""Fault primitives of the local platform, inside a pod's network namespace or on its volume:
a partition (nftables drops between pod addresses), a degraded link (tc netem or tbf
for delay and bandwidth, nftables for random loss), and size-limited volumes (a
loop-mounted ext4 image per claim) that can be filled to the last block; a data volume is
mounted through powerfs.py, which can lose what was not fsynced (a power loss).

Each primitive lives in a table or file of its own, so NetworkPolicy enforcement
(table k8s_network_policy) and faults never overwrite each other."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from harness.errors import HarnessError
from harness.platforms.local import powerfs

PARTITION_TABLE = "rh_partition"
DEGRADE_TABLE = "rh_degrade"
BALLAST = ".rh-ballast"
MAX_VOLUME_BYTES = 512 * 1024**2  # claims are sized as requested, up to this, on local disk
_UNITS = {"": 1, "k": 1000, "M": 1000**2, "G": 1000**3, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4}


def partition_ruleset(cut: list[str]) -> str | None:
    """Drop every packet to or from the addresses on the other side; None when nothing is cut."""
    if not cut:
        return None
    peers = ", ".join(sorted(cut))
    return (
        f"table inet {PARTITION_TABLE} {{\n"
        f"  chain input {{ type filter hook input priority -10; policy accept; ip saddr {{ {peers} }} drop; }}\n"
        f"  chain output {{ type filter hook output priority -10; policy accept; ip daddr {{ {peers} }} drop; }}\n"
        "}\n"
    )


def partition_cuts(groups: list[list[str]], pods: list[str]) -> dict[str, list[str]]:
    """Pod → pods it must not reach. Pods named in no group form one more group together."""
    named = [p for group in groups for p in group]
    unknown = sorted(set(named) - set(pods))
    if unknown:
        raise HarnessError(f"cannot partition: no pod named {', '.join(unknown)}")
    if len(named) != len(set(named)):
        raise HarnessError("cannot partition: a pod is named in more than one group")
    rest = [p for p in pods if p not in named]
    sides = [list(g) for g in groups if g] + ([rest] if rest else [])
    if len(sides) < 2:
        raise HarnessError("a partition needs at least two sides")
    side_of = {p: i for i, side in enumerate(sides) for p in side}
    return {p: [q for q in pods if side_of[q] != side_of[p]] for p in pods}


def loss_ruleset(loss_percent: float) -> str | None:
    """Random loss in both directions, in tenths of a percent; None for no loss."""
    if loss_percent <= 0:
        return None
    if loss_percent >= 100:
        raise HarnessError(f"packet loss must be below 100%, not {loss_percent}")
    permille = round(loss_percent * 10)
    rule = f"numgen random mod 1000 < {permille} drop"
    return (
        f"table inet {DEGRADE_TABLE} {{\n"
        f"  chain input {{ type filter hook input priority -20; policy accept; {rule}; }}\n"
        f"  chain output {{ type filter hook output priority -20; policy accept; {rule}; }}\n"
        "}\n"
    )


def qdisc_argv(delay_ms: float, jitter_ms: float, rate_kbit: int | None) -> list[str] | None:
    """The egress qdisc for eth0: netem for delay (with an optional rate), tbf for a rate alone."""
    if delay_ms > 0:
        argv = ["netem", "delay", f"{delay_ms}ms"]
        if jitter_ms > 0:
            argv += [f"{jitter_ms}ms", "distribution", "normal"]
        if rate_kbit:
            argv += ["rate", f"{rate_kbit}kbit"]
        return argv
    if rate_kbit:
        burst = max(rate_kbit * 1000 // 8 // 100, 1600)  # 10 ms worth of bytes, at least a packet
        return ["tbf", "rate", f"{rate_kbit}kbit", "burst", str(burst), "latency", "500ms"]
    return None


# --- volumes ------------------------------------------------------------------------------
def quantity_bytes(quantity: str) -> int:
    match = re.fullmatch(r"(\d+)([kMGT]i?|)", str(quantity).strip())
    if not match or match.group(2) not in _UNITS:
        raise HarnessError(f"unreadable storage request '{quantity}'")
    return int(match.group(1)) * _UNITS[match.group(2)]


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def mount_volume(image: Path, directory: Path, size: int) -> bool:
    """Mount `image` (made on first use, sparse) at `directory`; False when this machine cannot."""
    if os.path.ismount(directory):
        return True
    if not image.exists():
        with open(image, "wb") as f:
            f.truncate(min(size, MAX_VOLUME_BYTES))
        # -m 0: Redis runs as root here and would otherwise write into the reserved blocks.
        if _run(["mkfs.ext4", "-q", "-F", "-m", "0", str(image)]).returncode != 0:
            image.unlink(missing_ok=True)
            return False
    directory.mkdir(parents=True, exist_ok=True)
    return _run(["mount", "-o", "loop", str(image), str(directory)]).returncode == 0


def unmount_path(path: Path) -> None:
    if os.path.ismount(path) and _run(["umount", str(path)]).returncode != 0:
        _run(["umount", "-l", str(path)])


def unmount_volumes(root: Path) -> list[str]:
    """Unmount every volume mounted under `root`, newest first (a powerfs before the disk it
    passes through to; lazily when still busy), and end the powerfs processes that served any
    of them; returns their paths."""
    prefix = str(root.resolve()) + "/"
    unmounted: list[str] = []
    # Twice: a powerfs still starting when the first pass listed the mounts (a Ctrl-C during `up`)
    # may mount after it; end_servers kills every server at once (nothing here is used any more),
    # and the second pass takes the mount such a server left.
    for _ in range(2):
        mounted = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines() if line.split()[1].startswith(prefix)]
        for path in reversed(mounted):
            if _run(["umount", path]).returncode != 0:
                _run(["umount", "-l", path])
        unmounted += [m for m in mounted if m not in unmounted]
        powerfs.end_servers(root, grace=0)
    return unmounted


def fill(directory: Path) -> int:
    """Take every free block of the volume at `directory`; returns the bytes taken."""
    if not os.path.ismount(directory):
        raise HarnessError(f"{directory} is not a size-limited volume")
    stat = os.statvfs(directory)
    free = stat.f_bavail * stat.f_frsize
    with open(directory / BALLAST, "ab") as f:
        # The blocks' own metadata needs room too: ask for a little less, then less again.
        for margin in (1 << 20, 4 << 20, 16 << 20):
            try:
                if free > margin:
                    os.posix_fallocate(f.fileno(), os.fstat(f.fileno()).st_size, free - margin)
                break
            except OSError:
                continue
    # Whatever fallocate could not place (metadata), fill by writing until the disk refuses.
    try:
        with open(directory / f"{BALLAST}-tail", "ab") as f:
            for _ in range(MAX_VOLUME_BYTES // 4096):
                f.write(b"\0" * 4096)
                f.flush()
                os.fsync(f.fileno())
    except OSError:
        pass
    return free


def free(directory: Path) -> None:
    for name in (BALLAST, f"{BALLAST}-tail"):
        (directory / name).unlink(missing_ok=True)
