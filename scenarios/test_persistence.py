"""Persistence gate: data survives a graceful restart (with a new address), a power loss
(within the window the server's appendfsync setting promises), a restart of every pod at
once, and a full down/up that keeps the volumes — and the topology comes back the same,
with nothing stale."""

from __future__ import annotations

from harness.checkers import check_set
from harness.cluster import wait_for
from harness.judgement import margin
from harness.observe import snapshot, wait_healthy
from harness.recording import check, start_recording
from harness.topology import check_invariants
from harness.writers import read_keys

KEYS = 10_000


def write_keys(platform, prefix: str, n: int = KEYS) -> list[str]:
    keys = [f"app:{prefix}:{i}" for i in range(n)]
    client = platform.client()
    for i in range(0, n, 1000):
        client.mset_nonatomic({k: k for k in keys[i : i + 1000]})
    client.close()
    return keys


def shard_members(platform) -> dict[tuple[int, int], frozenset[str]]:
    """Slot range → the pods (by hostname, their identity) of the shard serving it: its master and
    replicas. A graceful restart may swap roles within a shard (the preStop handover), not members."""
    view = snapshot(platform)[0].nodes
    members = {n.id: {n.hostname} for n in view if n.is_master}
    for n in view:
        if n.is_replica and n.master_id in members:
            members[n.master_id].add(n.hostname)
    return {rng: frozenset(members[n.id]) for n in view if n.is_master for rng in n.slots}


def test_graceful_restart_with_a_new_address_keeps_every_key(healthy, nemesis, evidence):
    keys = write_keys(healthy, "graceful")
    master = nemesis.free_master()  # its preStop hands over: a failover
    before = healthy.pod(master).address
    nemesis.restart_pod(master, graceful=True)
    waited, _ = wait_healthy(healthy, timeout=60)
    present = read_keys(healthy, keys)
    evidence.figure(
        keys=len(keys),
        present=len(present),
        old_address=before,
        new_address=healthy.pod(master).address,
        healthy_after_s=round(waited, 3),
    )
    assert healthy.pod(master).address != before
    assert len(present) == len(keys)


def config_value(platform, pod: str, name: str) -> str:
    """CONFIG GET as admin: what the server runs with, not what a file says."""
    return platform.exec_redis_cli(pod, "CONFIG", "GET", name).split()[1]


def test_kill9_loses_at_most_the_appendfsync_window(healthy, nemesis, slo, evidence):
    """A power loss under a master — kill -9, and its volume loses what was written but not
    fsynced — then kubelet's restart, before any failover: what the AOF had made durable is
    what survives. `appendfsync always` must lose no acknowledged write, `everysec` none older
    than the SLO's loss window; `no` bounds nothing and fails."""
    master = nemesis.free_master()
    address = healthy.pod(master).address
    appendonly, appendfsync = config_value(healthy, master, "appendonly"), config_value(healthy, master, "appendfsync")
    rec = start_recording(healthy, waited_workers=0, unwaited_workers=4, rate=150)
    nemesis.attach(rec.mark)
    try:
        rec.warm_up(3.0)  # 3 s of writes once every writer has connected
        fault = nemesis.lose_power(master)
        wait_for(lambda: healthy.pod(master).running and healthy.pod(master).address != address, 30, f"{master} to be restarted")
        rec.mark("restarted", pod=master)
        wait_healthy(healthy, timeout=60)
        rec.run_for(1.0)
    finally:
        rec.stop()
    figures = check(rec, fault["at"])
    on_master = [op for op in rec.history.ops if op.f == "write" and op.node == address and op.outcome == "ok"]
    lost = set(check_set(rec.history, read_keys(healthy, [op.key for op in on_master])).lost)
    lost_ops = [op for op in on_master if op.key in lost]
    window = max((fault["at"] - op.complete for op in lost_ops), default=0.0)
    limit = slo.value("persistence", "max_loss_window_seconds")
    figures.loss_window_s = round(window, 3)
    evidence.figure(
        margins=[margin("loss window after a power loss", window, limit)],
        appendonly=appendonly,
        appendfsync=appendfsync,
        volume_lost=fault["volume_lost"],
        acknowledged_on_master=len(on_master),
        lost_on_master=len(lost_ops),
        **figures.as_dict(),
    )
    evidence.history("power-loss", rec.history)
    assert figures.workload_errors == [], f"workload errors: {figures.workload_errors[:3]}"
    assert len(on_master) > 100, f"only {len(on_master)} writes reached the master before the power loss: too few to judge"
    assert figures.unexpected == 0, f"{figures.unexpected} values nobody wrote"
    lost_text = f"the power loss lost {len(lost_ops)} of {len(on_master)} acknowledged writes, up to {window:.2f} s before it"
    assert appendonly == "yes", f"appendonly {appendonly}: no append-only file; {lost_text}"
    assert appendfsync in ("always", "everysec"), f"appendfsync {appendfsync} bounds no loss window: {lost_text}"
    if appendfsync == "always":
        assert not lost_ops, f"appendfsync always lost acknowledged writes: {lost_text}"
    assert window <= limit, f"appendfsync everysec lost more than its window (SLO {limit:g} s): {lost_text}"


def test_restart_all_keeps_topology_keys_and_links(healthy, nemesis, evidence):
    keys = write_keys(healthy, "all")
    shards_before = shard_members(healthy)
    old_addresses = {p.address for p in healthy.pods()}
    nemesis.restart_all(graceful=True)
    waited, states = wait_healthy(healthy, timeout=120)
    present = read_keys(healthy, keys)
    evidence.figure(keys=len(keys), present=len(present), healthy_after_s=round(waited, 3))
    assert not old_addresses & {p.address for p in healthy.pods()}, "every pod must come back with a new address"
    assert check_invariants(states, placement=False) == []  # roles may swap within a shard: the repair Job's business
    assert shard_members(healthy) == shards_before
    assert len(present) == len(keys), f"restarting every pod lost {len(keys) - len(present)} of {len(keys)} keys"


def test_data_survives_down_and_up_that_keeps_the_volumes(healthy, evidence):
    keys = write_keys(healthy, "volumes", 2000)
    shards_before = shard_members(healthy)
    healthy.down(keep_volumes=True)
    healthy.up()
    waited, _ = wait_healthy(healthy, timeout=120)
    present = read_keys(healthy, keys)
    evidence.figure(keys=len(keys), present=len(present), healthy_after_s=round(waited, 3))
    assert shard_members(healthy) == shards_before
    assert len(present) == len(keys), f"down and up with the volumes kept lost {len(keys) - len(present)} of {len(keys)} keys"
