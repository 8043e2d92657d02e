"""The load engine of one load process: every user's connections in one epoll loop on
plain (not gevent's) TLS sockets, the way redis-benchmark drives its clients.

gevent's cooperative sockets cost tens of microseconds per round trip in Python; here a
reply costs one recv, one hiredis feed and a few `gets`. The loop hands control back to
gevent every few milliseconds, so Locust's own greenlets (heartbeats, statistics) run.

A user has one connection per node it sends to and one batch in flight. Batches are
node-local runs of the pre-built sequence (node_local), so a pipeline of P
commands travels on one connection, as with redis-benchmark --cluster -P. Closed loop:
a user sends its next batch when the last one completes. Open loop: at its intended start;
a batch that could not start on time still counts its latency from then.
"""

from __future__ import annotations

import _ssl  # the C layer: gevent's patching leaves ssl.py's classes unusable unpatched
import heapq
import socket as _stdlib_socket  # constants only
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import hiredis
from gevent import monkey

from harness.bench.client import RECV_BYTES, BenchClientError, Target, encode, fetch_slot_map
from harness.bench.schedule import OpenLoopSchedule

# The originals, not gevent's cooperative replacements (module-level helpers such as
# socket.create_connection would build gevent objects again: their globals are patched).
_Socket = monkey.get_original("socket", "socket")
_epoll = monkey.get_original("select", "epoll")
_select = monkey.get_original("select", "select")
_EPOLLIN = monkey.get_original("select", "EPOLLIN")


