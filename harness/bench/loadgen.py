"""The load a single user generates: a workload's pre-built commands replayed in batches
of `pipeline` operations through a ClusterClient. Knows nothing of Locust, so it can be
timed on its own and used to prefill the key space."""

from __future__ import annotations

import hiredis
import numpy as np

from harness.bench.client import ClusterClient, encode, is_moved, slot_of
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


class UserLoad:
    """One user's batches: build, group by node, send, read, classify."""

    def __init__(self, commands: Commands, client: ClusterClient, user: int):
        self.client = client
        self.pipeline = commands.workload.pipeline
        self.sequence = commands.shared_sequence()
        self.position = (user * 7919) % len(self.sequence)

    def batch(self) -> tuple[list[str], list[tuple[str, str]]]:
        """Run one batch; returns (names of operations that succeeded, [(name, error)] of those that did not)."""
        seq, n = self.sequence, len(self.sequence)
        write_node, read_node = self.client.write_node, self.client.read_node
        groups: dict[int, list[bytes]] = {}
        names: dict[int, list[str]] = {}
        items: dict[int, list] = {}
        pos = self.position
        for _ in range(self.pipeline):
            item = seq[pos]
            pos += 1
            if pos == n:
                pos = 0
            name, slot, read, cmd, value = item
            node = read_node[slot] if read else write_node[slot]
            if value is not None:
                cmd = cmd + value
            group = groups.get(node)
            if group is None:
                groups[node] = group = []
                names[node] = []
                items[node] = []
            group.append(cmd)
            names[node].append(name)
            items[node].append(item)
        self.position = pos
        replies = self.client.execute_grouped(groups)
        ok: list[str] = []
        failed: list[tuple[str, str]] = []
        retry: list = []
        for node, node_replies in replies.items():
            node_names = names[node]
            if not any(type(r) is hiredis.ReplyError for r in node_replies):
                ok.extend(node_names)
                continue
            for name, reply, item in zip(node_names, node_replies, items[node], strict=True):
                if type(reply) is not hiredis.ReplyError:
                    ok.append(name)
                elif is_moved(reply):
                    retry.append(item)
                else:
                    failed.append((name, str(reply)))
        if retry:
            ok2, failed2 = self._after_moved(retry)
            ok.extend(ok2)
            failed.extend(failed2)
        return ok, failed

    def _after_moved(self, items: list) -> tuple[list[str], list[tuple[str, str]]]:
        """The slot map changed: reload it and send the moved operations once more."""
        self.client.moved += len(items)
        self.client.refresh()
        groups: dict[int, list[bytes]] = {}
        order: dict[int, list[str]] = {}
        for name, slot, read, cmd, value in items:
            node = (self.client.read_node if read else self.client.write_node)[slot]
            groups.setdefault(node, []).append(cmd + value if value is not None else cmd)
            order.setdefault(node, []).append(name)
        ok, failed = [], []
        for node, replies in self.client.execute_grouped(groups).items():
            for name, reply in zip(order[node], replies, strict=True):
                if type(reply) is hiredis.ReplyError:
                    failed.append((name, str(reply)))
                else:
                    ok.append(name)
        return ok, failed


def prefill(commands: Commands, client: ClusterClient, batch: int = 512) -> int:
    """SET every key once, so reads hit; returns the number of keys written."""
    workload = commands.workload
    groups: dict[int, list[bytes]] = {}
    written = 0
    suffix = commands.ttl_suffix
    for k in range(workload.keys):
        node = client.write_node[commands.slots[k]]
        groups.setdefault(node, []).append(commands.by_op["set"][k] + commands.values[k % len(commands.values)] + suffix)
        written += 1
        if written % batch == 0 or k == workload.keys - 1:
            for replies in client.execute_grouped(groups).values():
                errors = [r for r in replies if type(r) is hiredis.ReplyError]
                if errors:
                    from harness.bench.client import BenchClientError

                    raise BenchClientError(f"prefilling the key space failed: {errors[0]}")
            groups = {}
    return written
