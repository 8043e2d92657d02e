"""The local platform with real redis-server processes: the reference comes up
healthy over TLS with auth, refuses what it must, survives restarts with new
addresses, and leaves nothing behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import redis
from aof_damage import newest_incr, short_write

from harness.cluster import shards, wait_for
from harness.nemesis import wait_out_vote_window
from harness.observe import snapshot, wait_healthy
from harness.platforms.local.platform import LocalPlatform
from harness.topology import check_invariants, parse_cluster_nodes

pytestmark = pytest.mark.cluster


def leftovers(tag_or_cluster: LocalPlatform) -> list[str]:
    """Processes, namespaces, links and nft tables of this cluster still present."""
    tag = tag_or_cluster.tag
    found = []
    root = str(tag_or_cluster.root)
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            environ = open(f"/proc/{pid}/environ", "rb").read()
            stat = open(f"/proc/{pid}/stat").read()
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        # redis-server writes its process title over its environment: its working directory
        # (the pod's data volume) is what still names the cluster.
        if (root.encode() in environ or (cwd + "/").startswith(root + "/")) and ") Z " not in stat:
            found.append(f"process {pid}")
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    found += [f"netns {line.split()[0]}" for line in netns.splitlines() if line.startswith(f"rh-{tag}-")]
    links = json.loads(subprocess.run(["ip", "-j", "link"], capture_output=True, text=True).stdout or "[]")
    found += [f"link {link['ifname']}" for link in links if link["ifname"].startswith(f"rh{tag}")]
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    found += [f"nft {t}" for t in tables.splitlines() if "k8s_network_policy" in t]
    mounts = open("/proc/mounts").read().split("\n")
    found += [f"mount {line.split()[1]}" for line in mounts if line and line.split()[1].startswith(root + "/")]
    return found


def slot_owners(platform) -> dict[tuple[int, int], str]:
    """Slot range → the hostname (pod identity) of the master serving it."""
    states = snapshot(platform)
    return {rng: n.hostname for n in states[0].nodes if n.is_master for rng in n.slots}


# --- up: healthy, over TLS, with auth --------------------------------------------------
def test_up_gives_a_healthy_cluster_over_tls_with_auth(well_placed):
    states = snapshot(well_placed)
    assert check_invariants(states) == []
    assert sum(1 for s in states if s.myself().is_master) == 3
    client = well_placed.client()
    client.set("app:hello", "world")
    assert client.get("app:hello") == "world"


# --- the bootstrap Job is idempotent -----------------------------------------------------
def test_bootstrap_on_a_healthy_cluster_changes_nothing(well_placed):
    before = {n.id: (n.ip, n.master_id, n.config_epoch, n.slots) for n in snapshot(well_placed)[0].nodes}
    log = well_placed.run_bootstrap()
    assert "nothing to do" in log
    after = {n.id: (n.ip, n.master_id, n.config_epoch, n.slots) for n in snapshot(well_placed)[0].nodes}
    assert after == before


# --- NetworkPolicy is enforced (namespaces) ------------------------------------------------
@pytest.mark.netns
def test_network_policy_admits_clients_to_the_redis_port_only(healthy):
    target = healthy.pods()[0].name
    assert healthy.reach({"role": "client"}, target, [6379, 16379]) == {6379: "open", 16379: "filtered"}
    assert healthy.reach({"app": "stranger"}, target, [6379]) == {6379: "filtered"}


# --- restarts: new addresses, nothing stale, nothing lost ------------------------------------------
def test_restarted_master_rejoins_at_its_new_address(healthy):
    states = snapshot(healthy)
    master = next(s for s in states if s.myself().is_master)
    old_address = master.address
    shard = next(s for s in shards(states) if s.master == master.pod)
    wait_out_vote_window(healthy, [shard.master, *shard.replicas])  # its preStop hands over: a failover
    healthy.restart(master.pod, graceful=True)
    new_address = healthy.pod(master.pod).address
    assert new_address != old_address
    wait_healthy(healthy, timeout=60)
    for state in snapshot(healthy):
        assert all(n.ip != old_address for n in state.nodes), f"{state.pod} still lists {old_address}"


# --- down: nothing left; volumes kept on request; loopback mode --------------------------------------
@pytest.mark.netns
def test_down_keeps_volumes_on_request_and_leaves_nothing(tmp_path):
    p = LocalPlatform(cluster="rh-test-down", state_dir=tmp_path)
    p.up()
    try:
        wait_healthy(p, timeout=90)
        running = leftovers(p)
        assert sum(f.startswith("process") for f in running) >= 6, f"the leftover check sees no redis-server: {running}"
        p.client().set("app:survives", "yes")
        p.down(keep_volumes=True)
        assert leftovers(p) == []
        p.up()
        wait_healthy(p, timeout=90)
        assert p.client().get("app:survives") == "yes"
    finally:
        p.down()
    assert leftovers(p) == []
    assert not p.root.exists()


def test_loopback_network_runs_the_same_reference(tmp_path):
    p = LocalPlatform(cluster="rh-test-lo", state_dir=tmp_path, network="loopback", subnet="127.77.0.0/24")
    p.up()
    try:
        wait_healthy(p, timeout=90)
        assert all(pod.address.startswith("127.77.0.") for pod in p.pods())
        with pytest.raises(Exception, match="needs root|network namespace"):
            p.reach({"role": "client"}, p.pods()[0].name, [6379])
    finally:
        p.down()
    assert leftovers(p) == []


@pytest.mark.netns
def test_up_sweeps_what_a_crashed_run_left_behind(tmp_path):
    code = (
        "from harness.platforms.local.platform import LocalPlatform\n"
        f"p = LocalPlatform(cluster='rh-test-crash', state_dir={str(tmp_path)!r})\n"
        "p.up()\nprint('up', flush=True)\nimport time; time.sleep(600)\n"
    )
    owner = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout.readline().strip() == "up"
    finally:
        owner.send_signal(signal.SIGKILL)  # a crash: no cleanup runs
        owner.wait()
    p = LocalPlatform(cluster="rh-test-crash", state_dir=tmp_path)
    assert leftovers(p), "the crashed run should have left its cluster running"
    p.up()
    try:
        assert any(item.startswith("process") for item in p.swept)
        wait_healthy(p, timeout=90)
    finally:
        p.down()
    assert leftovers(p) == []


@pytest.mark.netns
def test_ctrl_c_during_up_removes_everything(tmp_path):
    argv = [
        sys.executable,
        "-m",
        "harness.cli",
        "up",
        "--cluster",
        "rh-test-int",
        "--state-dir",
        str(tmp_path),
    ]
    # Where this suite runs in the background, SIGINT arrives ignored; a terminal's Ctrl-C does not.
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    interrupt_once_started(proc, LocalPlatform(cluster="rh-test-int", state_dir=tmp_path))


def interrupt_once_started(proc: subprocess.Popen, cluster: LocalPlatform, within: float = 60.0) -> None:
    """Once `cluster`'s six pods run, Ctrl-C `proc`: it must exit 130 and leave nothing of the cluster."""
    try:
        deadline, started = time.monotonic() + within, 0
        while time.monotonic() < deadline and started < 6:
            started = sum(x.startswith("process") for x in leftovers(cluster))  # helpers come and go too
            time.sleep(0.05)
        assert started >= 6, "the cluster never started"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 130, err
        assert leftovers(cluster) == [], err
    finally:
        proc.kill()
        proc.wait()
        cluster.down()


