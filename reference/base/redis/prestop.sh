#!/bin/sh
# preStop hook: a master hands its slots to one of its replicas before the pod stops.
# A manual CLUSTER FAILOVER (sent to the replica) waits until the replica has every write
# the master acknowledged, so a drain or a rolling update loses nothing and the shard keeps
# serving. A replica, or a master without a connected replica, just stops. The hook never
# fails the termination: whatever happens, it exits 0 within PRESTOP_FAILOVER_SECONDS.
set -u
REDIS_PORT="${REDIS_PORT:-6379}"
REDIS_TLS_DIR="${REDIS_TLS_DIR:-/etc/redis-tls}"
REDIS_SECRETS_DIR="${REDIS_SECRETS_DIR:-/etc/redis-auth}"
PRESTOP_FAILOVER_SECONDS="${PRESTOP_FAILOVER_SECONDS:-15}"
SELF="${POD_IP:-127.0.0.1}"

log() { echo "prestop: $*" >&2; }
REDISCLI_AUTH=$(tr -d '\r\n' < "$REDIS_SECRETS_DIR/admin-password") || { log "no admin password: stopping without a handover"; exit 0; }
export REDISCLI_AUTH

cli() {
  host="$1"; shift
  timeout 5 redis-cli --no-auth-warning --tls --cacert "$REDIS_TLS_DIR/ca.crt" \
    --cert "$REDIS_TLS_DIR/tls.crt" --key "$REDIS_TLS_DIR/tls.key" \
    --user admin -h "$host" -p "$REDIS_PORT" "$@" 2>/dev/null | tr -d '\r'
}

role() { cli "$SELF" ROLE | head -n 1; }

[ "$(role)" = "master" ] || exit 0
# slave0:ip=198.18.0.7,port=6379,state=online,offset=123,lag=0
replica=$(cli "$SELF" INFO replication | awk -F'[=,]' '/^slave[0-9]+:/ && /state=online/ {print $2; exit}')
if [ -z "$replica" ]; then
  log "a master without an online replica: stopping without a handover"
  exit 0
fi
log "handing over to the replica at $replica"
now=$(date +%s)
deadline=$((now + PRESTOP_FAILOVER_SECONDS))
asked=0
while [ "$now" -lt "$deadline" ]; do
  # Asked again every 5 s: masters refuse a second vote for the same shard within
  # 2 × cluster-node-timeout, and a manual failover that got no votes is abandoned.
  if [ "$now" -ge "$asked" ]; then
    cli "$replica" CLUSTER FAILOVER > /dev/null
    asked=$((now + 5))
  fi
  if [ "$(role)" = "slave" ]; then
    log "now a replica of $replica; stopping"
    exit 0
  fi
  sleep 0.2
  now=$(date +%s)
done
log "the replica at $replica did not take over within ${PRESTOP_FAILOVER_SECONDS}s; stopping anyway"
exit 0
