#!/bin/sh
# Readiness and liveness probe of a Redis Cluster node, over TLS, as the
# least-privileged "probe" user (password read from its Secret file).
#   probe.sh liveness   the server answers PING (also while loading data)
#   probe.sh readiness  the server answers PING, the cluster state is ok and, on a
#                       replica, the link to its master is up (its sync is done)
set -eu
REDIS_PORT="${REDIS_PORT:-6379}"
REDIS_TLS_DIR="${REDIS_TLS_DIR:-/etc/redis-tls}"
REDIS_SECRETS_DIR="${REDIS_SECRETS_DIR:-/etc/redis-auth}"
PROBE_HOST="${PROBE_HOST:-${POD_IP:-127.0.0.1}}"

REDISCLI_AUTH=$(tr -d '\r\n' < "$REDIS_SECRETS_DIR/probe-password")
export REDISCLI_AUTH

cli() {
  timeout 5 redis-cli --no-auth-warning --tls --cacert "$REDIS_TLS_DIR/ca.crt" \
    --cert "$REDIS_TLS_DIR/tls.crt" --key "$REDIS_TLS_DIR/tls.key" \
    --user probe -h "$PROBE_HOST" -p "$REDIS_PORT" "$@"
}

case "${1:-readiness}" in
  liveness)
    reply=$(cli PING)
    case "$reply" in PONG|LOADING*|MASTERDOWN*) exit 0 ;; esac
    echo "liveness: $reply" >&2; exit 1 ;;
  readiness)
    [ "$(cli PING)" = "PONG" ] || { echo "readiness: no PONG" >&2; exit 1; }
    cli CLUSTER INFO | grep -q '^cluster_state:ok' || { echo "readiness: cluster_state is not ok" >&2; exit 1; }
    # A replica still syncing holds no copy a failover could use: not ready, so the
    # PodDisruptionBudget lets no other pod go (its master, in a drain) until it is.
    replication=$(cli INFO replication | tr -d '\r')
    case "$replication" in
      *role:slave*)
        echo "$replication" | grep -q '^master_link_status:up' || { echo "readiness: replica not in sync with its master" >&2; exit 1; } ;;
    esac
    ;;
  *) echo "usage: probe.sh liveness|readiness" >&2; exit 2 ;;
esac
