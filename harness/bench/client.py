"""What the load client knows of Redis Cluster: where and how to connect (Target), RESP
encoding, key slots, and the slot map from CLUSTER SLOTS. The connections are the
driver's (harness/bench/driver.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

import hiredis
from redis.crc import key_slot

from harness.errors import HarnessError

SLOTS = 16384
RECV_BYTES = 1 << 17


class BenchClientError(HarnessError):
    """The load client could not reach or understand the cluster."""


def encode(*parts: bytes | str | int) -> bytes:
    """One command in RESP."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        data = part if isinstance(part, bytes) else str(part).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def slot_of(key: str) -> int:
    return key_slot(key.encode())


@dataclass(frozen=True)
class Target:
    """Where and how to connect: seed addresses, TLS files, ACL user. Plain data, so it crosses process boundaries."""

    seeds: list[tuple[str, int]]
    user: str
    password: str = field(repr=False)
    ca: str | None = None
    cert: str | None = None
    key: str | None = None

    @classmethod
    def from_platform(cls, platform, user: str = "app") -> Target:
        creds = platform.credentials()
        tls = creds.tls
        return cls(
            seeds=[(p.address, p.port) for p in platform.pods() if p.running],
            user=user,
            password=creds.password(user),
            ca=str(tls.ca) if tls else None,
            cert=str(tls.cert) if tls else None,
            key=str(tls.key) if tls else None,
        )


def fetch_slot_map(conn) -> tuple[list[tuple[str, int]], list[int], list[list[int]]]:
    """(nodes, master node index per slot, replica node indices per master index) from CLUSTER SLOTS
    on `conn` (anything with sock.sendall and a blocking read(count), such as a driver Wire)."""
    conn.sock.sendall(encode("CLUSTER", "SLOTS"))
    (reply,) = conn.read(1)
    if isinstance(reply, hiredis.ReplyError):
        raise BenchClientError(f"CLUSTER SLOTS failed: {reply}")
    nodes: list[tuple[str, int]] = []
    index: dict[tuple[str, int], int] = {}
    owner = [-1] * SLOTS
    replicas: dict[int, list[int]] = {}

    def node(entry) -> int:
        address = (entry[0].decode(), int(entry[1]))
        if address not in index:
            index[address] = len(nodes)
            nodes.append(address)
        return index[address]

    for start, end, master, *reps in reply:
        m = node(master)
        replicas.setdefault(m, [])
        for r in reps:
            if node(r) not in replicas[m]:
                replicas[m].append(node(r))
        for slot in range(start, end + 1):
            owner[slot] = m
    if -1 in owner:
        raise BenchClientError(f"the cluster does not serve slot {owner.index(-1)}: is it healthy?")
    return nodes, owner, [replicas.get(i, []) for i in range(len(nodes))]
