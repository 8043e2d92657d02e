#!/bin/sh
# Creates the Redis Cluster, or repairs it, from the StatefulSet's pods.
# Idempotent: on a healthy cluster it changes nothing and says so.
#
#  - a fresh set of pods: the first pods on distinct nodes become masters with
#    all 16384 slots, each remaining pod joins as a replica of the master that
#    place-replica.awk (next to this script) chooses: the fewest replicas, on
#    another node where one can be found for every master;
#  - an existing cluster: a member whose address changed is met again at its
#    new address, and a pod that never joined is added as a replica.
#  - with a node map, roles that failovers moved are repaired (repair-roles.awk,
#    next to this script, chooses each step): a graceful CLUSTER FAILOVER puts the
#    masters back on distinct nodes, CLUSTER REPLICATE moves replicas off their
#    master's node.
#
# Pods are named <prefix>-<i>.<headless domain>, as a StatefulSet names them.
# An optional node map file ("pod node" per line) tells which Kubernetes node
# runs which pod; without it every pod counts as its own node.
set -eu

REDIS_POD_PREFIX="${REDIS_POD_PREFIX:-redis-cluster}"
REDIS_POD_COUNT="${REDIS_POD_COUNT:-6}"
REDIS_REPLICAS_PER_MASTER="${REDIS_REPLICAS_PER_MASTER:-1}"
REDIS_HEADLESS_DOMAIN="${REDIS_HEADLESS_DOMAIN:-}"
REDIS_PORT="${REDIS_PORT:-6379}"
REDIS_BUS_PORT="${REDIS_BUS_PORT:-$((REDIS_PORT + 10000))}"
REDIS_TLS_DIR="${REDIS_TLS_DIR:-/etc/redis-tls}"
REDIS_SECRETS_DIR="${REDIS_SECRETS_DIR:-/etc/redis-auth}"
REDIS_HOSTS_FILE="${REDIS_HOSTS_FILE:-}"
REDIS_NODE_MAP_FILE="${REDIS_NODE_MAP_FILE:-}"
BOOTSTRAP_TIMEOUT_SECONDS="${BOOTSTRAP_TIMEOUT_SECONDS:-300}"
REPAIR_MAX_ACTIONS="${REPAIR_MAX_ACTIONS:-10}"
REPAIR_SETTLE_SECONDS="${REPAIR_SETTLE_SECONDS:-30}"

log() { echo "$(date -u +%H:%M:%S.%3N) bootstrap: $*" >&2; }
die() { log "$*"; exit 1; }

REDISCLI_AUTH=$(tr -d '\r\n' < "$REDIS_SECRETS_DIR/admin-password") || die "missing admin password file"
export REDISCLI_AUTH
TLS_ARGS="--tls --cacert $REDIS_TLS_DIR/ca.crt --cert $REDIS_TLS_DIR/tls.crt --key $REDIS_TLS_DIR/tls.key"

# cli ADDRESS ARGS...: one command against one node, as the admin user.
cli() {
  host="$1"; shift
  # shellcheck disable=SC2086
  timeout 10 redis-cli --no-auth-warning $TLS_ARGS --user admin -h "$host" -p "$REDIS_PORT" "$@"
}
# all_ok ADDRESS: the commands on stdin, one connection for all (redis-cli runs what it
# reads); fails unless every reply is OK. The replies are left in $replies.
all_ok() {
  replies=$(cli "$1" | tr -d '\r' | paste -sd ' ')
  [ -n "$replies" ] && [ -z "$(printf '%s\n' "$replies" | tr ' ' '\n' | grep -vx OK)" ]
}
# admin_cli ARGS...: redis-cli --cluster subcommands, as the admin user.
admin_cli() {
  # shellcheck disable=SC2086
  redis-cli --no-auth-warning $TLS_ARGS --user admin "$@"
}

resolve() {
  name="$1"
  if [ -n "$REDIS_HOSTS_FILE" ] && [ -r "$REDIS_HOSTS_FILE" ]; then
    addr=$(awk -v n="$name" '$2 == n {print $1; exit}' "$REDIS_HOSTS_FILE")
    if [ -n "$addr" ]; then echo "$addr"; return 0; fi
  fi
  getent hosts "$name" 2>/dev/null | awk '{print $1; exit}'
}

