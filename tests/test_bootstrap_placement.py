"""The bootstrap's replica placement (reference/base/redis/place-replica.awk) on synthetic
clusters, driven the way bootstrap.sh drives it (one pod at a time, in pod order, the
replica counts updated after each), and node-map.sh against a stand-in kubectl."""

from __future__ import annotations

import hashlib
import itertools
import os
import random
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from harness import reference

REDIS_DIR = reference.REFERENCE_DIR / "base" / "redis"
PLACE = REDIS_DIR / "place-replica.awk"
NODE_MAP = REDIS_DIR / "node-map.sh"
AWK = shutil.which("awk") or "awk"


def node_id(pod: int) -> str:
    """A Redis node id: random-looking, in no relation to the pod's ordinal."""
    return hashlib.sha1(f"redis-cluster-{pod}".encode()).hexdigest()


def place(masters: dict[int, str], counts: dict[int, int], pods: list[tuple[int, str]], shuffle: int = 0) -> int:
    """One call as bootstrap.sh makes it: the master (pod ordinal) chosen for pods[0]."""
    lines = [f"master {node_id(m)} 10.0.0.{m} redis-cluster-{m} {node} {counts[m]}" for m, node in masters.items()]
    random.Random(shuffle).shuffle(lines)  # bootstrap lists masters in awk's hash order
    lines += [f"pod redis-cluster-{p} {node}" for p, node in pods]
    proc = subprocess.run([AWK, "-f", str(PLACE)], input="\n".join(lines) + "\n", capture_output=True, text=True, check=True)
    chosen_id, address = proc.stdout.split()
    chosen = next(m for m in masters if node_id(m) == chosen_id)
    assert address == f"10.0.0.{chosen}"
    return chosen


def plan(nodes: list[str], masters: list[int], counts: dict[int, int] | None = None, shuffle: int = 0) -> dict[int, int]:
    """Replica pod → master pod for every pod that is not a master, in pod order."""
    on = {m: nodes[m] for m in masters}
    counts = dict(counts or dict.fromkeys(masters, 0))
    unjoined = [(p, nodes[p]) for p in range(len(nodes)) if p not in on]
    result = {}
    for i, (pod, _) in enumerate(unjoined):
        master = place(on, counts, unjoined[i:], shuffle + i)
        counts[master] += 1
        result[pod] = master
    return result


def first_on_distinct_nodes(nodes: list[str], count: int) -> list[int]:
    """bootstrap.sh's masters: the first pods on distinct nodes, then (if nodes run out) in order."""
    picked: list[int] = []
    for i, node in enumerate(nodes):
        if len(picked) < count and node not in {nodes[p] for p in picked}:
            picked.append(i)
    picked += [i for i in range(len(nodes)) if i not in picked][: count - len(picked)]
    return sorted(picked)


def off_node_placement_exists(nodes: list[str], masters: list[int]) -> bool:
    replicas = [p for p in range(len(nodes)) if p not in masters]
    return any(all(nodes[r] != nodes[m] for r, m in zip(replicas, perm, strict=True)) for perm in itertools.permutations(masters))


def layouts(pods: int):
    """Every way to put `pods` pods on nodes, up to renaming the nodes (set partitions)."""

    def extend(prefix: list[int]):
        if len(prefix) == pods:
            yield [f"w{n + 1}" for n in prefix]
            return
        for n in range(max(prefix, default=-1) + 2):
            yield from extend([*prefix, n])

    yield from extend([])


# --- the worked examples ---------------------------------------------------------------------
def test_round_robin_over_three_nodes_gives_every_master_a_replica_on_another_node():
    nodes = ["w1", "w2", "w3", "w1", "w2", "w3"]
    result = plan(nodes, [0, 1, 2])
    # A greedy by replica count alone gives 3→1, 4→0 and leaves 5 only master 2, on its own node.
    assert result == {3: 1, 4: 2, 5: 0}
    assert all(nodes[r] != nodes[m] for r, m in result.items())


