"""Sharding gate: slots covered by three masters with replicas elsewhere, keys spread
evenly, hash tags co-locate, the client follows MOVED and ASK, and moving slots under
a live workload loses nothing."""

from __future__ import annotations

import pytest
import redis

from harness import resharding
from harness.cluster import node_of, reshard, shards, wait_for
from harness.errors import HarnessError
from harness.observe import snapshot, wait_healthy
from harness.platforms.base import Scaling, require
from harness.recording import check, start_recording
from harness.topology import SLOTS

SPREAD_KEYS = 30_000


def test_every_master_has_a_replica_on_another_node(healthy, evidence):
    states = snapshot(healthy)
    layout = shards(states)
    node = {s.pod: s.node for s in states}
    evidence.figure(
        shards=[{"master": s.master, "replicas": list(s.replicas), "slots": sum(b - a + 1 for a, b in s.slots)} for s in layout]
    )
    assert len(layout) == 3
    assert sum(b - a + 1 for s in layout for a, b in s.slots) == SLOTS
    for shard in layout:
        assert shard.replicas, f"master {shard.master} has no replica"
        assert all(node[r] != node[shard.master] for r in shard.replicas)


def test_keys_spread_evenly_over_the_shards(healthy, slo, evidence):
    masters = [s.master for s in shards(snapshot(healthy))]
    before = {m: healthy.node_client(m).dbsize() for m in masters}
    client = healthy.client()
    keys = [f"app:spread:{i}" for i in range(SPREAD_KEYS)]
    for i in range(0, SPREAD_KEYS, 2000):
        client.mset_nonatomic({k: "x" for k in keys[i : i + 2000]})
    client.close()
    added = {m: healthy.node_client(m).dbsize() - before[m] for m in masters}
    ratio = max(added.values()) / max(1, min(added.values()))
    evidence.figure(keys_per_master=added, max_min_ratio=round(ratio, 4))
    assert sum(added.values()) == SPREAD_KEYS
    assert ratio <= slo.value("sharding", "max_shard_imbalance")


def test_hash_tags_put_keys_in_one_slot(healthy):
    client = healthy.client()
    keys = [f"app:{{user:42}}:{field}" for field in ("name", "email", "cart")]
    assert len({client.keyslot(k) for k in keys}) == 1
    # A multi-key command only works when every key lives in one slot.
    client.mset({k: k for k in keys})
    assert client.mget(keys) == keys
    with pytest.raises(redis.exceptions.RedisClusterException):
        client.mset({"app:a": "1", "app:b": "2"})


def _migrate_slot_with_one_key(platform, key: str, value: str):
    """Start moving the key's slot between masters (MIGRATING/IMPORTING) and migrate only the key."""
    client = platform.client()
    slot = client.keyslot(key)
    client.set(key, value)
    layout = shards(snapshot(platform))
    source = next(s for s in layout if any(a <= slot <= b for a, b in s.slots))
    target = next(s for s in layout if s is not source)
    target_pod = platform.pod(target.master)
    platform.exec_redis_cli(target.master, "CLUSTER", "SETSLOT", str(slot), "IMPORTING", source.master_id)
    platform.exec_redis_cli(source.master, "CLUSTER", "SETSLOT", str(slot), "MIGRATING", target.master_id)
    password = platform.credentials().password("admin")
    platform.exec_redis_cli(
        source.master,
        "MIGRATE",
        target_pod.address,
        str(target_pod.port),
        "",
        "0",
        "5000",
        "AUTH2",
        "admin",
        password,
        "KEYS",
        key,
    )
    return client, slot, source, target