node_of() {
  if [ -n "$REDIS_NODE_MAP_FILE" ] && [ -r "$REDIS_NODE_MAP_FILE" ]; then
    n=$(awk -v p="$1" '$1 == p {print $2; exit}' "$REDIS_NODE_MAP_FILE")
    if [ -n "$n" ]; then echo "$n"; return 0; fi
  fi
  echo "$1"
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
trap 'exit 143' TERM  # a deleted Job's pod: the EXIT trap still runs
trap 'exit 130' INT
deadline=$(( $(date +%s) + BOOTSTRAP_TIMEOUT_SECONDS ))

# 1. Wait until every pod resolves and answers PING; record "pod address node".
pods="$work/pods"
: > "$pods"
i=0
while [ "$i" -lt "$REDIS_POD_COUNT" ]; do
  pod="$REDIS_POD_PREFIX-$i"
  fqdn="$pod${REDIS_HEADLESS_DOMAIN:+.$REDIS_HEADLESS_DOMAIN}"
  while :; do
    addr=$(resolve "$fqdn")
    if [ -n "$addr" ] && [ "$(cli "$addr" PING 2>/dev/null)" = "PONG" ]; then break; fi
    [ "$(date +%s)" -lt "$deadline" ] || die "pod $fqdn is not reachable after ${BOOTSTRAP_TIMEOUT_SECONDS}s"
    sleep 0.2
  done
  echo "$pod $addr $(node_of "$pod")" >> "$pods"
  i=$((i + 1))
done
log "all $REDIS_POD_COUNT pods answer"

# 2. Find a member that already serves slots: the anchor of an existing cluster.
anchor=""
while read -r pod addr node; do
  assigned=$(cli "$addr" CLUSTER INFO | tr -d '\r' | awk -F: '$1 == "cluster_slots_assigned" {print $2}')
  if [ "${assigned:-0}" -gt 0 ]; then anchor="$addr"; break; fi
done < "$pods"

changes=0
created=""
if [ -z "$anchor" ]; then
  masters=$((REDIS_POD_COUNT / (REDIS_REPLICAS_PER_MASTER + 1)))
  [ "$masters" -ge 3 ] || die "$REDIS_POD_COUNT pods with $REDIS_REPLICAS_PER_MASTER replica(s) each give fewer than 3 masters"
  # Masters: first pods on distinct nodes, then (if nodes run out) in order.
  awk -v m="$masters" '
    { pod[NR] = $1; addr[NR] = $2; node[NR] = $3 }
    END {
      c = 0
      for (i = 1; i <= NR && c < m; i++) if (!(node[i] in used)) { used[node[i]] = 1; pick[i] = 1; c++ }
      for (i = 1; i <= NR && c < m; i++) if (!(i in pick)) { pick[i] = 1; c++ }
      for (i = 1; i <= NR; i++) if (i in pick) print addr[i] ":" '"$REDIS_PORT"'
    }' "$pods" > "$work/masters"
  log "creating the cluster with masters $(tr '\n' ' ' < "$work/masters")"
  # As `redis-cli --cluster create` does, without its once-a-second wait for the join:
  # the slots split evenly (0-5460, 5461-10922, 10923-16383 for three) and a distinct
  # config epoch each; then every master meets every other, so that each learns the
  # others' slots from them rather than by gossip.
  awk -v m="$masters" '{ lo = (NR == 1) ? 0 : hi + 1; hi = (NR == m) ? 16383 : int((NR * 16384 / m) + 0.5) - 1
                         split($1, a, ":"); print a[1], lo, hi, NR }' "$work/masters" > "$work/slots"
  anchor=$(awk 'NR == 1 {print $1}' "$work/slots")
  while read -r addr lo hi epoch; do
    printf 'CLUSTER ADDSLOTSRANGE %s %s\nCLUSTER SET-CONFIG-EPOCH %s\n' "$lo" "$hi" "$epoch" | all_ok "$addr" \
      || die "assigning slots $lo-$hi and config epoch $epoch to $addr failed: $replies"
  done < "$work/slots"
  while read -r addr lo hi epoch; do
    awk -v self="$addr" -v p="$REDIS_PORT" -v b="$REDIS_BUS_PORT" '$1 != self {print "CLUSTER MEET", $1, p, b}' "$work/slots" \
      | all_ok "$addr" || die "$addr could not meet the other masters: $replies"
  done < "$work/slots"
  # Step 3 tells members from newcomers by the anchor's view: it must know every master.
  until cli "$anchor" CLUSTER NODES | tr -d '\r' | awk -v want="$masters" '$3 ~ /master/ && $3 !~ /handshake/ && NF > 8 {n++} END {exit n != want}'; do
    [ "$(date +%s)" -lt "$deadline" ] || die "the masters did not meet in time"
    sleep 0.05
  done
  log "created"
  created=1
  changes=$((changes + 1))
