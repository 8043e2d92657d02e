"""What load processes send: a workload's commands, encoded once per process, as a
sequence every user replays (node-local runs of `pipeline`), and the prefill of the key
space. Knows nothing of Locust."""

from __future__ import annotations

import hiredis
import numpy as np

from harness.bench.client import BenchClientError, Target, encode, slot_of
from harness.bench.driver import Wire, slot_map, tls_context
from harness.bench.workload import READS, SEQUENCE_LENGTH, Workload


class Commands:
    """Every key's encoded commands, built once per process and shared by its users."""

    def __init__(self, workload: Workload, seed: int = 7):
        self.workload = workload
        rng = np.random.default_rng(seed)
        self.values = [b"$%d\r\n%s\r\n" % (len(v), v) for v in workload.values(rng)]
        ttl = encode("EX", workload.ttl_seconds)[4:] if workload.ttl_seconds else b""  # the two arguments, no header
        set_header = b"*5\r\n$3\r\nSET\r\n" if ttl else b"*3\r\n$3\r\nSET\r\n"
        self.ttl_suffix = ttl
        keys = [workload.key(i).encode() for i in range(workload.keys)]
        self.slots = [slot_of(k.decode()) for k in keys]
        args = [b"$%d\r\n%s\r\n" % (len(k), k) for k in keys]
        self.by_op: dict[str, list[bytes]] = {
            "get": [b"*2\r\n$3\r\nGET\r\n" + a for a in args],
            "exists": [b"*2\r\n$6\r\nEXISTS\r\n" + a for a in args],
            "del": [b"*2\r\n$3\r\nDEL\r\n" + a for a in args],
            "set": [set_header + a for a in args],
        }
        if workload.mix.get("incr", 0) > 0:
            counters = [workload.counter_key(i) for i in range(workload.keys)]
            self.counter_slots = [slot_of(k) for k in counters]
            self.by_op["incr"] = [encode("INCR", k) for k in counters]

    def shared_sequence(self) -> list[tuple[str, int, bool, bytes, bytes | None]]:
        """One sequence per process, users replaying it from different offsets: building one per user
        would block the event loop while users start, and open-loop schedules would start late."""
        if not hasattr(self, "_shared"):
            self._shared = self.sequence(0)
        return self._shared

    def sequence(self, user: int) -> list[tuple[str, int, bool, bytes, bytes | None]]:
        """The user's operations: (name, slot, is read, command or SET prefix, value or None)."""
        rng = np.random.default_rng([self.workload.keys, user])
        ops = self.workload.operations(rng, SEQUENCE_LENGTH)
        keys = self.workload.key_indices(rng, SEQUENCE_LENGTH).tolist()
        values = rng.integers(0, len(self.values), size=SEQUENCE_LENGTH).tolist()
        seq = []
        for op, k, v in zip(ops, keys, values, strict=True):
            slot = self.counter_slots[k] if op == "incr" else self.slots[k]
            if op == "set":
                seq.append((op.upper(), slot, False, self.by_op[op][k], self.values[v] + self.ttl_suffix))
            else:
                seq.append((op.upper(), slot, op in READS, self.by_op[op][k], None))
        return seq


def prefill(commands: Commands, target: Target, batch: int = 512) -> int:
    """SET every key once, so reads hit; returns the number of keys written."""
    context = tls_context(target)
    nodes, write_node, _replicas = slot_map(target, context)
    wires: dict[int, Wire] = {}
    workload = commands.workload
    groups: dict[int, list[bytes]] = {}
    suffix = commands.ttl_suffix
    try:
        for k in range(workload.keys):
            node = write_node[commands.slots[k]]
            groups.setdefault(node, []).append(commands.by_op["set"][k] + commands.values[k % len(commands.values)] + suffix)
            if (k + 1) % batch == 0 or k == workload.keys - 1:
                for node, group in groups.items():
                    if node not in wires:
                        wires[node] = Wire(nodes[node], target, context, readonly=False)
                    wires[node].sock.sendall(b"".join(group))
                    errors = [r for r in wires[node].read(len(group)) if type(r) is hiredis.ReplyError]
                    if errors:
                        raise BenchClientError(f"prefilling the key space failed: {errors[0]}")
                groups = {}
    finally:
        for wire in wires.values():
            wire.close()
    return workload.keys
