"""The node agent on the local platform: `python -m harness.agent`, run as the Kubernetes platform
runs it, finds a local pod's redis-server by its own lookup and applies its faults there, with
the local platform's own fault code; the cluster's own view (CLUSTER NODES of another pod) says
whether they took."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import redis

from harness import reference
from harness.cluster import wait_for
from harness.observe import snapshot
from harness.topology import parse_cluster_nodes

pytestmark = [pytest.mark.cluster, pytest.mark.netns]


def agent(*argv: str) -> tuple[int, dict]:
    proc = subprocess.run([sys.executable, "-m", "harness.agent", *argv], capture_output=True, text=True, timeout=60)
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, (proc.stdout, proc.stderr)
    return proc.returncode, json.loads(lines[0])


def flags(platform, observer: str, node_id: str) -> frozenset[str]:
    """The flags `observer` gives node `node_id` in its CLUSTER NODES."""
    with platform.node_client(observer, socket_timeout=2) as client:
        nodes = parse_cluster_nodes(client.execute_command("CLUSTER", "NODES"))
    return next(n.flags for n in nodes if n.id == node_id)


def failing(found: frozenset[str]) -> bool:
    return bool({"fail", "fail?"} & found)


@pytest.fixture
def replica(healthy):
    """(a replica pod, its node id, a master watching it, the agent's options naming it)."""
    if healthy.name != "local":
        pytest.skip("the agent is run here against local pods; on Kubernetes it runs in the node agent DaemonSet")
    states = snapshot(healthy)
    state = next(s for s in states if s.myself() is not None and s.myself().is_replica)
    observer = next(s.pod for s in states if s.myself() is not None and s.myself().is_master)
    pod = healthy.pod(state.pod)
    namespace = reference.render(healthy.overlay).namespace()
    return pod, state.myself().id, observer, ["--pod", pod.name, "--namespace", namespace, "--pod-ip", pod.address]


def test_agent_stops_and_continues_the_pods_redis(healthy, replica):
    pod, node_id, observer, target = replica
    code, out = agent("stop", *target)
    try:
        assert code == 0, out
        assert out["found_by"].startswith("local cluster ") and out["state"] == "T"
        with pytest.raises(redis.exceptions.TimeoutError):
            healthy.node_client(pod.name, socket_timeout=0.3).ping()
        wait_for(lambda: "fail" in flags(healthy, observer, node_id), 30, f"{observer} to mark the stopped {pod.name} failed")
    finally:
        resumed, out = agent("cont", *target)
    assert resumed == 0, out
    wait_for(lambda: not failing(flags(healthy, observer, node_id)), 30, f"{observer} to see {pod.name} again")
    assert healthy.node_client(pod.name).ping()


def test_agent_partitions_the_pod_from_its_peers_and_heals_it(healthy, replica):
    pod, node_id, observer, target = replica
    peers = [p.address for p in healthy.pods() if p.name != pod.name]
    code, out = agent("partition", *target, "--peers", ",".join(peers))
    try:
        assert code == 0, out
        assert (out["table"], out["peers"]) == ("rh_partition", sorted(peers))
        wait_for(lambda: "fail" in flags(healthy, observer, node_id), 30, f"{observer} to mark the cut-off {pod.name} failed")
        assert healthy.node_client(pod.name).ping()  # its clients still reach it
    finally:
        healed, out = agent("heal", *target)
    assert healed == 0, out
    wait_for(lambda: not failing(flags(healthy, observer, node_id)), 30, f"{observer} to see {pod.name} again")


def test_the_agents_partition_is_the_local_platforms_own_table(healthy, replica):
    """The platform's heal (which empties table rh_partition in every pod) undoes the agent's cut."""
    pod, node_id, observer, target = replica
    peers = [p.address for p in healthy.pods() if p.name != pod.name]
    code, out = agent("partition", *target, "--peers", ",".join(peers))
    try:
        assert code == 0, out
        wait_for(lambda: "fail" in flags(healthy, observer, node_id), 30, f"{observer} to mark the cut-off {pod.name} failed")
    finally:
        healthy.heal()
    wait_for(lambda: not failing(flags(healthy, observer, node_id)), 30, f"{observer} to see {pod.name} again")


def test_agent_shaping_says_what_it_did(healthy, replica):
    """Loss is an nftables table; a delay needs sch_netem, and the agent's answer must match
    what the pod's namespace then holds, whichever way this kernel goes."""
    pod, _, _, target = replica
    code, out = agent("shape", *target, "--loss", "5")
    assert code == 0, out

    def inside(*argv: str) -> str:
        return subprocess.run(["nsenter", "-t", str(out["pid"]), "-n", *argv], capture_output=True, text=True).stdout

    try:
        assert "numgen random mod 1000 < 50 drop" in inside("nft", "list", "table", "inet", "rh_degrade")
        code, delayed = agent("shape", *target, "--loss", "5", "--delay-ms", "50")
        qdiscs = inside("tc", "qdisc", "show", "dev", "eth0")
        if code == 0:
            assert "netem" in qdiscs and "delay 50ms" in qdiscs
        else:
            assert code == 1 and delayed["not_supported"] is True and "netem" in delayed["error"]
            assert "netem" not in qdiscs
    finally:
        code, out = agent("unshape", *target)
    assert code == 0, out
    assert "rh_degrade" not in inside("nft", "list", "tables")
    assert "netem" not in inside("tc", "qdisc", "show", "dev", "eth0")
    assert healthy.node_client(pod.name).ping()


def test_agent_fills_and_frees_the_pods_data_volume(healthy, replica):
    pod, _, _, target = replica
    volume = healthy.data_volume(pod.name)
    code, out = agent("fill", *target)
    try:
        assert code == 0, out
        stat = os.statvfs(volume)
        assert stat.f_bavail * stat.f_frsize < 64 * 1024
    finally:
        freed, out = agent("free", *target)
    assert freed == 0, out
    stat = os.statvfs(volume)
    assert stat.f_bavail * stat.f_frsize > 64 * 1024**2


def test_agent_makes_a_peers_handshake_from_the_pods_network_namespace(healthy, replica):
    """From the pod's own network namespace, with its own certificate (as a peer dials the bus), none,
    or a foreign CA's: the other pod's bus port admits the first only; the server's certificate comes back."""
    pod, _node_id, _observer, source = replica
    other = next(p for p in healthy.pods() if p.name != pod.name)
    tls_dir = str(healthy.root / "pods" / pod.name / "tls")
    results = {}
    for present in ("own", "none", "foreign"):
        code, out = agent("handshake", *source, "--to", other.address, "--port", str(other.port + 10000),
                          "--present", present, "--tls-dir", tls_dir)  # fmt: skip
        assert code == 0, out
        results[present] = out["handshake"]
    assert results["own"]["ok"] and "BEGIN CERTIFICATE" in results["own"]["peer"], results["own"]
    assert not results["none"]["ok"] and not results["foreign"]["ok"], results
    code, out = agent("handshake", *source, "--to", other.address, "--port", str(other.port), "--trust", "foreign",
                      "--tls-dir", tls_dir, "--ping")  # fmt: skip
    assert code == 0 and not out["handshake"]["ok"], "a client trusting a foreign CA accepted the server"
    code, out = agent("handshake", *source, "--to", other.address, "--port", "1", "--tls-dir", "/nonexistent")
    assert code == 1 and "has no TLS files at /nonexistent" in out["error"]