def _connect(address: tuple[str, int], timeout: float) -> object:
    sock = _Socket(_stdlib_socket.AF_INET, _stdlib_socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.setsockopt(_stdlib_socket.IPPROTO_TCP, _stdlib_socket.TCP_NODELAY, 1)
    try:
        sock.connect(address)
    except OSError:
        sock.close()
        raise
    return sock


def tls_context(target: Target):
    """The cluster's CA and the client certificate; the peer is verified, by CA not name
    (nodes are reached by their announced IPs)."""
    if not target.ca:
        return None
    context = _ssl._SSLContext(_ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED
    context.check_hostname = False
    context.load_verify_locations(target.ca)
    if target.cert:
        context.load_cert_chain(target.cert, target.key)
    return context


class Stream:
    """A blocking byte stream to a node: TLS over a plain socket, or the socket itself."""

    __slots__ = ("raw", "tls", "fd")

    def __init__(self, address: tuple[str, int], context, timeout: float):
        self.raw = _connect(address, timeout)
        self.fd = self.raw.fileno()
        self.tls = None
        if context is not None:
            self.tls = context._wrap_socket(self.raw, False, None)
            self.tls.do_handshake()

    def sendall(self, data: bytes) -> None:
        if self.tls is None:
            self.raw.sendall(data)
            return
        view = memoryview(data)
        while view:
            view = view[self.tls.write(view) :]

    def recv(self, size: int) -> bytes:
        if self.tls is None:
            return self.raw.recv(size)
        data = self.tls.read(size)
        while self.tls.pending():  # decrypted bytes already here: take them in the same call
            data += self.tls.read(size)
        return data

    def close(self) -> None:
        try:
            self.raw.close()
        except OSError:
            pass


def node_local(sequence: list[tuple], write_node: list[int], pipeline: int) -> list[tuple]:
    """The same operations reordered into runs of `pipeline` that go to one node (reads and
    writes of a master's slots kept apart, as reads may go to its replica). Each run keeps
    the sequence's order; the key distribution is unchanged."""
    if pipeline <= 1:
        return list(sequence)
    buckets: dict[tuple[int, bool], list[tuple]] = {}
    out: list[tuple] = []
    for item in sequence:
        route = (write_node[item[1]], item[2])
        bucket = buckets.setdefault(route, [])
        bucket.append(item)
        if len(bucket) == pipeline:
            out.extend(bucket)
            bucket.clear()
    for bucket in buckets.values():
        out.extend(bucket)
    return out


def slot_map(target: Target, context) -> tuple[list[tuple[str, int]], list[int], list[list[int]]]:
    """The cluster's slot map (fetch_slot_map's triple), asked of the first seed that answers."""
    errors = []
    for address in target.seeds:
        try:
            wire = Wire(address, target, context, readonly=False)
            break
        except (OSError, BenchClientError) as exc:
            errors.append(f"{address[0]}: {exc}")
    else:
        raise BenchClientError(f"no seed node answered ({'; '.join(errors) or 'no seeds'})")
    try:
        return fetch_slot_map(wire)
    finally:
        wire.close()


YIELD_SECONDS = 0.005  # longest stretch without letting gevent run


class Wire:
    """One TLS connection to one node, authenticated; `user` and `node` say whose it is."""

    __slots__ = ("address", "sock", "reader", "expected", "user", "node", "fd")

    def __init__(self, address: tuple[str, int], target: Target, context, readonly: bool, user=None, node: int = -1):
        self.address, self.user, self.node, self.expected = address, user, node, 0
        self.sock = Stream(address, context, timeout=10.0)  # a node that stops answering fails the batch, not the loop
        # Blocking: the loop reads only what epoll says has arrived (a TLS record's tail may
        # follow within microseconds), and a send waits only while the kernel buffer is full.
        self.fd = self.sock.fd
        self.reader = hiredis.Reader()
        hello = [encode("AUTH", target.user, target.password)] + ([encode("READONLY")] if readonly else [])
        self.sock.sendall(b"".join(hello))
        for reply in self.read(len(hello)):
            if isinstance(reply, hiredis.ReplyError):
                self.close()
                raise BenchClientError(f"node {address[0]}:{address[1]} refused the load client: {reply}")

    def read(self, count: int) -> list:
        """`count` replies, waiting for them (set-up and CLUSTER SLOTS only, never in the loop)."""
        replies: list = []
        while len(replies) < count:
            reply = self.reader.gets()
            if reply is False:
                data = self.sock.recv(RECV_BYTES)
                if not data:
                    raise BenchClientError(f"node {self.address[0]}:{self.address[1]} closed the connection")
                self.reader.feed(data)
            else:
                replies.append(reply)
        return replies

    def close(self) -> None:
        self.sock.close()


@dataclass(eq=False)
class VirtualUser:
    index: int
    position: int
    wires: dict[int, Wire] = field(default_factory=dict)
    pending: int = 0  # nodes whose replies are outstanding
    intended: float = 0.0
    names: dict[int, list[str]] = field(default_factory=dict)
    errors: list[tuple[str, str]] = field(default_factory=list)
    schedule: OpenLoopSchedule | None = None
    sent_at: float = 0.0
    active: bool = True


class Driver:
    """sequence: (name, slot, is read, command or SET prefix, value or None) tuples, replayed in
    node-local runs of `pipeline`.
    on_batch(names_ok, errors, latency_s, intended_lag_s) is called per completed batch."""

    def __init__(
        self,
        target: Target,
        sequence: list[tuple],
        pipeline: int,
        on_batch: Callable[[list[str], list[tuple[str, str]], float, float], None],
        read_from_replicas: bool = False,
        batch_rate: Callable[[float], float] | None = None,
        start: float = 0.0,
    ):
        self.target = target
        self.pipeline = pipeline
        self.on_batch = on_batch
        self.read_from_replicas = read_from_replicas
        self.batch_rate = batch_rate  # per user, batches/s at a time; None: closed loop
        self.start = start  # open loop: no batch is due before this (perf_counter time)
        self.context = tls_context(target)
        self.poller = _epoll()
        self.by_fd: dict[int, Wire] = {}
        self.users: dict[int, VirtualUser] = {}
        self.due: list[tuple[float, int]] = []  # open loop: (intended start, user index)
        self.refresh_map()
        self.sequence = node_local(sequence, self.write_node, pipeline)

    # --- topology ---------------------------------------------------------------------------
    def refresh_map(self) -> None:
        self.nodes, self.write_node, self.replicas = slot_map(self.target, self.context)

    def _read_node(self, user: VirtualUser, slot: int) -> int:
        return self._read_node_of_master(user, self.write_node[slot])

    def _read_node_of_master(self, user: VirtualUser, master: int) -> int:
        reps = self.replicas[master]
        return reps[user.index % len(reps)] if (self.read_from_replicas and reps) else master

    def _wire(self, user: VirtualUser, node: int) -> Wire:
        wire = user.wires.get(node)
        if wire is None:
            readonly = node not in self.write_node_set
            wire = Wire(self.nodes[node], self.target, self.context, readonly, user, node)
            user.wires[node] = wire
            self.by_fd[wire.fd] = wire
            self.poller.register(wire.fd, _EPOLLIN)
        return wire

    @property
    def write_node_set(self) -> set[int]:
        return set(self.write_node)

    # --- users --------------------------------------------------------------------------------
    def add_user(self, index: int) -> VirtualUser:
        # Start on a run boundary, so that every batch is one of the sequence's node-local runs.
        runs = max(1, len(self.sequence) // self.pipeline)
        user = VirtualUser(index=index, position=((index * 7919) % runs) * self.pipeline)
        self.users[index] = user
        # Connect now, not on the first batch: handshakes must not be charged to scheduled requests.
        for node in sorted(set(self.write_node)):
            self._wire(user, node)
            if self.read_from_replicas:
                self._wire(user, self._read_node_of_master(user, node))
        now = time.perf_counter()
        if self.batch_rate is None:
            self._send(user)
        else:
            first = max(now, self.start)
            user.schedule = OpenLoopSchedule(first, self.batch_rate(first))
            heapq.heappush(self.due, (user.schedule.next, index))
        return user

    def remove_user(self, index: int) -> None:
        user = self.users.pop(index, None)
        if user is not None:
            user.active = False
            self._drop_wires(user)

    def _drop_wires(self, user: VirtualUser) -> None:
        for wire in user.wires.values():
            self.by_fd.pop(wire.fd, None)
            try:
                self.poller.unregister(wire.fd)
            except (OSError, ValueError):
                pass
            wire.close()
        user.wires = {}

    def close(self) -> None:
        for index in list(self.users):
            self.remove_user(index)
        self.poller.close()

    # --- batches ------------------------------------------------------------------------------
    def _send(self, user: VirtualUser, intended: float | None = None) -> None:
        """Send the user's next batch. Closed loop (no intended start): latency counts from the send."""
        seq, n = self.sequence, len(self.sequence)
        groups: dict[int, list[bytes]] = {}
        names: dict[int, list[str]] = {}
        pos = user.position
        for _ in range(self.pipeline):
            name, slot, read, cmd, value = seq[pos]
            pos = pos + 1 if pos + 1 < n else 0
            node = self._read_node(user, slot) if read else self.write_node[slot]
            if node not in groups:
                groups[node], names[node] = [], []
            groups[node].append(cmd if value is None else cmd + value)
            names[node].append(name)
        user.position, user.names, user.errors = pos, names, []
        user.pending = len(groups)
        try:
            wires = [(self._wire(user, node), commands) for node, commands in groups.items()]
            user.sent_at = time.perf_counter()
            user.intended = user.sent_at if intended is None else intended
            for wire, commands in wires:
                wire.expected = len(commands)
                wire.sock.sendall(b"".join(commands))
        except (OSError, BenchClientError) as exc:
            self._fail_batch(user, f"{type(exc).__name__}: {exc}")

    def _fail_batch(self, user: VirtualUser, error: str) -> None:
        """The connection broke: every operation of the batch failed; reconnect on the next batch."""
        failed = [(name, error) for names in user.names.values() for name in names]
        self._drop_wires(user)
        user.pending = 0
        self.on_batch([], failed, time.perf_counter() - user.intended, 0.0)
        self._next(user, time.perf_counter())

    def _complete(self, user: VirtualUser, now: float) -> None:
        ok = [name for names in user.names.values() for name in names]
        errors, moved = [], False
        for name, error in user.errors:
            ok.remove(name)
            if error.startswith("MOVED"):
                moved = True
            else:
                errors.append((name, error))
        if moved:
            # The slot map changed: reload it. Redirected operations count neither as done nor failed.
            self.refresh_map()
        self.on_batch(ok, errors, now - user.intended, user.sent_at - user.intended)
        self._next(user, now)

    def _next(self, user: VirtualUser, now: float) -> None:
        if not user.active:
            return
        if user.schedule is None or self.batch_rate is None:
            self._send(user)
            return
        user.schedule.set_rate(self.batch_rate(now))
        if user.schedule.next <= now:
            self._send(user, user.schedule.start(now))  # late: latency still counts from when it was due
        else:
            heapq.heappush(self.due, (user.schedule.next, user.index))

    def _on_readable(self, wire: Wire, now: float) -> None:
        try:
            data = wire.sock.recv(RECV_BYTES)
        except OSError as exc:  # ssl.SSLError included
            self._fail_batch(wire.user, f"{type(exc).__name__}: {exc}")
            return
        user = wire.user
        if not data:
            self._fail_batch(user, f"ConnectionError: {wire.address[0]} closed the connection")
            return
        reader = wire.reader
        reader.feed(data)
        names = user.names.get(wire.node, ())
        while wire.expected:
            reply = reader.gets()
            if reply is False:
                break
            if type(reply) is hiredis.ReplyError:
                user.errors.append((names[len(names) - wire.expected], str(reply)))
            wire.expected -= 1
        if wire.expected == 0:
            user.pending -= 1
            if user.pending == 0:
                self._complete(user, now)

    # --- the loop -----------------------------------------------------------------------------
    def run(self, keep_going: Callable[[], bool], cooperate: Callable[[], None], max_seconds: float) -> None:
        """Until keep_going() is false or max_seconds pass, calling cooperate() every few ms."""
        clock = time.perf_counter
        deadline = clock() + max_seconds
        poll, by_fd, due = self.poller.poll, self.by_fd, self.due
        epoll_fd = [self.poller.fileno()]
        last_yield = clock()
        while keep_going():
            now = clock()
            if now > deadline:
                break
            while due and due[0][0] <= now:
                _at, index = heapq.heappop(due)
                user = self.users.get(index)
                if user is not None and user.pending == 0 and user.schedule is not None:
                    self._send(user, user.schedule.start(now))
            timeout = YIELD_SECONDS
            if due and due[0][0] - now < YIELD_SECONDS:
                # epoll counts whole milliseconds, rounding up, so scheduled batches would start up
                # to one late: wait on the epoll descriptor itself, to the microsecond.
                _select(epoll_fd, (), (), max(0.0, due[0][0] - now))
                timeout = 0.0
            for fd, _events in poll(timeout):
                wire = by_fd.get(fd)
                if wire is not None:
                    self._on_readable(wire, clock())
            if clock() - last_yield >= YIELD_SECONDS:
                cooperate()
                last_yield = clock()