def test_parse_own_cluster_nodes_line_format(healthy):
    """The format the entrypoint rewrites is the one this Redis writes (ip:port@bus,hostname)."""
    raw = healthy.exec_redis_cli(healthy.pods()[0].name, "CLUSTER", "NODES")
    entries = parse_cluster_nodes(raw)
    assert all(e.hostname.endswith(".svc.cluster.local") and e.bus_port == e.port + 10000 for e in entries)


def test_held_replica_stays_down_until_released_then_rejoins(healthy):
    replica = next(s for s in snapshot(healthy) if s.myself().is_replica)
    healthy.hold_down(replica.pod)
    time.sleep(healthy.restart_delay + 0.5)  # longer than a killed pod stays down
    assert not healthy.pod(replica.pod).running
    with pytest.raises(Exception, match="not healthy"):
        wait_healthy(healthy, timeout=2)
    healthy.release(replica.pod)
    assert healthy.pod(replica.pod).address != replica.address
    wait_healthy(healthy, timeout=60)


def test_killed_pod_is_restarted_by_the_platform_at_a_new_address(healthy):
    """kill is SIGKILL only; the platform restarts the container as kubelet does."""
    replica = next(s for s in snapshot(healthy) if s.myself().is_replica)
    started = time.monotonic()  # before the kill, whose restart timer starts inside it
    healthy.kill(replica.pod)
    assert not healthy.pod(replica.pod).running
    wait_for(lambda: healthy.pod(replica.pod).running, 30, f"{replica.pod} to be restarted")
    waited = time.monotonic() - started
    assert healthy.pod(replica.pod).address != replica.address
    assert healthy.pod(replica.pod).node == replica.node  # a container restart stays on its node
    assert waited >= healthy.restart_delay * 0.9
    wait_healthy(healthy, timeout=60)


