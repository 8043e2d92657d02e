#!/bin/sh
# Writes which Kubernetes node runs which Redis pod, "pod node" per line, to
# REDIS_NODE_MAP_FILE, for bootstrap.sh to keep every replica off its master's node.
# Runs before the bootstrap (an initContainer of its Job) with a ServiceAccount that
# may get and list pods in the namespace; waits until every pod <prefix>-<i>, i <
# REDIS_POD_COUNT, exists and is scheduled (has spec.nodeName).
set -eu

REDIS_POD_PREFIX="${REDIS_POD_PREFIX:-redis-cluster}"
REDIS_POD_COUNT="${REDIS_POD_COUNT:-6}"
REDIS_POD_SELECTOR="${REDIS_POD_SELECTOR:-app.kubernetes.io/name=redis-cluster,app.kubernetes.io/component=server}"
REDIS_NODE_MAP_FILE="${REDIS_NODE_MAP_FILE:-/work/node-map}"
BOOTSTRAP_TIMEOUT_SECONDS="${BOOTSTRAP_TIMEOUT_SECONDS:-300}"
POD_NAMESPACE="${POD_NAMESPACE:-}"

log() { echo "node-map: $*" >&2; }
die() { log "$*"; exit 1; }

[ -n "$POD_NAMESPACE" ] || die "POD_NAMESPACE is not set"
deadline=$(( $(date +%s) + BOOTSTRAP_TIMEOUT_SECONDS ))
partial="$REDIS_NODE_MAP_FILE.partial"
errors="$REDIS_NODE_MAP_FILE.errors"
said=""
trap 'rm -f "$partial" "$errors"' EXIT

while :; do
  if listing=$(kubectl get pods -n "$POD_NAMESPACE" -l "$REDIS_POD_SELECTOR" -o jsonpath='{range .items[*]}{.metadata.name}{" "}{.spec.nodeName}{"\n"}{end}' 2> "$errors"); then
    # One line per expected pod that has a node; the names of those that have none yet.
    : > "$partial"
    waiting=""
    i=0
    while [ "$i" -lt "$REDIS_POD_COUNT" ]; do
      pod="$REDIS_POD_PREFIX-$i"
      node=$(printf '%s\n' "$listing" | awk -v p="$pod" '$1 == p && NF >= 2 {print $2; exit}')
      if [ -n "$node" ]; then echo "$pod $node" >> "$partial"; else waiting="$waiting $pod"; fi
      i=$((i + 1))
    done
    if [ -z "$waiting" ]; then
      mv "$partial" "$REDIS_NODE_MAP_FILE"
      log "wrote $REDIS_NODE_MAP_FILE: $(awk '{printf "%s%s on %s", (NR > 1 ? ", " : ""), $1, $2}' "$REDIS_NODE_MAP_FILE")"
      exit 0
    fi
    state="not yet scheduled:$waiting"
  else
    state="kubectl get pods failed: $(tr '\n' ' ' < "$errors")"
  fi
  # Say what it waits for when that changes, not every second.
  if [ "$state" != "$said" ]; then log "$state"; said="$state"; fi
  [ "$(date +%s)" -lt "$deadline" ] || die "gave up after ${BOOTSTRAP_TIMEOUT_SECONDS}s: $state"
  sleep 2
done