fi

# 3. Meet members whose address changed; collect pods that never joined.
cli "$anchor" CLUSTER NODES | tr -d '\r' > "$work/view"
: > "$work/unjoined"
: > "$work/ids"
while read -r pod addr node; do
  id=$(cli "$addr" CLUSTER MYID | tr -d '\r')
  echo "$pod $addr $node $id" >> "$work/ids"
  known=$(awk -v id="$id" '$1 == id {split($2, a, ":"); print a[1]}' "$work/view")
  if [ -z "$known" ]; then
    echo "$pod $addr $node $id" >> "$work/unjoined"
  elif [ "$known" != "$addr" ]; then
    log "$pod moved from $known to $addr; meeting it again"
    cli "$anchor" CLUSTER MEET "$addr" "$REDIS_PORT" "$REDIS_BUS_PORT" > /dev/null
    changes=$((changes + 1))
  fi
done < "$pods"

# 4. Attach each unjoined pod as a replica, in pod order; place-replica.awk chooses
#    the master: fewest replicas, then on another node, then the one that the fewest
#    of the pods still to place could take, then by pod ordinal. Each pod meets the
#    masters itself and replicates its own once the handshake is done (gossip tells it of
#    the other replicas); the replica counts are kept here rather than re-read.
if [ -s "$work/unjoined" ]; then
  cli "$anchor" CLUSTER NODES | tr -d '\r' > "$work/view"
  # "master-id master-address replica-count" for every master that serves slots
  awk '$3 ~ /master/ && $3 !~ /fail/ && NF > 8 { split($2, a, "@"); split(a[1], h, ":"); m[$1] = h[1]; n[$1] = 0 }
       $3 ~ /slave/ { r[$4]++ }
       END { for (id in m) print id, m[id], (id in r ? r[id] : 0) }' "$work/view" > "$work/masters"
fi
placed=0
while read -r pod addr node id; do
  placed=$((placed + 1))
  # The placement input: every master with its pod and node, then this pod and the
  # pods after it.
  : > "$work/placement"
  while read -r mid maddr count; do
    mpod=$(awk -v a="$maddr" '$2 == a {print $1; exit}' "$pods")
    echo "master $mid $maddr ${mpod:-?} $(node_of "${mpod:-?}") $count" >> "$work/placement"
  done < "$work/masters"
  awk -v from="$placed" 'NR >= from {print "pod", $1, $3}' "$work/unjoined" >> "$work/placement"
  choice=$(awk -f "$(dirname "$0")/place-replica.awk" "$work/placement") || die "placing $pod failed"
  [ -n "$choice" ] || die "no master to attach $pod to"
  # shellcheck disable=SC2086
  set -- $choice
  log "adding $pod ($addr) as a replica of $1 ($2)"
  # It meets every master, not its own alone: the slots of the others would otherwise reach
  # it by gossip only, and until they do it disagrees with the rest about who serves what.
  awk -v p="$REDIS_PORT" -v b="$REDIS_BUS_PORT" '{print "CLUSTER MEET", $2, p, b}' "$work/masters" | all_ok "$addr" \
    || die "$pod could not meet the masters: $replies"
  until answer=$(cli "$addr" CLUSTER REPLICATE "$1" 2>&1) && [ "$answer" = "OK" ]; do
    case "$answer" in
      *"Unknown node"*) ;;  # the handshake with its master is not done yet
      *) die "adding $pod failed: $answer" ;;
    esac
    [ "$(date +%s)" -lt "$deadline" ] || die "$pod did not learn of its master $1 in time"
    sleep 0.05
  done
  awk -v m="$1" '$1 == m { $3++ } { print }' "$work/masters" > "$work/masters.next"
  mv "$work/masters.next" "$work/masters"
  changes=$((changes + 1))