def test_pods_are_spread_over_the_kind_workers(healthy):
    nodes = [n.name for n in healthy.nodes()]
    assert nodes == ["redis-harness-worker", "redis-harness-worker2", "redis-harness-worker3"]
    per_node = {n: sum(p.node == n for p in healthy.pods()) for n in nodes}
    assert sorted(per_node.values()) == [2, 2, 2], per_node


def test_a_drain_leaves_pods_bound_to_the_node_by_their_volumes_pending_until_uncordon(healthy):
    """kind's local-path volumes bind each pod to its first node: an evicted pod waits for that node,
    and the budget (maxUnavailable 1) counts it gone, so the node's other pod stays (binding.py)."""
    node = healthy.pods()[0].node
    on_node = sorted(p.name for p in healthy.pods() if p.node == node)
    drained = healthy.drain(node, timeout=120)
    try:
        assert drained.moved == {} and len(drained.waiting) == 1 and len(drained.kept) == 1, drained
        (waiting,), (kept,) = drained.waiting, drained.kept
        assert sorted([waiting, kept]) == on_node
        assert not healthy.pod(waiting).running and healthy.pod(waiting).node == ""
        assert healthy.ledger.pods[waiting].pending == (
            "0/3 nodes are available: 1 node(s) were unschedulable, 2 node(s) had volume node affinity conflict"
        )
        assert "allowed no disruption" in drained.kept[kept] and healthy.pod(kept).node == node
        assert not next(n for n in healthy.nodes() if n.name == node).schedulable
    finally:
        healthy.uncordon(node)
    assert healthy.pod(waiting).running and healthy.pod(waiting).node == node  # back where its volume is
    wait_healthy(healthy, timeout=60)


def test_failed_node_takes_its_pods_down_until_it_returns(healthy):
    node = healthy.pods()[1].node
    lost = healthy.fail_node(node)
    try:
        assert lost and all(not healthy.pod(p).running for p in lost)
        time.sleep(healthy.restart_delay + 0.5)
        assert all(not healthy.pod(p).running for p in lost), "a failed node's pods came back by themselves"
    finally:
        healthy.recover_node(node)
    assert all(healthy.pod(p).running and healthy.pod(p).node == node for p in lost)
    wait_healthy(healthy, timeout=90)


def test_paused_pod_answers_nothing_until_resumed(healthy):
    pod = healthy.pods()[3]
    started = time.monotonic()
    healthy.pause(pod.name, seconds=4)
    client = healthy.node_client(pod.name, socket_timeout=0.3)  # with its retries, well under 4 s
    with pytest.raises(redis.exceptions.TimeoutError):
        client.ping()

    def answers() -> bool:
        try:
            return healthy.node_client(pod.name, socket_timeout=0.3).ping()
        except redis.exceptions.RedisError:
            return False

    wait_for(answers, 30, f"{pod.name} to answer once resumed")  # a condition: a loaded machine resumes late
    assert time.monotonic() - started >= 4.0, "the pod answered before its pause ended"


# --- fault primitives on real namespaces ------------------------------------------------
def inside(platform, pod: str, *argv: str) -> str:
    rec = platform.ledger.pods[pod]
    return subprocess.run(["ip", "netns", "exec", rec.netns, *argv], capture_output=True, text=True).stdout


def test_partition_cuts_pods_apart_but_not_their_clients(healthy):
    a, b, c = (p.name for p in healthy.pods()[:3])
    address = {p.name: p.address for p in healthy.pods()}
    rec = {name: healthy.ledger.pods[name] for name in (a, b, c)}
    healthy.partition([[a]])
    try:
        cut = healthy._tcp(rec[b], [(address[a], 6379), (address[c], 6379)])
        assert cut == {(address[a], 6379): "filtered", (address[c], 6379): "open"}
        assert healthy._tcp(rec[a], [(address[b], 16379)]) == {(address[b], 16379): "filtered"}
        assert healthy.node_client(a).ping()  # the node (and every client) still reaches it
    finally:
        healthy.heal()
    assert healthy._tcp(rec[b], [(address[a], 6379)]) == {(address[a], 6379): "open"}