def _key_alone_in_its_slot(platform) -> str:
    """A key whose slot holds no other key: its slot can be moved by migrating just it. When earlier
    tests have left keys in every slot tried, the fewest of them are deleted (they are leftovers)."""
    client = platform.client(user="admin")
    try:
        fewest: tuple[int, str] | None = None
        for n in range(2_000):
            key = f"app:migrating:{n}"
            count = client.cluster_countkeysinslot(client.keyslot(key))
            if count == 0:
                return key
            fewest = min(fewest or (count, key), (count, key))
        assert fewest is not None
        slot = client.keyslot(fewest[1])
        leftovers = client.cluster_get_keys_in_slot(slot, fewest[0])
        client.delete(*leftovers)
        assert client.cluster_countkeysinslot(slot) == 0, f"slot {slot} still holds keys"
        return fewest[1]
    finally:
        client.close()


def test_client_follows_ask_during_migration_and_moved_after(healthy):
    key, value = _key_alone_in_its_slot(healthy), "moved-value"
    client, slot, source, target = _migrate_slot_with_one_key(healthy, key, value)
    plain = healthy.node_client(source.master, user="app")
    try:
        with pytest.raises(redis.exceptions.AskError):
            plain.get(key)
        assert client.get(key) == value  # ASK → ASKING on the target
        client.set(key, "again")  # a write that must land on the target too
        for shard in shards(snapshot(healthy)):
            healthy.exec_redis_cli(shard.master, "CLUSTER", "SETSLOT", str(slot), "NODE", target.master_id)
        with pytest.raises(redis.exceptions.MovedError):
            plain.get(key)
        assert client.get(key) == "again"  # the client's map is stale: MOVED is followed
    finally:
        client.close()
        # Leave no slot half-moved for the tests that follow, whatever happened above.
        for shard in shards(snapshot(healthy)):
            for args in (("STABLE",), ("NODE", target.master_id)):
                try:
                    healthy.exec_redis_cli(shard.master, "CLUSTER", "SETSLOT", str(slot), *args)
                except HarnessError:
                    pass
        wait_for(lambda: not _open_slots(healthy), 30, f"slot {slot} to settle")


def _open_slots(platform) -> list[str]:
    """Slots some master still marks as migrating or importing."""
    found = []
    for shard in shards(snapshot(platform)):
        for line in platform.exec_redis_cli(shard.master, "CLUSTER", "NODES").splitlines():
            if "myself" in line and "[" in line:
                found.append(f"{shard.master}: {line[line.index('[') :]}")
    return found


def test_resharding_under_a_live_workload_loses_nothing(healthy, slo, evidence):
    layout = shards(snapshot(healthy))
    source, target = layout[0], layout[1]
    rec = start_recording(healthy)
    try:
        rec.run_for(1.0)
        start = rec.mark("reshard", slots=500, source=source.master, target=target.master)
        reshard(healthy, source.master, source.master_id, target.master_id, 500)
        rec.mark("resharded")
        rec.run_for(1.0)
    finally:
        rec.stop()
    figures = check(rec, start)
    moved = shards(snapshot(healthy))
    evidence.figure(redirects_followed=rec.redirects(), **figures.as_dict())
    evidence.history("reshard", rec.history)
    assert figures.workload_errors == []
    assert (
        sum(b - a + 1 for a, b in next(s for s in moved if s.master == target.master).slots)
        >= sum(b - a + 1 for a, b in target.slots) + 500
    )
    assert figures.fail_ops == 0, "the workload saw writes refused while slots moved"
    assert figures.lost == 0 and figures.unexpected == 0


def _all_know(platform, n: int, outside: tuple[str, ...] = ()) -> bool:
    """Every running member pod lists n nodes, none still in handshake."""
    states = [s for s in snapshot(platform) if s.error is None and s.pod not in outside]
    return all(len(s.nodes) == n and not any("handshake" in node.flags for node in s.nodes) for s in states)


