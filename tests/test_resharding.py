"""The rebalance plan (harness/resharding.py): pure logic, on synthetic slot maps. The moves
themselves run live in the sharding suite's scale-out test."""

from __future__ import annotations

import random

import pytest

from harness.errors import HarnessError
from harness.resharding import Move, plan, quotas
from harness.topology import SLOTS


def even_thirds() -> dict[str, list[int]]:
    return {"a": list(range(0, 5461)), "b": list(range(5461, 10923)), "c": list(range(10923, SLOTS))}


def applied(owned: dict[str, list[int]], moves: list[Move]) -> dict[str, set[int]]:
    after = {node: set(slots) for node, slots in owned.items()}
    for move in moves:
        assert set(move.slots) <= after[move.source], f"{move.source} gives slots it does not own"
        after[move.source] -= set(move.slots)
        after[move.target] |= set(move.slots)
    return after


def test_quotas_follow_the_weights_and_keep_the_total():
    assert quotas({"a": 5461, "b": 5462, "c": 5461, "d": 0}, {}) == {"a": 4096, "b": 4096, "c": 4096, "d": 4096}
    assert quotas({"a": 4096, "b": 4096, "c": 4096, "d": 4096}, {"d": 0}) == {"a": 5462, "b": 5461, "c": 5461, "d": 0}
    assert quotas({"a": 10, "b": 0}, {"a": 1, "b": 4}) == {"a": 2, "b": 8}


@pytest.mark.parametrize("weights", [{"a": 0, "b": 0, "c": 0}, {"a": -1}])
def test_quotas_refuse_weights_that_place_no_slot(weights):
    with pytest.raises(HarnessError, match="weights"):
        quotas({"a": 1, "b": 1, "c": 1}, weights)


def test_scaling_out_fills_the_empty_master_from_every_donor():
    owned = {**even_thirds(), "d": []}
    moves = plan(owned)
    after = applied(owned, moves)
    assert {node: len(slots) for node, slots in after.items()} == {"a": 4096, "b": 4096, "c": 4096, "d": 4096}
    assert {m.target for m in moves} == {"d"} and {m.source for m in moves} == {"a", "b", "c"}
    # Each donor gives its highest slots: what stays is one range, as before.
    assert after["a"] == set(range(0, 4096))


def test_a_zero_weight_empties_the_master_evenly_over_the_rest():
    owned = {"a": list(range(0, 4096)), "b": list(range(4096, 8192)), "c": list(range(8192, 12288)), "d": list(range(12288, SLOTS))}
    after = applied(owned, plan(owned, {"d": 0}))
    assert after["d"] == set()
    assert sorted(len(s) for s in after.values()) == [0, 5461, 5461, 5462]


def test_a_balanced_cluster_needs_no_move():
    assert plan(even_thirds()) == []


def test_every_plan_reaches_its_quotas_without_moving_a_slot_twice():
    rng = random.Random(7)
    for _ in range(200):
        nodes = [f"n{i}" for i in range(rng.randint(1, 7))]
        slots = list(range(SLOTS))
        rng.shuffle(slots)
        cuts = sorted(rng.sample(range(SLOTS + 1), len(nodes) - 1))
        owned = {n: sorted(slots[a:b]) for n, a, b in zip(nodes, [0, *cuts], [*cuts, SLOTS], strict=True)}
        weights = {n: rng.choice([0, 1, 1, 2, 3]) for n in nodes}
        if not any(weights.values()):
            weights[nodes[0]] = 1
        moves = plan(owned, weights)
        moved = [s for m in moves for s in m.slots]
        assert len(moved) == len(set(moved)), "a slot moved twice"
        assert all(m.source != m.target and m.slots for m in moves)
        after = applied(owned, moves)
        assert {n: len(s) for n, s in after.items()} == quotas({n: len(s) for n, s in owned.items()}, weights)
        assert set().union(*after.values()) == set(range(SLOTS))
