"""Redis clients for a platform's cluster: TLS with the platform's client
certificate, ACL user and password from the platform's credentials.

Servers are verified against the reference CA. Host names are not checked:
cluster clients reach nodes by the IP addresses the cluster announces, and the
reference's server certificate names Services and pods, not pod IPs (the
security suite checks those names separately).
"""

from __future__ import annotations

import functools
import os
import ssl
import threading
from typing import Any

import redis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.cluster import ClusterNode, LoadBalancingStrategy, RedisCluster
from redis.connection import Connection, SSLConnection
from redis.retry import Retry

from harness.platforms.base import Credentials, Pod


@functools.lru_cache(maxsize=16)
def _tls_context(ca: str, cert: str, key: str, _stamp: tuple[int, ...]) -> ssl.SSLContext:
    """One client context per certificate set (and version of its files): redis-py builds one per
    connection with ssl.create_default_context(), which loads the system's CA bundle each time
    (about 50 ms of CPU here, so every reconnection during a fault stalled its client) and would
    trust every CA in it besides the reference's."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cafile=ca)
    context.load_cert_chain(certfile=cert, keyfile=key)
    return context


@functools.lru_cache(maxsize=16)
def _tls_connection_class(ca: str, cert: str, key: str) -> type[SSLConnection]:
    """A redis-py TLS connection that verifies servers against `ca` alone and presents `cert`, with
    the context built once (see _tls_context)."""

    class TLSConnection(SSLConnection):
        def __init__(self, **kwargs: Any):
            super().__init__(ssl_ca_certs=ca, ssl_certfile=cert, ssl_keyfile=key, ssl_cert_reqs="required", ssl_check_hostname=False, **kwargs)

        def _wrap_socket_with_ssl(self, sock):
            stamp = tuple(os.stat(path).st_mtime_ns for path in (ca, cert, key))
            return _tls_context(ca, cert, key, stamp).wrap_socket(sock)

    return TLSConnection


def _connection_options(creds: Credentials, user: str, tls: bool, socket_timeout: float) -> dict[str, Any]:
    options: dict[str, Any] = {
        "username": user,
        "password": creds.password(user) if user in creds.passwords else None,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": socket_timeout,
        "decode_responses": True,
        # No CLIENT SETINFO: Redis 7.0 does not know it, and redis-py's two calls on every new
        # connection were two round trips answered with an error (a quarter of a TLS connect here).
        "driver_info": None,
    }
    if tls and creds.tls is not None:
        # ssl stays False: redis-py would put its own connection class back.
        options["connection_class"] = _tls_connection_class(str(creds.tls.ca), str(creds.tls.cert), str(creds.tls.key))
    return options


def gated(connection_class: type[Connection], per_node: int, wait: float) -> type[Connection]:
    """`connection_class` with at most `per_node` connections being opened to any one node at a
    time (TCP, TLS handshake and AUTH); a connection that cannot start within `wait` seconds fails as
    a connect timeout. Its own class, so its gates belong to one client.

    Why: many threads of one client that give up on a slow node after a short timeout each drop
    their connection and open a new one, and a handshake abandoned at the timeout is work the node
    did for nothing. The probe's 50 threads once saw a new master unavailable for 5.7 s, connect
    and read timeouts throughout, while the shard's own writers (established connections, a longer
    timeout) saw 1.4 s."""
    gates: dict[tuple[str, int], threading.BoundedSemaphore] = {}
    lock = threading.Lock()

    class Gated(connection_class):  # type: ignore[misc, valid-type]
        def connect_check_health(self, check_health: bool = True, retry_socket_connect: bool = True):
            if self._sock:
                return super().connect_check_health(check_health, retry_socket_connect)
            with lock:
                gate = gates.setdefault((self.host, self.port), threading.BoundedSemaphore(per_node))
            if not gate.acquire(timeout=wait):
                raise redis.exceptions.TimeoutError(
                    f"Timeout connecting to server: {per_node} connections to {self.host}:{self.port} already opening"
                )
            try:
                return super().connect_check_health(check_health, retry_socket_connect)
            finally:
                gate.release()

    return Gated


def cluster_client(
    pods: list[Pod],
    creds: Credentials,
    user: str = "app",
    read_from_replicas: bool = False,
    socket_timeout: float = 2.0,
    tls: bool = True,
    retries: int = 3,
    opening_per_node: int | None = None,
    **extra: Any,
) -> RedisCluster:
    """A RedisCluster client that starts from every running pod. `opening_per_node`: connections
    opened to one node at a time at most (gated), others wait up to the socket timeout."""
    nodes = [ClusterNode(p.address, p.port) for p in pods if p.running]
    if read_from_replicas:
        extra.setdefault("load_balancing_strategy", LoadBalancingStrategy.ROUND_ROBIN_REPLICAS)
    options = {**_connection_options(creds, user, tls, socket_timeout), **extra}
    if opening_per_node is not None:
        options["connection_class"] = gated(options.get("connection_class", Connection), opening_per_node, socket_timeout)
    if "connection_class" in options and nodes:
        # redis-py builds each node's pool from the client's options, connection class included,
        # only for a cluster named by a URL: the first node becomes one (redis://, as the
        # connection class does the TLS).
        options["url"] = f"redis://{nodes[0].host}:{nodes[0].port}"
        nodes = nodes[1:]
    return RedisCluster(startup_nodes=nodes, retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries), **options)


def node_client(
    pod: Pod, creds: Credentials, user: str = "admin", socket_timeout: float = 2.0, tls: bool = True, **extra: Any
) -> redis.Redis:
    """A plain client for one node (admin commands, INFO, CLUSTER NODES). It does not retry:
    an observer must see a node that does not answer, not wait for it."""
    extra.setdefault("retry", Retry(NoBackoff(), 0))  # on the connection, where redis-py looks for it
    options = {**_connection_options(creds, user, tls, socket_timeout), **extra}
    if "connection_class" not in options:
        return redis.Redis(host=pod.address, port=pod.port, **options)
    # redis.Redis takes no connection class of its own; it owns (and closes) this pool.
    return redis.Redis.from_pool(redis.ConnectionPool(host=pod.address, port=pod.port, **options))