def test_without_a_node_map_pod_i_plus_three_replicates_pod_i():
    """Every pod its own node: what a bootstrap that ignores nodes does (broken-colocated relies on it)."""
    nodes = [f"redis-cluster-{i}" for i in range(6)]
    assert plan(nodes, [0, 1, 2]) == {3: 0, 4: 1, 5: 2}


def test_four_nodes():
    nodes = ["a", "b", "c", "d", "a", "b"]
    result = plan(nodes, [0, 1, 2])
    assert result == {3: 0, 4: 1, 5: 2}
    nodes = ["a", "b", "c", "a", "a", "d"]
    result = plan(nodes, [0, 1, 2])
    assert sorted(result.values()) == [0, 1, 2] and all(nodes[r] != nodes[m] for r, m in result.items())


def test_no_feasible_placement_falls_back_to_the_fewest_replicas():
    # Every pod on one node: nothing can be kept apart; replicas stay balanced, by ordinal.
    assert plan(["w1"] * 6, [0, 1, 2]) == {3: 0, 4: 1, 5: 2}
    # Three replicas on w1 and two masters elsewhere: one replica must share w1 with master
    # 0, and it goes there rather than to a master that has a replica already.
    nodes = ["w1", "w2", "w3", "w1", "w1", "w1"]
    result = plan(nodes, [0, 1, 2])
    assert sorted(result.values()) == [0, 1, 2]
    assert sum(nodes[r] == nodes[m] for r, m in result.items()) == 1


def test_a_repair_adds_the_lost_replica_to_the_master_that_has_none():
    nodes = ["w1", "w2", "w3", "w1", "w2", "w3"]
    on = {0: "w1", 1: "w2", 2: "w3"}
    assert place(on, {0: 0, 1: 1, 2: 1}, [(3, "w1")]) == 0  # on its own node, but the only one without a replica
    assert place(on, {0: 1, 1: 0, 2: 1}, [(5, nodes[5])]) == 1


# --- properties --------------------------------------------------------------------------------
def test_every_layout_of_six_pods_gets_an_off_node_placement_when_one_exists():
    for nodes in layouts(6):
        masters = first_on_distinct_nodes(nodes, 3)
        result = plan(nodes, masters)
        assert sorted(result.values()) == masters, nodes
        if off_node_placement_exists(nodes, masters):
            assert all(nodes[r] != nodes[m] for r, m in result.items()), (nodes, result)


@pytest.mark.parametrize("masters", [4, 5])
def test_more_masters_get_an_off_node_placement_when_one_exists(masters):
    rng = random.Random(masters)
    for _ in range(60):
        nodes = [f"n{rng.randrange(rng.randint(2, 5))}" for _ in range(2 * masters)]
        chosen = first_on_distinct_nodes(nodes, masters)
        result = plan(nodes, chosen)
        assert sorted(result.values()) == chosen, nodes
        if off_node_placement_exists(nodes, chosen):
            assert all(nodes[r] != nodes[m] for r, m in result.items()), (nodes, result)


def test_the_choice_does_not_depend_on_the_order_masters_are_listed_in():
    for nodes in (["w1", "w2", "w3", "w1", "w2", "w3"], ["a", "b", "c", "a", "a", "d"], ["w1"] * 6):
        assert len({tuple(plan(nodes, [0, 1, 2], shuffle=s).items()) for s in range(6)}) == 1


def test_no_master_means_no_answer_and_a_bad_line_is_an_error():
    empty = subprocess.run([AWK, "-f", str(PLACE)], input="pod redis-cluster-3 w1\n", capture_output=True, text=True)
    assert (empty.returncode, empty.stdout) == (0, "")
    bad = subprocess.run([AWK, "-f", str(PLACE)], input="slave x y\n", capture_output=True, text=True)
    assert bad.returncode == 2 and "not understood" in bad.stderr


