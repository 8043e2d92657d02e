"""The load engine of one load process: every user's connections in one epoll loop on
plain (not gevent's) TLS sockets, the way redis-benchmark drives its clients.

gevent's cooperative sockets cost tens of microseconds per round trip in Python; here a
reply costs one recv, one hiredis feed and a few `gets`. The loop hands control back to
gevent every few milliseconds, so Locust's own greenlets (heartbeats, statistics) run.

A user has one connection per node it sends to and one batch in flight. Batches are
node-local runs of the pre-built sequence (see loadgen.node_local), so a pipeline of P
commands travels on one connection, as with redis-benchmark --cluster -P. Closed loop:
a user sends its next batch when the last one completes. Open loop: at its intended start;
a batch that could not start on time still counts its latency from then.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import hiredis
from gevent import monkey

from harness.bench.client import RECV_BYTES, BenchClientError, Target, encode, fetch_slot_map
from harness.bench.schedule import OpenLoopSchedule

# The originals, not gevent's cooperative replacements.
_create_connection = monkey.get_original("socket", "create_connection")
_epoll = monkey.get_original("select", "epoll")
_EPOLLIN = monkey.get_original("select", "EPOLLIN")
_ssl_context = monkey.get_original("ssl", "create_default_context")
import socket as _stdlib_socket  # noqa: E402  (constants only)

YIELD_SECONDS = 0.005  # longest stretch without letting gevent run


class Wire:
    """One TLS connection to one node, authenticated."""

    __slots__ = ("address", "sock", "reader", "expected", "user", "node", "fd")

    def __init__(self, address: tuple[str, int], target: Target, context, readonly: bool, user: VirtualUser, node: int):
        self.address, self.user, self.node, self.expected = address, user, node, 0
        raw = _create_connection(address, timeout=5.0)
        raw.setsockopt(_stdlib_socket.IPPROTO_TCP, _stdlib_socket.TCP_NODELAY, 1)
        raw.settimeout(10.0)  # a node that stops answering fails the batch instead of hanging the loop
        self.sock = context.wrap_socket(raw) if context else raw
        self.reader = hiredis.Reader()
        hello = [encode("AUTH", target.user, target.password)] + ([encode("READONLY")] if readonly else [])
        self.sock.sendall(b"".join(hello))
        replies: list = []
        while len(replies) < len(hello):  # blocking, once, before the loop runs
            reply = self.reader.gets()
            if reply is False:
                data = self.sock.recv(RECV_BYTES)
                if not data:
                    raise BenchClientError(f"node {address[0]}:{address[1]} closed the connection during AUTH")
                self.reader.feed(data)
            elif isinstance(reply, hiredis.ReplyError):
                raise BenchClientError(f"node {address[0]}:{address[1]} refused the load client: {reply}")
            else:
                replies.append(reply)
        # Blocking: the loop reads only what epoll says has arrived (a TLS record's tail may
        # follow within microseconds), and a send waits only while the kernel buffer is full.
        self.fd = self.sock.fileno()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


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
    """sequence: (name, slot, is read, command or SET prefix, value or None) tuples, node-local runs.
    on_batch(names_ok, errors, latency_s, intended_lag_s) is called per completed batch."""

    def __init__(
        self,
        target: Target,
        sequence: list[tuple],
        pipeline: int,
        on_batch: Callable[[list[str], list[tuple[str, str]], float, float], None],
        read_from_replicas: bool = False,
        batch_rate: Callable[[float], float] | None = None,
    ):
        self.target = target
        self.sequence = sequence
        self.pipeline = pipeline
        self.on_batch = on_batch
        self.read_from_replicas = read_from_replicas
        self.batch_rate = batch_rate  # per user, batches/s at a time; None: closed loop
        self.context = None
        if target.ca:
            self.context = _ssl_context(cafile=target.ca)
            self.context.check_hostname = False  # nodes are reached by announced IPs
            if target.cert:
                self.context.load_cert_chain(target.cert, target.key)
        self.poller = _epoll()
        self.by_fd: dict[int, Wire] = {}
        self.users: dict[int, VirtualUser] = {}
        self.due: list[tuple[float, int]] = []  # open loop: (intended start, user index)
        self.moved = 0
        self.refresh_map()

    # --- topology ---------------------------------------------------------------------------
    def refresh_map(self) -> None:
        errors = []
        for address in self.target.seeds:
            try:
                wire = _BlockingProbe(address, self.target, self.context)
                break
            except (OSError, BenchClientError) as exc:
                errors.append(f"{address[0]}: {exc}")
        else:
            raise BenchClientError(f"no seed node answered ({'; '.join(errors) or 'no seeds'})")
        try:
            self.nodes, self.write_node, replicas = fetch_slot_map(wire)
        finally:
            wire.close()
        self.replicas = replicas

    def _read_node(self, user: VirtualUser, slot: int) -> int:
        master = self.write_node[slot]
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
        user = VirtualUser(index=index, position=(index * 7919) % len(self.sequence))
        self.users[index] = user
        now = time.perf_counter()
        if self.batch_rate is None:
            self._send(user, now, now)
        else:
            user.schedule = OpenLoopSchedule(now, self.batch_rate(now))
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
    def _send(self, user: VirtualUser, intended: float, now: float) -> None:
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
        user.position, user.names, user.intended, user.sent_at, user.errors = pos, names, intended, now, []
        user.pending = len(groups)
        try:
            for node, commands in groups.items():
                wire = self._wire(user, node)
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
        errors, moved = [], 0
        for name, error in user.errors:
            ok.remove(name)
            if error.startswith("MOVED"):
                moved += 1
            else:
                errors.append((name, error))
        if moved:
            # The slot map changed: reload it. Redirected operations count neither as done nor failed.
            self.moved += moved
            self.refresh_map()
        self.on_batch(ok, errors, now - user.intended, user.sent_at - user.intended)
        self._next(user, now)

    def _next(self, user: VirtualUser, now: float) -> None:
        if not user.active:
            return
        if user.schedule is None or self.batch_rate is None:
            self._send(user, now, now)
            return
        user.schedule.set_rate(self.batch_rate(now))
        if user.schedule.next <= now:
            self._send(user, user.schedule.start(now), now)  # late: latency still counts from when it was due
        else:
            heapq.heappush(self.due, (user.schedule.next, user.index))

    def _on_readable(self, wire: Wire, now: float) -> None:
        try:
            data = wire.sock.recv(RECV_BYTES)
            while data and getattr(wire.sock, "pending", None) and wire.sock.pending():
                data += wire.sock.recv(RECV_BYTES)
        except OSError as exc:
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
        last_yield = clock()
        while keep_going():
            now = clock()
            if now > deadline:
                break
            timeout = YIELD_SECONDS
            while due and due[0][0] <= now:
                _at, index = heapq.heappop(due)
                user = self.users.get(index)
                if user is not None and user.pending == 0 and user.schedule is not None:
                    self._send(user, user.schedule.start(now), now)
            if due:
                timeout = min(timeout, max(0.0, due[0][0] - now))
            for fd, _events in poll(timeout):
                wire = by_fd.get(fd)
                if wire is not None:
                    self._on_readable(wire, clock())
            if clock() - last_yield >= YIELD_SECONDS:
                cooperate()
                last_yield = clock()


class _BlockingProbe:
    """A blocking connection for CLUSTER SLOTS (fetch_slot_map's interface: sock + read)."""

    def __init__(self, address: tuple[str, int], target: Target, context):
        raw = _create_connection(address, timeout=5.0)
        self.sock = context.wrap_socket(raw) if context else raw
        self.reader = hiredis.Reader()
        self.sock.sendall(encode("AUTH", target.user, target.password))
        (reply,) = self.read(1)
        if isinstance(reply, hiredis.ReplyError):
            raise BenchClientError(f"node {address[0]}:{address[1]} refused the load client: {reply}")

    def read(self, count: int) -> list:
        replies: list = []
        while len(replies) < count:
            reply = self.reader.gets()
            if reply is False:
                data = self.sock.recv(RECV_BYTES)
                if not data:
                    raise BenchClientError("the node closed the connection")
                self.reader.feed(data)
            else:
                replies.append(reply)
        return replies

    def close(self) -> None:
        self.sock.close()