def _undo_scale_out(platform, cli, at: str, size: int) -> None:
    """Best effort after a failure: empty the added pods of slots, forget them, scale back, so
    the session's cluster is left whole for the tests after this one."""
    added = sorted((p.name for p in platform.pods()), key=lambda n: int(n.rsplit("-", 1)[1]))[size:]
    for pod in reversed(added):
        try:
            node_id = platform.exec_redis_cli(pod, "CLUSTER", "MYID").strip()
            if node_of(snapshot(platform), pod).is_master:
                cli("fix", at, "--cluster-yes")  # slots a failed move left open
                resharding.rebalance(platform, {pod: 0})
            cli("del-node", at, node_id)
        except Exception:  # the test's own failure is what gets reported
            pass
    require(platform, Scaling).scale(size)


def test_scale_out_to_four_shards_and_back_under_load_loses_nothing(well_placed, slo, evidence):
    healthy = well_placed  # the spread the reference keeps: the added replica must land off its master's node
    anchor = shards(snapshot(healthy))[0].master
    at = f"{healthy.pod(anchor).address}:{healthy.pod(anchor).port}"

    def cli(*args: str) -> str:
        return healthy.exec_redis_cli(anchor, "--cluster", *args, bare=True, timeout=300)

    before = shards(snapshot(healthy))
    assert all(s.replicas for s in before), f"shards without a replica before scaling out: {before}"
    size = len(healthy.pods())  # one master and one replica more, then back
    rec = start_recording(healthy)
    try:
        rec.run_for(1.0)
        start = rec.mark(f"scale {size}→{size + 2}")
        new_master, new_replica = require(healthy, Scaling).scale(size + 2)
        master_id = healthy.exec_redis_cli(new_master, "CLUSTER", "MYID").strip()
        cli("add-node", f"{healthy.pod(new_master).address}:6379", at)
        wait_for(lambda: _all_know(healthy, size + 1, outside=(new_replica,)), 30, f"{new_master} to be known everywhere")
        cli("add-node", f"{healthy.pod(new_replica).address}:6379", at, "--cluster-slave", "--cluster-master-id", master_id)
        wait_for(lambda: _all_know(healthy, size + 2), 30, f"{new_replica} to be known everywhere")
        rec.mark("rebalance onto 4 masters")
        grown = resharding.rebalance(healthy)
        redirects_out = rec.redirects()
        grown_after, _ = wait_healthy(healthy, timeout=60, placement=True, masters=4)
        four = shards(snapshot(healthy))
        rec.run_for(1.0)
        rec.mark("drain the 4th master")
        shrunk = resharding.rebalance(healthy, {new_master: 0})
        for pod in (new_replica, new_master):
            node_id = healthy.exec_redis_cli(pod, "CLUSTER", "MYID").strip()
            cli("del-node", at, node_id)
        require(healthy, Scaling).scale(size)
        rec.mark(f"scale {size + 2}→{size}")
        shrunk_after, _ = wait_healthy(healthy, timeout=60, placement=True, masters=3)
        rec.run_for(1.0)
    finally:
        rec.stop()
        if len(healthy.pods()) > size:  # failed half-way: hand the slots back before the pods go
            _undo_scale_out(healthy, cli, at, size)
    figures = check(rec, start)
    evidence.figure(
        moved_out={"slots": grown.slots, "keys": grown.keys, "seconds": round(grown.seconds, 3), "redirects": redirects_out},
        moved_back={"slots": shrunk.slots, "keys": shrunk.keys, "seconds": round(shrunk.seconds, 3)},
        redirects_followed=rec.redirects(),  # MOVED and ASK: the writers met slots mid-move
        grown_after_s=round(grown_after, 3),
        shrunk_after_s=round(shrunk_after, 3),
        slots_per_master_at_4=[sum(b - a + 1 for a, b in s.slots) for s in four],
        **figures.as_dict(),
    )
    evidence.history("scale", rec.history)
    assert figures.workload_errors == []
    assert len(four) == 4 and all(s.replicas for s in four), f"at 4 masters, shards without a replica: {four}"
    assert min(sum(b - a + 1 for a, b in s.slots) for s in four) >= SLOTS // 4 - 2
    assert figures.lost == 0 and figures.unexpected == 0, f"scaling lost {figures.lost} writes, {figures.unexpected} unexpected"
