"""A lean Redis Cluster client for load generation: raw TLS sockets, the hiredis parser,
the slot map fetched once (CLUSTER SLOTS) and refreshed on MOVED, one connection per node.

A batch of pre-encoded commands is grouped by node, written with one send per node and
read back in order. Under gevent's monkey-patching the sockets (and TLS) are cooperative.
"""

from __future__ import annotations

import socket
import ssl
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

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.ca:
            return None
        ctx = ssl.create_default_context(cafile=self.ca)
        ctx.check_hostname = False  # nodes are reached by announced IPs; see harness/clients.py
        if self.cert:
            ctx.load_cert_chain(self.cert, self.key)
        return ctx


class Connection:
    """One socket to one node, authenticated; `readonly` for reads from a replica."""

    def __init__(self, address: tuple[str, int], target: Target, context: ssl.SSLContext | None, readonly: bool, timeout: float):
        self.address = address
        raw = socket.create_connection(address, timeout=timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = context.wrap_socket(raw) if context else raw
        self.reader = hiredis.Reader()
        hello = [encode("AUTH", target.user, target.password)] + ([encode("READONLY")] if readonly else [])
        self.sock.sendall(b"".join(hello))
        for reply in self.read(len(hello)):
            if isinstance(reply, hiredis.ReplyError):
                raise BenchClientError(f"node {address[0]}:{address[1]} refused the load client: {reply}")

    def read(self, count: int) -> list:
        """`count` replies; errors come back as hiredis.ReplyError values, not raised."""
        replies = []
        gets, feed, recv = self.reader.gets, self.reader.feed, self.sock.recv
        while len(replies) < count:
            reply = gets()
            if reply is False:
                data = recv(RECV_BYTES)
                if not data:
                    raise ConnectionError(f"{self.address[0]}:{self.address[1]} closed the connection")
                feed(data)
            else:
                replies.append(reply)
        return replies

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def fetch_slot_map(conn: Connection) -> tuple[list[tuple[str, int]], list[int], list[list[int]]]:
    """(nodes, master node index per slot, replica node indices per master index) from CLUSTER SLOTS."""
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


class ClusterClient:
    """One connection per master (and per replica when reads go to replicas)."""

    def __init__(self, target: Target, read_from_replicas: bool = False, timeout: float = 5.0, spread: int = 0):
        self.target = target
        self.read_from_replicas = read_from_replicas
        self.timeout = timeout
        self.spread = spread  # which replica a client reads from, so clients share the replicas out
        self.context = target.ssl_context()
        self.connections: dict[int, Connection] = {}
        self.moved = 0
        self.refresh()

    def _seed(self) -> Connection:
        errors = []
        for address in self.target.seeds:
            try:
                return Connection(address, self.target, self.context, False, self.timeout)
            except (OSError, BenchClientError) as exc:
                errors.append(f"{address[0]}: {exc}")
        raise BenchClientError(f"no seed node answered ({'; '.join(errors) or 'no seeds'})")

    def refresh(self) -> None:
        """Reload the slot map and reconnect where it changed."""
        seed = self._seed()
        try:
            nodes, owner, replicas = fetch_slot_map(seed)
        finally:
            seed.close()
        old = {c.address: c for c in self.connections.values()}
        self.nodes = nodes
        self.write_node = owner
        if self.read_from_replicas:
            read_for = [reps[self.spread % len(reps)] if reps else m for m, reps in enumerate(replicas)]
            self.read_node = [read_for[m] for m in owner]
        else:
            self.read_node = owner
        wanted = set(owner) | set(self.read_node)
        self.connections = {}
        for i in wanted:
            readonly = i not in set(owner)
            conn = old.pop(nodes[i], None)
            self.connections[i] = (
                conn if conn is not None else Connection(nodes[i], self.target, self.context, readonly, self.timeout)
            )
        for conn in old.values():
            conn.close()

    def execute_grouped(self, groups: dict[int, list[bytes]]) -> dict[int, list]:
        """Send each node's commands in one write, then read each node's replies."""
        conns = self.connections
        for node, commands in groups.items():
            conns[node].sock.sendall(b"".join(commands))
        return {node: conns[node].read(len(commands)) for node, commands in groups.items()}

    def close(self) -> None:
        for conn in self.connections.values():
            conn.close()
        self.connections = {}
