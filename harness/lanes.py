"""Gating suites split into lanes that run side by side, each lane one pytest process against a
cluster of its own (`redis-harness run --jobs N`), and the lanes' JUnit files made one."""

from __future__ import annotations

import ipaddress
import math
import os
import xml.etree.ElementTree as ET
from pathlib import Path

from harness.errors import HarnessError

# Seconds each suite takes in a gate on a 2-core machine (`redis-harness bench-self --gate --jobs 2`):
# weights that balance the lanes, not limits. A suite not listed counts as WEIGHT_UNKNOWN.
WEIGHTS = {
    "static": 15,
    "sharding": 43,
    "failover": 70,
    "nodes": 67,
    "persistence": 22,
    "security": 6,
    "network_policy": 12,
    "observability": 18,
    "negative_controls": 240,
}
WEIGHT_UNKNOWN = 30


def check_jobs(jobs: int, cores: int | None = None) -> None:
    """A lane per core at most: each lane's recovery probe needs one. (Three lanes on two cores: one
    gate in ten found the probe 0.52 s without an operation during a paused master, against its
    0.5 s limit, and the run inconclusive.)"""
    cores = cores or os.cpu_count() or 1
    if jobs < 1:
        raise HarnessError(f"--jobs must be at least 1, not {jobs}")
    if jobs > cores:
        raise HarnessError(f"--jobs {jobs} asks for more lanes than this machine's {cores} cores: each lane's recovery probe needs one")


def plan(suites: list[str], jobs: int) -> list[list[str]]:
    """At most `jobs` lanes: the heaviest suite first onto the lightest lane; within a lane the suites
    keep the order they were given in. No empty lane."""
    if jobs < 1:
        raise HarnessError(f"--jobs must be at least 1, not {jobs}")
    lanes: list[list[str]] = [[] for _ in range(min(jobs, len(suites)) or 1)]
    load = [0.0] * len(lanes)
    for suite in sorted(suites, key=lambda s: -WEIGHTS.get(s, WEIGHT_UNKNOWN)):
        lightest = load.index(min(load))
        lanes[lightest].append(suite)
        load[lightest] += WEIGHTS.get(suite, WEIGHT_UNKNOWN)
    order = {s: n for n, s in enumerate(suites)}
    return [sorted(lane, key=order.__getitem__) for lane in lanes if lane]


def subnets(subnet: str | None, lanes: int) -> list[str | None]:
    """Each lane's address range: none given, each lane's cluster finds a free one; one given, it is
    split evenly (each part needs 16 addresses or more)."""
    if subnet is None or lanes == 1:
        return [subnet] * lanes
    net = ipaddress.ip_network(subnet, strict=False)
    parts = list(net.subnets(prefixlen_diff=math.ceil(math.log2(lanes))))[:lanes]
    if parts[0].num_addresses < 16:
        raise HarnessError(f"the address range {subnet} is too small for {lanes} lanes: give a larger one or leave --subnet out")
    return [str(p) for p in parts]


def cluster_names(cluster: str, lanes: int) -> list[str]:
    """One lane keeps the name; several get `<name>-<lane>` (the name shortened to stay within 40 characters)."""
    if lanes == 1:
        return [cluster]
    return [f"{cluster[:37].rstrip('-')}-{n}" for n in range(1, lanes + 1)]


def exit_code(codes: list[int]) -> int:
    """One pytest exit code for the lanes: a broken lane (not 0, 1 or 5) first, then a failure, then
    "nothing collected" only when no lane collected anything."""
    broken = [c for c in codes if c not in (0, 1, 5)]
    if broken:
        return broken[0]
    if 1 in codes:
        return 1
    return 5 if codes and all(c == 5 for c in codes) else 0


def merge_junit(parts: list[Path], into: Path) -> None:
    """The lanes' <testsuite> elements under one <testsuites>; a lane that wrote none adds nothing."""
    root = ET.Element("testsuites")
    for part in parts:
        if not part.exists():
            continue
        tree = ET.parse(part).getroot()
        root.extend(tree.findall("testsuite") if tree.tag == "testsuites" else [tree])
    ET.ElementTree(root).write(into, encoding="utf-8", xml_declaration=True)