def test_bootstrap_calls_the_placement_next_to_itself_and_the_config_map_carries_both():
    assert 'awk -f "$(dirname "$0")/place-replica.awk"' in (REDIS_DIR / "bootstrap.sh").read_text()
    config = reference.render("kind").find_prefixed("ConfigMap", "redis-config")
    assert {"bootstrap.sh", "place-replica.awk", "node-map.sh"} <= set(config["data"])


# --- node-map.sh -------------------------------------------------------------------------------
SELECTOR = "app.kubernetes.io/name=redis-cluster,app.kubernetes.io/component=server"
JSONPATH = '{range .items[*]}{.metadata.name}{" "}{.spec.nodeName}{"\\n"}{end}'


@pytest.fixture
def fake_kubectl(tmp_path):
    """A kubectl on PATH that answers node-map.sh's one call from the files answers/1, 2, ...
    (the last one repeats) and fails on any other call."""
    bin_dir, answers = tmp_path / "bin", tmp_path / "answers"
    bin_dir.mkdir()
    answers.mkdir()
    script = bin_dir / "kubectl"
    script.write_text(
        textwrap.dedent(f"""\
        #!/bin/sh
        expected='get pods -n redis -l {SELECTOR} -o jsonpath={JSONPATH}'
        [ "$*" = "$expected" ] || {{ echo "unexpected call: $*" >&2; exit 3; }}
        n=$(( $(cat {answers}/calls 2>/dev/null || echo 0) + 1 ))
        echo "$n" > {answers}/calls
        while [ "$n" -gt 1 ] && [ ! -e {answers}/$n ]; do n=$((n - 1)); done
        cat {answers}/$n
        """)
    )
    script.chmod(0o755)
    return bin_dir, answers


def run_node_map(bin_dir: Path, out: Path, timeout: int = 30) -> subprocess.CompletedProcess:
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "POD_NAMESPACE": "redis",
        "REDIS_NODE_MAP_FILE": str(out),
        "BOOTSTRAP_TIMEOUT_SECONDS": str(timeout),
    }
    return subprocess.run(["/bin/sh", str(NODE_MAP)], env=env, capture_output=True, text=True, timeout=60)


def test_node_map_waits_until_every_pod_is_scheduled(fake_kubectl, tmp_path):
    bin_dir, answers = fake_kubectl
    # First the StatefulSet is half created, then pod 5 is not scheduled yet, then all are.
    (answers / "1").write_text("redis-cluster-0 w1\nredis-cluster-1 w2\nredis-cluster-2 w3\n")
    (answers / "2").write_text("".join(f"redis-cluster-{i} w{i % 3 + 1}\n" for i in range(5)) + "redis-cluster-5 \n")
    (answers / "3").write_text("".join(f"redis-cluster-{i} w{i % 3 + 1}\n" for i in (5, 4, 3, 2, 1, 0)) + "other-pod w9\n")
    out = tmp_path / "node-map"
    proc = run_node_map(bin_dir, out)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text() == "".join(f"redis-cluster-{i} w{i % 3 + 1}\n" for i in range(6))
    assert "not yet scheduled: redis-cluster-3 redis-cluster-4 redis-cluster-5" in proc.stderr
    assert "wrote" in proc.stderr and sorted(p.name for p in tmp_path.iterdir()) == ["answers", "bin", "node-map"]


def test_node_map_gives_up_after_the_timeout_and_says_why(fake_kubectl, tmp_path):
    bin_dir, answers = fake_kubectl
    (answers / "1").write_text("redis-cluster-0 w1\n")
    out = tmp_path / "node-map"
    proc = run_node_map(bin_dir, out, timeout=1)
    assert proc.returncode == 1 and not out.exists()
    assert "node-map: gave up after 1s: not yet scheduled: redis-cluster-1" in proc.stderr
