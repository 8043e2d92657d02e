"""Slots moved between masters in batches: a rebalance over the masters by weight, as
`redis-cli --cluster rebalance [--cluster-use-empty-masters] [--cluster-weight id=w]` plans it.

Why not redis-cli itself: Redis writes nodes.conf, with an fsync, at the end of any event-loop
turn in which the cluster configuration changed, before it replies. redis-cli sends one
CLUSTER SETSLOT at a time and waits for each: about six fsyncs per slot (4 ms a slot idle here,
10 ms under the gate's load; a quarter of the slots moved took 40 s). A pipelined batch of
SETSLOTs costs one fsync per node per step instead (0.2 ms a slot idle).

Every slot goes through the states the cluster specification gives, in its order: IMPORTING on
the target, MIGRATING on the source, its keys MIGRATEd until GETKEYSINSLOT finds none, then
SETSLOT NODE on the target, the source and the other masters. Clients meanwhile follow ASK and
MOVED as during redis-cli's moves; a batch only keeps its slots in those states longer."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from harness.errors import HarnessError
from harness.observe import snapshot
from harness.platforms.base import Platform
from harness.topology import SLOTS

BATCH = 256  # slots a step carries: one fsync per node and step
KEYS_PER_MIGRATE = 100  # as redis-cli --cluster-pipeline 100
MIGRATE_TIMEOUT_MS = 60_000  # redis-cli's --cluster-timeout default
MIGRATE_ROUNDS = 10_000  # a slot still holding keys after this many rounds is a fault, not a backlog


@dataclass(frozen=True)
class Move:
    source: str  # node ids
    target: str
    slots: tuple[int, ...]


@dataclass
class Resharded:
    moves: list[Move] = field(default_factory=list)
    keys: int = 0
    seconds: float = 0.0

    @property
    def slots(self) -> int:
        return sum(len(m.slots) for m in self.moves)


def quotas(owned: dict[str, int], weights: dict[str, float]) -> dict[str, int]:
    """Slots each master should own: in proportion to its weight (1 unless given), the remainder
    to the largest fractions (on a tie, to the master owning more: fewer moves); the total stays
    what they own now."""
    total = sum(owned.values())
    weight = {node: float(weights.get(node, 1.0)) for node in owned}
    if any(w < 0 for w in weight.values()) or not sum(weight.values()):
        raise HarnessError(f"rebalance weights must be non-negative and not all zero: {weights}")
    share = {node: total * w / sum(weight.values()) for node, w in weight.items()}
    quota = {node: int(s) for node, s in share.items()}
    by_fraction = sorted(owned, key=lambda node: (quota[node] - share[node], -owned[node]))
    for node in by_fraction[: total - sum(quota.values())]:
        quota[node] += 1
    return quota


def plan(owned: dict[str, list[int]], weights: dict[str, float] | None = None) -> list[Move]:
    """The moves that bring every master (node id → the slots it owns, empty ones included) to its
    quota: each donor gives its highest slots, receivers fill up in the masters' order."""
    quota = quotas({node: len(slots) for node, slots in owned.items()}, weights or {})
    giving = [(node, sorted(owned[node])[quota[node] :]) for node in owned if len(owned[node]) > quota[node]]
    wanting = [[node, quota[node] - len(owned[node])] for node in owned if len(owned[node]) < quota[node]]
    moves: list[Move] = []
    for source, spare in giving:
        while spare:
            target = wanting[0]
            take, spare = spare[: target[1]], spare[target[1] :]
            moves.append(Move(source, target[0], tuple(take)))
            target[1] -= len(take)
            if not target[1]:
                wanting.pop(0)
    return moves


def masters(platform: Platform) -> dict[str, tuple[str, list[int]]]:
    """Node id → (pod, the slots it serves) for every pod that is a master by its own account (a
    node just made a replica may still look like an empty master to the others), in pod order."""
    found = {}
    for state in snapshot(platform):
        me = state.myself() if state.error is None else None
        if me is not None and me.is_master:
            found[me.id] = (state.pod, [s for a, b in me.slots for s in range(a, b + 1)])
    served = [s for _, slots in found.values() for s in slots]
    if len(served) != SLOTS or len(set(served)) != SLOTS:
        raise HarnessError(f"the masters serve {len(set(served))} of {SLOTS} slots ({len(served)} claims): fix the cluster first")
    return dict(sorted(found.items(), key=lambda item: item[1][0]))


