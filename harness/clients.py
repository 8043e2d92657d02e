"""Redis clients for a platform's cluster: TLS with the platform's client
certificate, ACL user and password from the platform's credentials.

Servers are verified against the reference CA. Host names are not checked:
cluster clients reach nodes by the IP addresses the cluster announces, and the
reference's server certificate names Services and pods, not pod IPs (the
security suite checks those names separately).
"""

from __future__ import annotations

from typing import Any

import redis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.cluster import ClusterNode, LoadBalancingStrategy, RedisCluster
from redis.retry import Retry

from harness.platforms.base import Credentials, Pod


def _connection_options(creds: Credentials, user: str, tls: bool, socket_timeout: float) -> dict[str, Any]:
    options: dict[str, Any] = {
        "username": user,
        "password": creds.password(user) if user in creds.passwords else None,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": socket_timeout,
        "decode_responses": True,
    }
    if tls and creds.tls is not None:
        options.update(
            ssl=True,
            ssl_ca_certs=str(creds.tls.ca),
            ssl_certfile=str(creds.tls.cert),
            ssl_keyfile=str(creds.tls.key),
            ssl_cert_reqs="required",
            ssl_check_hostname=False,
        )
    return options


def cluster_client(
    pods: list[Pod],
    creds: Credentials,
    user: str = "app",
    read_from_replicas: bool = False,
    socket_timeout: float = 2.0,
    tls: bool = True,
    retries: int = 3,
    **extra: Any,
) -> RedisCluster:
    """A RedisCluster client that starts from every running pod."""
    nodes = [ClusterNode(p.address, p.port) for p in pods if p.running]
    if read_from_replicas:
        extra.setdefault("load_balancing_strategy", LoadBalancingStrategy.ROUND_ROBIN_REPLICAS)
    return RedisCluster(
        startup_nodes=nodes,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries),
        **_connection_options(creds, user, tls, socket_timeout),
        **extra,
    )


def node_client(
    pod: Pod, creds: Credentials, user: str = "admin", socket_timeout: float = 2.0, tls: bool = True, **extra: Any
) -> redis.Redis:
    """A plain client for one node (admin commands, INFO, CLUSTER NODES). It does not retry:
    an observer must see a node that does not answer, not wait for it."""
    extra.setdefault("retry", Retry(NoBackoff(), 0))
    return redis.Redis(host=pod.address, port=pod.port, **_connection_options(creds, user, tls, socket_timeout), **extra)
