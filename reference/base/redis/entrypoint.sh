#!/bin/sh
# Pod entrypoint of a Redis Cluster node.
#
# Writes this pod's runtime configuration (announce address, TLS files, ACL
# file with hashed passwords, replication credentials) into a private run
# directory, repairs stale addresses in nodes.conf (a restarted pod comes back
# with a new IP, and so may its peers), then execs redis-server.
#
# Everything pod-specific comes from the environment, with container defaults,
# so the same script runs in a Kubernetes pod and on the local platform.
# Secrets are read from files and never passed on a command line.
set -eu

POD_NAME="${POD_NAME:-$(hostname)}"
POD_IP="${POD_IP:-$(hostname -i | awk '{print $1}')}"
REDIS_PORT="${REDIS_PORT:-6379}"
REDIS_BUS_PORT="${REDIS_BUS_PORT:-$((REDIS_PORT + 10000))}"
REDIS_HEADLESS_DOMAIN="${REDIS_HEADLESS_DOMAIN:-}"
REDIS_CONFIG_DIR="${REDIS_CONFIG_DIR:-/etc/redis-config}"
REDIS_TLS_DIR="${REDIS_TLS_DIR:-/etc/redis-tls}"
REDIS_SECRETS_DIR="${REDIS_SECRETS_DIR:-/etc/redis-auth}"
REDIS_DATA_DIR="${REDIS_DATA_DIR:-/data}"
REDIS_RUN_DIR="${REDIS_RUN_DIR:-/run/redis}"
REDIS_SERVER="${REDIS_SERVER:-redis-server}"
REDIS_CHECK_AOF="${REDIS_CHECK_AOF:-redis-check-aof}"
# Addresses to listen on; empty keeps redis.conf's (every interface). Pods that
# share one network (the local platform without namespaces) bind their own.
REDIS_BIND="${REDIS_BIND:-}"
# Optional "address name" file consulted before DNS (the local platform uses it).
REDIS_HOSTS_FILE="${REDIS_HOSTS_FILE:-}"
# How long to wait for peers' names to resolve before repairing nodes.conf.
REDIS_PEER_WAIT_SECONDS="${REDIS_PEER_WAIT_SECONDS:-20}"

log() { echo "entrypoint: $*" >&2; }
die() { log "$*"; exit 1; }

if [ -n "$REDIS_HEADLESS_DOMAIN" ]; then
  POD_FQDN="$POD_NAME.$REDIS_HEADLESS_DOMAIN"
else
  POD_FQDN="$POD_NAME"
fi

for f in "$REDIS_CONFIG_DIR/redis.conf" "$REDIS_CONFIG_DIR/users.acl.template" \
         "$REDIS_TLS_DIR/tls.crt" "$REDIS_TLS_DIR/tls.key" "$REDIS_TLS_DIR/ca.crt"; do
  [ -r "$f" ] || die "missing $f"
done

secret() {
  f="$REDIS_SECRETS_DIR/$1"
  [ -r "$f" ] || die "missing secret file $f"
  # Strip a trailing newline; the value itself is never echoed.
  tr -d '\r\n' < "$f"
}

sha256_of_secret() { secret "$1" | sha256sum | awk '{print $1}'; }

resolve() {
  name="$1"
  if [ -n "$REDIS_HOSTS_FILE" ] && [ -r "$REDIS_HOSTS_FILE" ]; then
    addr=$(awk -v n="$name" '$2 == n {print $1; exit}' "$REDIS_HOSTS_FILE")
    if [ -n "$addr" ]; then echo "$addr"; return 0; fi
  fi
  getent hosts "$name" 2>/dev/null | awk '{print $1; exit}'
}

umask 077
mkdir -p "$REDIS_RUN_DIR" "$REDIS_DATA_DIR"

# ACL file: the reviewed permissions with each password replaced by its hash
# (Redis ACL files allow no comments, so those are dropped).
sed -e '/^[[:space:]]*#/d' -e '/^[[:space:]]*$/d' \
    -e "s/@ADMIN@/$(sha256_of_secret admin-password)/" \
    -e "s/@APP@/$(sha256_of_secret app-password)/" \
    -e "s/@REPLICATION@/$(sha256_of_secret replication-password)/" \
    -e "s/@PROBE@/$(sha256_of_secret probe-password)/" \
    -e "s/@EXPORTER@/$(sha256_of_secret exporter-password)/" \
    "$REDIS_CONFIG_DIR/users.acl.template" > "$REDIS_RUN_DIR/users.acl"

