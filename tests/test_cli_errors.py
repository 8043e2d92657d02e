"""Bad input: one clear sentence on stderr, exit status 2, nothing left running."""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.platforms.local.network import claiming_a_range, free_range
from tests.reference_copy import reference_with_overlay

ROOT = Path(__file__).resolve().parent.parent


def harness(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["up", "--overlay", "no-such-overlay"], "unknown overlay 'no-such-overlay'"),
        (["up", "--platform", "mars"], "unknown platform 'mars'"),
        (["up", "--cluster", "Bad Name!"], "invalid cluster name"),
        (["up", "--network", "carrier-pigeon"], "unknown network"),
        (["status", "--cluster", "never-started"], "cluster 'never-started' is not up"),
        (["up", "--cluster", "rh-badnet", "--subnet", "10.0.0.0/33"], "invalid address range"),
        (["up", "--cluster", "rh-badnet", "--network", "loopback", "--subnet", "10.0.0.0/16"], "inside 127.0.0.0/8"),
        (["up", "--platform", "kubernetes"], "no Kubernetes cluster is reachable"),
        (["up", "--no-such-flag"], "No such option"),
        (["run", "--suite", "nope"], "unknown suite 'nope'"),
        (["run", "--jobs", str((os.cpu_count() or 1) + 1)], "more lanes than this machine's"),
        (["run", "--overlay", "nope"], "unknown overlay 'nope'"),
        (["run", "--cluster", "Bad_Name", "--suite", "sharding"], "invalid cluster name 'Bad_Name'"),
        (["run", "--subnet", "198.18.0.0/99", "--suite", "sharding"], "invalid address range"),
    ],
)
def test_bad_input_exits_2_with_one_sentence(args, says, tmp_path):
    kube = {"KUBECONFIG": str(tmp_path / "none")}
    state = ["--state-dir", str(tmp_path)] if args[0] in ("up", "status") and "--platform" not in args else []
    proc = harness(*args, *state, env=kube)
    assert proc.returncode == 2, proc.stderr
    assert says in " ".join(proc.stderr.split())
    assert "Traceback" not in proc.stderr
    assert not list(tmp_path.glob("*/ledger.json")), "a failed up left state behind"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("version: 1\nrecovery_seconds: [\n", "is not valid YAML"),
        ("version: 1\n", "section 'recovery_seconds' is missing"),
        (
            (ROOT / "reference" / "slo.yaml").read_text().replace("kill_master: ", "kill_master: -", 1),
            "must be a non-negative number",
        ),
    ],
)
def test_a_malformed_slo_file_is_bad_input_before_anything_starts(body, says, tmp_path):
    (tmp_path / "slo.yaml").write_text(body)
    reports = tmp_path / "reports"
    proc = harness("run", "--suite", "sharding", "--reports", str(reports), env={"REDIS_HARNESS_SLO": str(tmp_path / "slo.yaml")})
    assert proc.returncode == 2, proc.stderr
    assert says in " ".join(proc.stderr.split()) and "Traceback" not in proc.stderr
    assert not reports.exists(), "a run directory was made before the input was checked"


def test_missing_redis_server_is_explained(tmp_path):
    # A PATH with kubectl but without redis-server.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "kubectl").symlink_to("/usr/bin/kubectl")
    proc = harness(
        "up", "--cluster", "rh-nopath", "--state-dir", str(tmp_path), env={"PATH": f"{bindir}:{os.path.dirname(sys.executable)}"}
    )
    assert proc.returncode == 2
    assert "'redis-server' is not on PATH" in proc.stderr


def test_port_already_in_use_is_explained(tmp_path):
    busy = socket.socket()
    busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    busy.bind(("127.66.0.2", 6379))
    busy.listen()
    try:
        proc = harness(
            "up", "--cluster", "rh-busy", "--network", "loopback", "--subnet", "127.66.0.0/24", "--state-dir", str(tmp_path)
        )
    finally:
        busy.close()
    assert proc.returncode == 2
    assert "127.66.0.2:6379 is already in use" in proc.stderr
    assert not list(tmp_path.glob("*/ledger.json"))