done < "$work/unjoined"
log "replicas attached"

# 5. With a node map, repair roles that failovers moved: masters on distinct nodes (when
#    there are enough nodes), no replica on its master's node. repair-roles.awk (next to
#    this script) chooses one action from the anchor's view; it is carried out and waited
#    for, then the next one is chosen from the new view, at most REPAIR_MAX_ACTIONS.
#    Only on a settled view: every pod a member, a master that serves slots or a replica.
#    Its waits poll every 100 ms (one redis-cli call each): a repair runs while clients wait.
#    Not on a cluster this run created: its masters are the first pods on distinct nodes and
#    place-replica.awk put every replica where repair-roles.awk leaves it, so the repair
#    would only wait (a second or two) for gossip to bring the anchor every replica's role.
if [ -z "$created" ] && [ -n "$REDIS_NODE_MAP_FILE" ] && [ -r "$REDIS_NODE_MAP_FILE" ]; then
  # "pod node id role master-id" for every pod, from the anchor's CLUSTER NODES;
  # exit status 1 while some pod is missing, failing or neither role.
  roles() {
    cli "$anchor" CLUSTER NODES | tr -d '\r' > "$work/view" || return 1
    awk 'NR == FNR { pod[$4] = $1; node[$4] = $3; want++; next }
         $1 in pod {
           role = "none"; m = "-"
           if ($3 ~ /fail|handshake|noaddr/) role = "none"
           else if ($3 ~ /master/ && NF > 8) role = "master"
           else if ($3 ~ /slave/ && $4 != "-") { role = "replica"; m = $4 }
           print pod[$1], node[$1], $1, role, m
           if (role != "none") got++
         }
         END { exit got != want }' "$work/ids" "$work/view" > "$work/roles"
  }
  # field POD N: field N of the pod's "pod address node id" line.
  field() { awk -v p="$1" -v f="$2" '$1 == p {print $f; exit}' "$work/ids"; }
  # shown ID WANT [ID WANT]...: the anchor shows each ID as a master that serves slots
  # (WANT "master") or as a replica of the master with id WANT.
  shown() {
    cli "$anchor" CLUSTER NODES 2>/dev/null | tr -d '\r' | awk -v want="$*" '
      BEGIN { n = split(want, w, " "); for (i = 1; i < n; i += 2) need[w[i]] = w[i + 1] }
      ($1 in need) && ((need[$1] == "master" && $3 ~ /master/ && $3 !~ /fail/ && NF > 8) ||
                       (need[$1] != "master" && $3 ~ /slave/ && $4 == need[$1])) { ok++ }
      END { exit ok != n / 2 }'
  }
  # describe POD: "pod (node)"; of_master ID: the pod and node of that master.
  describe() { echo "$1 ($(field "$1" 3))"; }
  of_id() { describe "$(awk -v i="$1" '$4 == i {print $1; exit}' "$work/ids")"; }
  settle=$(( $(date +%s) + REPAIR_SETTLE_SECONDS ))
  [ "$settle" -lt "$deadline" ] || settle=$deadline
  until roles; do
    if [ "$(date +%s)" -ge "$settle" ]; then
      log "repair: skipped, the cluster has not settled: $(awk '$4 == "none" {printf "%s ", $1}' "$work/roles")"
      : > "$work/roles"
      break
    fi
    sleep 0.1
  done
  actions=0
  while [ -s "$work/roles" ]; do
    action=$(awk -f "$(dirname "$0")/repair-roles.awk" "$work/roles") || die "repair-roles.awk failed"
    [ -n "$action" ] || break
    if [ "$actions" -ge "$REPAIR_MAX_ACTIONS" ]; then
      log "repair: stopping after $actions actions; next would be: $action"
      break
    fi
    # shellcheck disable=SC2086
    set -- $action
    case "$1" in
      failover)
        r="$2"; raddr=$(field "$r" 2); rid=$(field "$r" 4)
        mid=$(awk -v p="$r" '$1 == p {print $5; exit}' "$work/roles")
        log "repair: failover to $(describe "$r") from its master $(of_id "$mid"), whose node runs another master"
        # A graceful failover needs the replica in sync with its master.
        until cli "$raddr" INFO replication | tr -d '\r' | grep -q '^master_link_status:up'; do
          [ "$(date +%s)" -lt "$deadline" ] || die "repair: $r never got in sync with its master"
          sleep 0.1
        done
        while :; do
          cli "$raddr" CLUSTER FAILOVER > /dev/null || log "repair: CLUSTER FAILOVER on $r failed; retrying"
          retry=$(( $(date +%s) + 15 ))
          while ! shown "$rid" master "$mid" "$rid" && [ "$(date +%s)" -lt "$retry" ] && [ "$(date +%s)" -lt "$deadline" ]; do
            sleep 0.1
          done
          shown "$rid" master "$mid" "$rid" && break
          [ "$(date +%s)" -lt "$deadline" ] || die "repair: the failover to $r did not happen in time"
        done
        ;;
      replicate)
        r="$2"; mid="$3"
        log "repair: $(describe "$r") now replicates $(of_id "$mid")"
        cli "$(field "$r" 2)" CLUSTER REPLICATE "$mid" > /dev/null || die "repair: CLUSTER REPLICATE on $r failed"
        until shown "$(field "$r" 4)" "$mid"; do
          [ "$(date +%s)" -lt "$deadline" ] || die "repair: $r did not move in time"
          sleep 0.1
        done
        ;;
      swap)
        a="$2"; mb="$3"; b="$4"; ma="$5"
        log "repair: swap: $(describe "$a") now replicates $(of_id "$mb"), $(describe "$b") now replicates $(of_id "$ma")"
        # Back to back, so that neither master stays without a replica long enough for
        # Redis's own replica migration to step in.
        cli "$(field "$a" 2)" CLUSTER REPLICATE "$mb" > /dev/null || die "repair: CLUSTER REPLICATE on $a failed"
        cli "$(field "$b" 2)" CLUSTER REPLICATE "$ma" > /dev/null || die "repair: CLUSTER REPLICATE on $b failed"
        until shown "$(field "$a" 4)" "$mb" "$(field "$b" 4)" "$ma"; do
          [ "$(date +%s)" -lt "$deadline" ] || die "repair: the swap of $a and $b did not happen in time"
          sleep 0.1
        done
        ;;
      *) die "repair-roles.awk answered what bootstrap does not know: $action" ;;
    esac
    actions=$((actions + 1))
    changes=$((changes + 1))
    until roles; do
      [ "$(date +%s)" -lt "$deadline" ] || die "repair: the cluster did not settle after: $action"
      sleep 0.1
    done
  done
  [ "$actions" -eq 0 ] || log "repair: $actions action(s)"