# Runtime configuration: shared redis.conf plus what belongs to this pod.
# masterauth has no file form in Redis, so it lives only here, mode 0600 in the
# pod's private run directory (an in-memory emptyDir on Kubernetes).
{
  echo "include $REDIS_CONFIG_DIR/redis.conf"
  echo "dir $REDIS_DATA_DIR"
  echo "tls-port $REDIS_PORT"
  echo "cluster-port $REDIS_BUS_PORT"
  echo "tls-cert-file $REDIS_TLS_DIR/tls.crt"
  echo "tls-key-file $REDIS_TLS_DIR/tls.key"
  echo "tls-ca-cert-file $REDIS_TLS_DIR/ca.crt"
  echo "aclfile $REDIS_RUN_DIR/users.acl"
  echo "masteruser replication"
  echo "masterauth $(secret replication-password)"
  echo "cluster-announce-ip $POD_IP"
  echo "cluster-announce-hostname $POD_FQDN"
  if [ -n "$REDIS_BIND" ]; then echo "bind $REDIS_BIND"; fi
  # An overlay may add redis-overrides.conf to its redis-config ConfigMap; it comes last.
  if [ -r "$REDIS_CONFIG_DIR/redis-overrides.conf" ]; then
    echo "include $REDIS_CONFIG_DIR/redis-overrides.conf"
  fi
} > "$REDIS_RUN_DIR/redis.conf"

nodes="$REDIS_DATA_DIR/nodes.conf"

# nodes.conf repair. Line format: <id> <ip>:<port>@<bus>[,<hostname>] <flags> ...
# This pod's own line gets its current address; a peer's line gets the address
# its announced hostname resolves to now, when it resolves.
if [ -s "$nodes" ]; then
  peers=$(awk '$1 != "vars" && $3 !~ /myself/ { n = split($2, a, ","); if (n > 1) print a[2] }' "$nodes")
  deadline=$(( $(date +%s) + REDIS_PEER_WAIT_SECONDS ))
  map="$REDIS_RUN_DIR/peer-addresses"
  : > "$map"
  for peer in $peers; do
    addr=$(resolve "$peer")
    while [ -z "$addr" ] && [ "$(date +%s)" -lt "$deadline" ]; do
      sleep 1
      addr=$(resolve "$peer")
    done
    if [ -n "$addr" ]; then echo "$peer $addr" >> "$map"; else log "peer $peer does not resolve; keeping its old address"; fi
  done
  awk -v me="$POD_IP" -v port="$REDIS_PORT" -v bus="$REDIS_BUS_PORT" -v host="$POD_FQDN" -v map="$map" '
    BEGIN { while ((getline line < map) > 0) { split(line, kv, " "); addr[kv[1]] = kv[2] } }
    $1 == "vars" { print; next }
    $3 ~ /myself/ { $2 = me ":" port "@" bus "," host; print; next }
    {
      n = split($2, a, ",")
      if (n > 1 && (a[2] in addr)) {
        split(a[1], hp, ":")
        $2 = addr[a[2]] ":" hp[2] "," a[2]
      }
      print
    }' "$nodes" > "$nodes.tmp"
  mv "$nodes.tmp" "$nodes"
  log "nodes.conf: own address set to $POD_IP, $(wc -l < "$map") peer address(es) refreshed"
fi

# A replica's damaged append-only file. Redis refuses to start on one ("Bad
# file format reading the append only file"), and a short write on a full disk
# can leave one behind in the middle of an incr file, where aof-load-truncated
# does not help. A replica's data is a copy: its files are moved aside (the
# previous quarantine is replaced, so a full disk does not fill further) and
# it resynchronises from its master. Until it has, it cannot be elected: with
# cluster-replica-validity-factor > 0 Redis treats a replica that never reached
# its master as too stale to stand. A master's files are left to Redis, which
# loads a tail cut short by a crash and refuses anything worse.
aof_dir="$REDIS_DATA_DIR/$(cat "$REDIS_CONFIG_DIR/redis.conf" "$REDIS_CONFIG_DIR/redis-overrides.conf" 2>/dev/null |
  awk '$1 == "appenddirname" {d = $2} END {print (d == "" ? "appendonlydir" : d)}')"
manifest=$(ls "$aof_dir"/*.manifest 2>/dev/null | head -n 1 || true)
if [ -n "$manifest" ] && [ -s "$nodes" ] &&
   awk '$3 ~ /myself/ && $3 ~ /slave/ {found = 1} END {exit !found}' "$nodes" &&
   ! report=$("$REDIS_CHECK_AOF" "$manifest" 2>&1); then
  reason=$(printf '%s\n' "$report" | grep -m 1 'is not valid' | tr -s ' ')
  rm -rf "$aof_dir.damaged"
  mv "$aof_dir" "$aof_dir.damaged"
  log "this replica's append-only file is damaged (${reason:-redis-check-aof failed}): moved it to $aof_dir.damaged; resynchronising from the master"
fi

log "starting $POD_FQDN on $POD_IP:$REDIS_PORT (bus $REDIS_BUS_PORT)"
exec "$REDIS_SERVER" "$REDIS_RUN_DIR/redis.conf"