def test_degraded_network_and_its_restore(healthy):
    pod = healthy.pods()[1].name
    healthy.degrade_network(pod, loss_percent=2, rate_kbit=4000)
    try:
        assert "tbf" in inside(healthy, pod, "tc", "qdisc", "show", "dev", "eth0")
        assert "numgen random mod 1000 < 20 drop" in inside(healthy, pod, "nft", "list", "table", "inet", "rh_degrade")
        assert healthy.node_client(pod).ping()
    finally:
        healthy.restore_network(pod)
    assert "tbf" not in inside(healthy, pod, "tc", "qdisc", "show", "dev", "eth0")
    assert "rh_degrade" not in inside(healthy, pod, "nft", "list", "tables")


def test_a_filled_volume_refuses_writes_cleanly_until_freed(healthy):
    pod = healthy.pods()[0].name
    volume = healthy.data_volume(pod)
    healthy.fill_volume(pod)
    try:
        stat = os.statvfs(volume)
        assert stat.f_bavail * stat.f_frsize < 64 * 1024
    finally:
        healthy.free_volume(pod)
    stat = os.statvfs(volume)
    assert stat.f_bavail * stat.f_frsize > 64 * 1024**2


def test_power_loss_drops_what_was_not_fsynced_and_the_pod_restarts(healthy):
    replica = next(s for s in snapshot(healthy) if s.myself().is_replica)
    volume = healthy.data_volume(replica.pod)
    with open(volume / "rh-synced", "wb") as f:
        f.write(b"synced")
        f.flush()
        os.fsync(f.fileno())
        f.write(b" and not")
    (volume / "rh-unsynced").write_bytes(b"never synced")
    started = time.monotonic()  # before the power loss, whose restart timer starts inside it
    lost = healthy.lose_power(replica.pod)
    assert lost["files"] >= 2 and lost["bytes"] >= len(b" and not" + b"never synced")
    assert (volume / "rh-synced").read_bytes() == b"synced"
    assert (volume / "rh-unsynced").read_bytes() == b""
    wait_for(lambda: healthy.pod(replica.pod).running, 30, f"{replica.pod} to be restarted")
    waited = time.monotonic() - started
    assert healthy.pod(replica.pod).address != replica.address
    assert waited >= healthy.restart_delay * 0.9
    wait_healthy(healthy, timeout=60)
    for name in ("rh-synced", "rh-unsynced"):
        (volume / name).unlink()


def test_replica_with_a_damaged_aof_resynchronises_from_its_master(healthy):
    replica = next(s for s in snapshot(healthy) if s.myself().is_replica)
    master = next(s for s in snapshot(healthy) if s.myself().id == replica.myself().master_id)
    client = healthy.client()
    keys = [f"app:aof-damage:{i}" for i in range(3000)]
    client.mset_nonatomic({k: k for k in keys})
    client.close()
    # The replica's AOF holds the writes once it has applied its master's stream and written its AOF
    # buffer out (a condition, not a sleep: a loaded machine replicates late).
    master_node, replica_node = healthy.node_client(master.pod), healthy.node_client(replica.pod)

    def written_out() -> bool:
        offset = master_node.info("replication")["master_repl_offset"]
        mine = replica_node.info("replication").get("slave_repl_offset", -1)
        return mine >= offset and replica_node.info("persistence")["aof_buffer_length"] == 0

    wait_for(written_out, 30, f"{replica.pod} to write its master's stream to its AOF")
    healthy.hold_down(replica.pod)
    short_write(newest_incr(healthy.data_volume(replica.pod) / "appendonlydir"))
    healthy.release(replica.pod)
    wait_healthy(healthy, timeout=60)
    assert "append-only file is damaged" in healthy.logs(replica.pod)
    assert (healthy.data_volume(replica.pod) / "appendonlydir.damaged").is_dir()
    dbsize = lambda pod: int(healthy.exec_redis_cli(pod, "DBSIZE"))  # noqa: E731
    wait_for(lambda: dbsize(replica.pod) == dbsize(master.pod), 30, "the replica to hold its master's keys")