fi

# 6. Wait until every pod sees a healthy, agreeing cluster and every replica has
#    finished its first sync (master_link_status:up): a replica still syncing cannot
#    take over, so a node lost right after the Job would take the cluster down.
while :; do
  ok=1
  unsynced=""
  while read -r pod addr node; do
    cli "$addr" CLUSTER INFO | grep -q '^cluster_state:ok' || ok=0
    # "role link" from INFO replication; a master has no link, a pod that does not
    # answer has neither.
    repl=$(cli "$addr" INFO replication 2>/dev/null | tr -d '\r' | awk -F: '
      $1 == "role" { role = $2 } $1 == "master_link_status" { link = $2 }
      END { if (role == "") print "? no answer"; else print role, (link == "" ? "-" : link) }')
    case "$repl" in
      master\ *) ;;
      "slave up") ;;
      *) ok=0; unsynced="$unsynced $pod (${repl#* })" ;;
    esac
  done < "$pods"
  if [ "$ok" = 1 ] && admin_cli --cluster check "$anchor:$REDIS_PORT" > "$work/check.log" 2>&1; then break; fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    cat "$work/check.log" >&2 2>/dev/null || true
    [ -z "$unsynced" ] || log "replication link not up:$unsynced"
    die "cluster not healthy after ${BOOTSTRAP_TIMEOUT_SECONDS}s"
  fi
  sleep 0.25
done

if [ "$changes" -eq 0 ]; then
  log "cluster healthy; nothing to do"
else
  log "cluster healthy after $changes change(s)"
fi