@pytest.mark.netns
def test_address_range_already_in_use_is_explained(tmp_path):
    subprocess.run(["ip", "link", "add", "rhtestbusy", "type", "bridge"], check=True)
    try:
        subprocess.run(["ip", "addr", "add", "198.18.200.1/24", "dev", "rhtestbusy"], check=True)
        subprocess.run(["ip", "link", "set", "rhtestbusy", "up"], check=True)
        proc = harness("up", "--cluster", "rh-busy-range", "--subnet", "198.18.200.0/25", "--state-dir", str(tmp_path))
    finally:
        subprocess.run(["ip", "link", "del", "rhtestbusy"], check=False)
    assert proc.returncode == 2
    assert "198.18.200.0/25 is already in use" in proc.stderr


@pytest.mark.netns
def test_a_cluster_without_a_range_takes_one_nobody_routes():
    first = free_range(24, within="198.18.208.0/22")
    subprocess.run(["ip", "link", "add", "rhtestfree", "type", "bridge"], check=True)
    try:
        subprocess.run(["ip", "addr", "add", f"{ipaddress.ip_network(first).network_address + 1}/24", "dev", "rhtestfree"], check=True)
        subprocess.run(["ip", "link", "set", "rhtestfree", "up"], check=True)
        second = free_range(24, within="198.18.208.0/22")
        with pytest.raises(HarnessError, match=r"no free /22 address range is left inside 198.18.208.0/22"):
            free_range(22, within="198.18.208.0/22")
    finally:
        subprocess.run(["ip", "link", "del", "rhtestfree"], check=False)
    assert ipaddress.ip_network(second).network_address > ipaddress.ip_network(first).network_address


@pytest.mark.netns
def test_clusters_claiming_a_range_at_once_get_different_ones():
    """What `up` does under claiming_a_range — choose a free range, then route it — done by several
    at the same moment (gate lanes, parallel test workers): each gets its own."""
    start = threading.Barrier(3)
    claimed: dict[str, str] = {}

    def claim(link: str) -> None:
        start.wait()
        with claiming_a_range():
            chosen = free_range(24, within="198.18.212.0/22")
            time.sleep(0.2)  # the time `up` takes to make its bridge
            subprocess.run(["ip", "link", "add", link, "type", "bridge"], check=True)
            subprocess.run(["ip", "addr", "add", f"{ipaddress.ip_network(chosen).network_address + 1}/24", "dev", link], check=True)
            subprocess.run(["ip", "link", "set", link, "up"], check=True)
            claimed[link] = chosen

    links = ["rhtestclaim0", "rhtestclaim1", "rhtestclaim2"]
    threads = [threading.Thread(target=claim, args=(link,)) for link in links]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
    finally:
        for link in links:
            subprocess.run(["ip", "link", "del", link], check=False, capture_output=True)
    assert len(claimed) == 3 and len(set(claimed.values())) == 3, f"ranges claimed: {claimed}"


@pytest.mark.cluster
def test_a_pod_that_fits_no_node_stays_pending_and_up_says_why(tmp_path):
    """Required anti-affinity for six pods on three nodes: the fourth pod fits nowhere."""
    term = {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app.kubernetes.io/component": "server"}}}
    copy = reference_with_overlay(
        tmp_path,
        "one-per-node",
        [
            {"op": "remove", "path": "/spec/template/spec/topologySpreadConstraints"},
            {"op": "replace", "path": "/spec/template/spec/affinity", "value": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}},
        ],
    )
    proc = harness(
        "up", "--overlay", "one-per-node", "--cluster", "rh-pending", "--state-dir", str(tmp_path / "state"),
        env={"REDIS_HARNESS_REFERENCE": str(copy)},
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    said = " ".join(proc.stderr.split())
    assert "pod redis-cluster-3 is Pending: 0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules" in said
    assert not list((tmp_path / "state").glob("*/ledger.json")), "a failed up left state behind"
