"""Recording workloads: threads that write distinct keys through the cluster and log
every operation into a History, bounded in count and time, stopping by themselves.

Writes go to the master of the key's slot, following MOVED and ASK like a cluster
client, optionally followed by WAIT on the same connection. Outcomes are honest:
a refusal by the server is `fail` (not applied), a timeout or a dropped
connection is `info` (unknown), a reply of OK is `ok`.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import (
    AskError,
    ClusterDownError,
    MovedError,
    RedisClusterException,
    RedisError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from harness.history import FAIL, INFO, OK, History
from harness.platforms.base import Platform

NETWORK_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)
CLUSTER_ERRORS = (RedisError, RedisClusterException)  # the latter: no known node answers


class ClusterWriter:
    """One write at a time, with redirects followed and the outcome classified."""

    def __init__(
        self,
        client: RedisCluster,
        wait_replicas: int = 0,
        wait_timeout_ms: int = 1000,
        max_redirects: int = 5,
        discover: Callable[[], list[tuple[str, int]]] | None = None,
        retry_down: bool = True,
    ):
        self.client = client
        self.retry_down = retry_down  # CLUSTERDOWN/TRYAGAIN retried within the operation
        self.discover = discover  # current pod addresses, as the Service's DNS name would resolve
        self.wait_replicas = wait_replicas
        self.wait_timeout_ms = wait_timeout_ms
        self.max_redirects = max_redirects
        self._last_refresh = 0.0
        self._refreshing = threading.Lock()  # writers sharing this one: one refresh at a time
        self.redirects: Counter[str] = Counter()  # MOVED and ASK replies followed

    def refresh(self, force: bool = False, avoid: str | None = None) -> None:
        """Reload the slot map (at most every 100 ms unless forced; while another thread sharing
        this writer reloads it, not again: a forced one waits for that map). After a failure at
        `avoid`, first resolve the pods again, as a client resolves the Service (pods restarted at
        new addresses drop out), and ask the failing node last: a dead node first would cost a
        connect timeout each. The connections of the node asked stay open: redis-py's default
        marks them all for reconnection, and a refresh after every failure then made each writer
        of a shard redo its TLS handshake while that shard changed hands (a storm that held a
        handover's 20 ms outage over a second on two busy cores)."""
        if not self._refreshing.acquire(blocking=False):
            if force:  # a redirect: the map another thread is loading now is the one to use
                with self._refreshing:
                    pass
            return
        try:
            now = time.monotonic()
            if force or now - self._last_refresh > 0.1:
                self._last_refresh = now
                if avoid is not None:
                    self._resolve_again()
                try:
                    self.client.nodes_manager.initialize(disconnect_startup_nodes_pools=False, last_failed_node_name=avoid)
                except CLUSTER_ERRORS:
                    self._rediscover()
        finally:
            self._refreshing.release()

    def _resolve_again(self) -> None:
        """Start from the pods as they are now, as a client resolving the Service again would. A
        node known already is kept with its connections: asking it costs no new handshake."""
        if self.discover is None:
            return
        try:
            current = [ClusterNode(host, port) for host, port in self.discover()]
        except OSError:  # a pod exiting while the platform is asked
            return
        manager = self.client.nodes_manager
        if current and {n.name for n in current} != set(manager.startup_nodes):
            known = {**manager.nodes_cache, **manager.startup_nodes}
            manager.startup_nodes = {n.name: known.get(n.name, n) for n in current}

    def _rediscover(self) -> None:
        """Every known node is gone (all pods restarted with new addresses): resolve the pods
        again and reload the slot map from them."""
        self._resolve_again()
        try:
            self.client.nodes_manager.initialize(disconnect_startup_nodes_pools=False)
        except (*CLUSTER_ERRORS, OSError):
            pass  # the next operation finds out

    def _send(self, node: ClusterNode, commands: list[tuple]) -> tuple[list, Exception | None]:
        """Send the commands in one round trip; (the replies read, the network error that stopped
        the reading, if any). A reply read stays read: a SET's +OK is an acknowledgement even if
        the WAIT after it never answers."""
        redis_client = self.client.get_redis_connection(node)
        pool = redis_client.connection_pool
        try:
            conn = pool.get_connection()
        except NETWORK_ERRORS as exc:
            return [], exc
        replies: list = []
        try:
            conn.send_packed_command(conn.pack_commands(commands))
            for _ in commands:
                try:
                    replies.append(conn.read_response())
                except ResponseError as exc:
                    replies.append(exc)
            return replies, None
        except NETWORK_ERRORS as exc:
            conn.disconnect()
            return replies, exc
        except BaseException:
            conn.disconnect()
            raise
        finally:
            pool.release(conn)

    def _routes(self, key: str, host: str, port: int) -> bool:
        """Whether the slot map already sends `key` to host:port."""
        try:
            return self.client.get_node_from_key(key).name == f"{host}:{port}"
        except CLUSTER_ERRORS:
            return False

    def _node(self, host: str, port: int) -> ClusterNode | None:
        node = self.client.get_node(host=host, port=port)
        if node is None:
            self.refresh(force=True)
            node = self.client.get_node(host=host, port=port)
        return node

    def write(self, key: str, value: str) -> tuple[str, str | None, int | None, str | None]:
        """(outcome, error, acks, node address): SET, and WAIT when replicas are asked for."""
        waited = self.wait_replicas > 0
        try:
            node = self.client.get_node_from_key(key)
        except CLUSTER_ERRORS as exc:
            self.refresh()
            return FAIL, f"no route: {exc}", None, None
        asking = False
        for attempt in range(self.max_redirects):
            commands: list[tuple] = [("ASKING",)] if asking else []
            commands.append(("SET", key, value))
            if waited:
                commands.append(("WAIT", self.wait_replicas, self.wait_timeout_ms))
            replies, lost = self._send(node, commands)
            set_at = 1 if asking else 0
            if len(replies) <= set_at:  # the SET's reply never came: unknown
                self.refresh(avoid=node.name)
                return INFO, f"{type(lost).__name__}: {lost}", None, node.host
            reply = replies[set_at]
            if isinstance(reply, MovedError):
                self.redirects["moved"] += 1
                if not self._routes(key, reply.host, reply.port):  # not yet learnt by another writer
                    self.refresh(force=True)
                node = self._node(reply.host, reply.port) or node
                asking = False
                continue
            if isinstance(reply, AskError):
                self.redirects["ask"] += 1
                node = self._node(reply.host, reply.port) or node
                asking = True
                continue
            if self.retry_down and isinstance(reply, (ClusterDownError, TryAgainError)) and attempt < self.max_redirects - 1:
                # Not applied, and transient (a node reset by del-node, a slot mid-migration): like
                # redis-py, refresh the slot map and try again within this operation.
                time.sleep(0.025)
                self.refresh(force=True)
                try:
                    node = self.client.get_node_from_key(key) or node
                except CLUSTER_ERRORS:
                    pass
                asking = False
                continue
            if isinstance(reply, ResponseError):
                # The server refused: CLUSTERDOWN, TRYAGAIN, READONLY (a demoted master), NOPERM, OOM...
                # A node that refuses may hold a stale view (a master cut off from the majority):
                # the slot map is asked of the others first.
                self.refresh(avoid=node.name)
                return FAIL, str(reply), None, node.host
            if lost is not None:
                self.refresh(avoid=node.name)
            return (OK, *replica_acknowledgement(replies, set_at, waited, lost), node.host)
        return FAIL, "too many redirects", None, node.host


def replica_acknowledgement(replies: list, set_at: int, waited: bool, lost: Exception | None) -> tuple[str | None, int | None]:
    """(error, replicas) of a SET whose +OK was read — it stays acknowledged whatever follows:
    only a number in reply to WAIT counts replicas; an error reply or a reply lost on the way
    is no replica acknowledgement."""
    if not waited:
        return None, None
    if len(replies) <= set_at + 1:
        return f"WAIT reply lost: {type(lost).__name__}: {lost}", None
    acks = replies[set_at + 1]
    if isinstance(acks, Exception):
        return f"WAIT: {acks}", None
    return None, int(acks)


def key_on_master(client: RedisCluster, address: str, prefix: str = "app:probe") -> str:
    """A key whose slot the master at `address` serves (via a hash tag)."""
    for i in range(100_000):
        key = f"{prefix}:{{t{i}}}"
        if client.get_node_from_key(key).host == address:
            return key
    raise RuntimeError(f"no slot of {address} found")


def next_slot(due: float, now: float, interval: float) -> float:
    """When a paced worker writes next, its write due at `due` going out `now`: one interval after
    `due`, so that a wake-up a little late costs the rate nothing (timed from `now`, each lost a
    percent or two of it); a worker more than an interval behind (a stalled shard) resumes at its
    rate from now, without a burst."""
    return (now if now - due > interval else due) + interval


@dataclass
class WorkloadLimits:
    max_ops: int = 100_000  # per worker
    max_seconds: float = 120.0


def shard_tags(client: RedisCluster, per_shard: int = 32) -> list[list[str]]:
    """For each master (in address order), hash tags whose slots it serves now: keys carrying
    them go to that shard, so a worker writing them waits on that shard alone."""
    masters = sorted({node.host for node in client.get_primaries()})
    tags: dict[str, list[str]] = {m: [] for m in masters}
    for i in range(200_000):
        tag = f"t{i}"
        owner = client.get_node_from_key(f"{{{tag}}}").host
        if owner in tags and len(tags[owner]) < per_shard:
            tags[owner].append(tag)
        if all(len(t) == per_shard for t in tags.values()):
            break
    return [tags[m] for m in masters]


class WriteWorkload:
    """Workers writing distinct keys, each with a value of its own, recorded in `history`.

    rate: operations per second per worker (None: as fast as the server answers).
    tags: per shard, hash tags of its slots (shard_tags): worker w writes to shard w % len(tags)
    only, app:w:<run>:{<tag>}:<worker>:<n>, so one shard's outage stalls no writer of another;
    without, keys app:w:<run>:<worker>:<n> fall wherever they hash.
    """

    def __init__(
        self,
        platform: Platform,
        history: History,
        run: str,
        workers: int = 4,
        rate: float | None = 200.0,
        wait_replicas: int = 0,
        limits: WorkloadLimits | None = None,
        socket_timeout: float = 0.5,
        f: str = "write",
        key_of=None,
        first_process: int = 0,
        tags: list[list[str]] | None = None,
    ):
        self.platform = platform
        self.history = history
        self.run = run
        self.workers = workers
        self.rate = rate
        self.wait_replicas = wait_replicas
        self.limits = limits or WorkloadLimits()
        self.socket_timeout = socket_timeout
        self.f = f
        self.tags = tags
        self.key_of = key_of or self._key
        self.first_process = first_process
        self.retry_down = True
        self.shared: ClusterWriter | None = None  # set by a workload whose workers share one client
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._writers: list[ClusterWriter] = []  # one per worker that made its own client
        self.errors: list[str] = []

    def shard_of(self, worker: int) -> int | None:
        return worker % len(self.tags) if self.tags else None

    def _key(self, worker: int, n: int) -> str:
        if not self.tags:
            return f"app:w:{self.run}:{worker}:{n}"
        tags = self.tags[worker % len(self.tags)]
        return f"app:w:{self.run}:{{{tags[n % len(tags)]}}}:{worker}:{n}"

    def _client(self) -> RedisCluster:
        return self.platform.client(socket_timeout=self.socket_timeout, retries=0)

    def _writer(self, client: RedisCluster) -> ClusterWriter:
        # WAIT gives up before the socket does: a shard without a replica answers "0 acks", not a timeout.
        return ClusterWriter(
            client,
            wait_replicas=self.wait_replicas,
            wait_timeout_ms=int(self.socket_timeout * 600),
            discover=lambda: [(p.address, p.port) for p in self.platform.pods() if p.running],
            retry_down=self.retry_down,
        )

    def _worker(self, worker: int) -> None:
        if self.shared is not None:
            client, writer = None, self.shared
        else:
            try:
                client = self._client()
            except Exception as exc:
                self.errors.append(f"worker {worker}: no client: {exc}")
                return
            writer = self._writer(client)
            self._writers.append(writer)
        started = time.monotonic()
        interval = 1.0 / self.rate if self.rate else 0.0
        next_at = started + interval * worker / self.workers  # workers spread over the interval, not in step
        try:
            for n in range(self.limits.max_ops):
                if self._stop.is_set() or time.monotonic() - started > self.limits.max_seconds:
                    break
                if interval:
                    delay = next_at - time.monotonic()
                    if delay > 0 and self._stop.wait(delay):
                        break
                    next_at = next_slot(next_at, time.monotonic(), interval)
                key = self.key_of(worker, n)
                value = f"{self.run}:{worker}:{n}"  # unique: a read can tell whose write it sees
                op = self.history.invoke(
                    self.first_process + worker, self.f, key, value, waited=self.wait_replicas > 0, shard=self.shard_of(worker)
                )
                outcome, error, acks, node = writer.write(key, value)
                self.history.complete(op, outcome, error, acks, node)
        except Exception as exc:  # a bug in the workload must not pass silently
            self.errors.append(f"worker {worker}: {type(exc).__name__}: {exc}")
        finally:
            if client is not None:
                client.close()

    def redirects(self) -> Counter[str]:
        """MOVED and ASK replies its writers followed."""
        return sum((w.redirects for w in [*self._writers, *([self.shared] if self.shared else [])]), Counter())

    def start(self) -> WriteWorkload:
        for worker in range(self.workers):
            t = threading.Thread(target=self._worker, args=(worker,), name=f"workload-{worker}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=self.socket_timeout * 10 + 5)
        if self.shared is not None:
            self.shared.client.close()

    def __enter__(self) -> WriteWorkload:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


PROBE_OPENING = 4  # connections the probe opens to one node at a time


class Probe(WriteWorkload):
    """Writers of one slot (`key` carries its hash tag; each write a key of its own, so a final
    read tells which acknowledged writes lasted): the clock that times recovery. It keeps its rate
    through a silent node: each worker writes in turn and a write waits at most its socket timeout,
    so enough workers that their writes in flight cover that timeout at the full rate (a paused
    master answers nothing: 4 workers fell to 20 Hz). They share one client and one slot map."""

    def __init__(
        self,
        platform: Platform,
        history: History,
        key: str,
        rate: float = 200.0,
        socket_timeout: float = 0.2,
        max_seconds: float = 120.0,
        workers: int | None = None,
    ):
        workers = workers or max(4, math.ceil(rate * socket_timeout * 1.25))
        super().__init__(
            platform,
            history,
            run="probe",
            workers=workers,
            rate=rate / workers,
            socket_timeout=socket_timeout,
            limits=WorkloadLimits(max_ops=int(rate * max_seconds / workers) + 1, max_seconds=max_seconds),
            f="probe",
            key_of=lambda worker, n: f"{key}:{worker}:{n}",
        )
        self.retry_down = False  # a clock answers at once: a refusal is a tick of the outage

    def _client(self) -> RedisCluster:
        # Only a few connections are opened to a node at once (clients.gated): the others fail after
        # the socket timeout as a connect timeout would have, without a handshake for the node to do.
        # (A longer connect timeout held every worker behind a slot-map reload that asked a dead node.)
        return self.platform.client(socket_timeout=self.socket_timeout, retries=0, opening_per_node=PROBE_OPENING)

    def start(self) -> Probe:
        self.shared = self._writer(self._client())
        super().start()
        return self


def read_keys(platform: Platform, keys: list[str], batch: int = 1000, attempts: int = 20) -> set[str]:
    """The subset of `keys` present now, read through the cluster (retried while it recovers)."""
    client = platform.client(socket_timeout=2.0)
    present: set[str] = set()
    try:
        for i in range(0, len(keys), batch):
            chunk = keys[i : i + batch]
            for attempt in range(attempts):
                try:
                    values = client.mget_nonatomic(chunk)
                    break
                except RedisError:
                    if attempt == attempts - 1:
                        raise
                    time.sleep(0.5)
                    client.nodes_manager.initialize()
            present.update(k for k, v in zip(chunk, values, strict=True) if v is not None)
    finally:
        client.close()
    return present


def read_prefix(platform: Platform, prefix: str, attempts: int = 20) -> dict[str, str]:
    """Every key under `prefix` on every master now, with its value: what a final read must see
    to find writes nobody acknowledged, writes from elsewhere and values nobody wrote."""
    for attempt in range(attempts):
        client = platform.client(user="admin", socket_timeout=2.0)
        try:
            keys = sorted({k.decode() if isinstance(k, bytes) else k for k in client.scan_iter(match=f"{prefix}*", count=1000)})
            found: dict[str, str] = {}
            for i in range(0, len(keys), 1000):
                chunk = keys[i : i + 1000]
                values = client.mget_nonatomic(chunk)
                found.update(
                    {k: v.decode() if isinstance(v, bytes) else v for k, v in zip(chunk, values, strict=True) if v is not None}
                )
            return found
        except RedisError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.5)
        finally:
            client.close()
    raise AssertionError("unreachable")