def rebalance(platform: Platform, weights: dict[str, float] | None = None, batch: int = BATCH) -> Resharded:
    """Spread the slots over the masters by weight (pod name → weight, 1 unless given; 0 empties a
    master) and return what moved."""
    found = masters(platform)
    by_pod = {pod: node for node, (pod, _) in found.items()}
    unknown = sorted(set(weights or {}) - set(by_pod))
    if unknown:
        raise HarnessError(f"cannot weigh {', '.join(unknown)}: not a master of the cluster")
    moves = plan({node: slots for node, (_, slots) in found.items()}, {by_pod[p]: w for p, w in (weights or {}).items()})
    done = Resharded()
    left = {node: len(slots) for node, (_, slots) in found.items()}
    started = time.monotonic()
    clients = {node: platform.node_client(pod) for node, (pod, _) in found.items()}
    try:
        password = platform.credentials().password("admin")
        for move in moves:
            target = platform.pod(found[move.target][0])
            for i in range(0, len(move.slots), batch):
                part = move.slots[i : i + batch]
                left[move.source] -= len(part)
                emptied = {node for node, n in left.items() if not n}
                done.keys += _move(clients, move.source, move.target, part, (target.address, target.port), password, emptied)
                done.moves.append(Move(move.source, move.target, part))
    finally:
        for client in clients.values():
            client.close()
    done.seconds = time.monotonic() - started
    return done


def _pipelined(client, *commands: tuple, strict: bool = True) -> list:
    """The replies in order; the first error raised, unless not strict (errors are then replies)."""
    pipe = client.pipeline(transaction=False)
    for command in commands:
        pipe.execute_command(*command)
    return pipe.execute(raise_on_error=strict)


def _move(
    clients: dict, source: str, target: str, slots: tuple[int, ...], at: tuple[str, int], password: str, emptied: set[str]
) -> int:
    """One batch from source to target; returns the keys it migrated. `emptied`: masters left
    without a slot, this batch's source included when it gives its last ones."""
    _pipelined(clients[target], *(("CLUSTER", "SETSLOT", s, "IMPORTING", source) for s in slots))
    _pipelined(clients[source], *(("CLUSTER", "SETSLOT", s, "MIGRATING", target) for s in slots))
    moved, left = 0, list(slots)
    for _ in range(MIGRATE_ROUNDS):
        found = _pipelined(clients[source], *(("CLUSTER", "GETKEYSINSLOT", s, KEYS_PER_MIGRATE) for s in left))
        batches = [keys for keys in found if keys]
        left = [s for s, keys in zip(left, found, strict=True) if keys]
        if not left:
            break
        _pipelined(
            clients[source],
            *(("MIGRATE", *at, "", 0, MIGRATE_TIMEOUT_MS, "AUTH2", "admin", password, "KEYS", *keys) for keys in batches),
        )
        moved += sum(len(keys) for keys in batches)
    else:
        raise HarnessError(f"slots {left[:5]}… still hold keys after {MIGRATE_ROUNDS} rounds of MIGRATE")
    # The target first: once it owns the slots, the source's MOVED points where they are served.
    # A master that has just given away its last slot turns replica of the taker by itself (Redis
    # 7's cluster-allow-replica-migration) and then refuses SETSLOT, as redis-cli tolerates too.
    order = [target, source, *(node for node in clients if node not in (source, target))]
    for node in order:
        replies = _pipelined(clients[node], *(("CLUSTER", "SETSLOT", s, "NODE", target) for s in slots), strict=False)
        refused = next((r for r in replies if isinstance(r, Exception)), None)
        if refused is not None and not (node in emptied and "only with masters" in str(refused)):
            raise HarnessError(f"CLUSTER SETSLOT NODE on {node}: {refused}")
    return moved
