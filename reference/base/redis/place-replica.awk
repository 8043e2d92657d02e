# Chooses the master a pod joins as a replica of (bootstrap.sh, step 4).
#
# Input, one record per line:
#   master <id> <address> <pod> <node> <replica-count>   every master that serves slots
#   pod <pod> <node>                                     pods still to place: the first one is
#                                                        placed now, the others come after it
# Output: "<id> <address>" of the chosen master; nothing if there is no master.
#
# The choice, in order of precedence:
#   1. the fewest replicas (replicas stay balanced over masters): the candidates;
#   2. a master on another node than the pod, such that the pods after it that will
#      fill the other candidates can still each get one on another node (a matching
#      of those pods to those masters); when that is impossible, the candidate that
#      leaves the fewest replicas on their master's node, preferring this pod off its
#      master's node;
#   3. the master that the fewest of the remaining pods could take (pods on another
#      node than that master);
#   4. the master's pod ordinal (<prefix>-<i>), then its pod name: deterministic,
#      never by node id, which is random.
# Without a node map every pod is its own node, and 3 and 4 give pod i+m to master
# i, as a bootstrap that ignores nodes does.

function ordinal(pod) {
  return match(pod, /-[0-9]+$/) ? substr(pod, RSTART + 1) + 0 : -1
}

# better(a, b): is candidate a a better choice than candidate b?
function better(a, b) {
  if (score[a] != score[b]) return score[a] > score[b]
  if (same[a] != same[b]) return same[a] < same[b]
  if (takers[a] != takers[b]) return takers[a] < takers[b]
  if (ord[a] != ord[b]) return (ord[a] < 0) ? 0 : (ord[b] < 0) ? 1 : ord[a] < ord[b]
  if (mpod[a] != mpod[b]) return mpod[a] < mpod[b]
  return id[a] < id[b]
}

# augment(u): Kuhn's augmenting path for pod u over the masters in `open`.
function augment(u,    v) {
  for (v = 1; v <= m; v++) {
    if (!open[v] || mnode[v] == pnode[u] || seen[v] == stamp) continue
    seen[v] = stamp
    if (holder[v] == 0 || augment(holder[v])) { holder[v] = u; return 1 }
  }
  return 0
}

# matched(c, last): how many of pods 2..last get a candidate other than c on another node.
function matched(c, last,    v, u, n) {
  for (v = 1; v <= m; v++) { open[v] = (count[v] == low && v != c); holder[v] = 0 }
  n = 0
  for (u = 2; u <= last; u++) { stamp++; if (augment(u)) n++ }
  return n
}

$1 == "master" && NF >= 6 {
  m++
  id[m] = $2; addr[m] = $3; mpod[m] = $4; mnode[m] = $5; count[m] = $6 + 0
  ord[m] = ordinal($4)
  next
}
$1 == "pod" && NF >= 3 {
  p++
  ppod[p] = $2; pnode[p] = $3
  next
}
NF > 0 { printf "place-replica.awk: line %d not understood: %s\n", NR, $0 > "/dev/stderr"; bad = 1 }

END {
  if (bad) exit 2
  if (m == 0) exit 0
  if (p == 0) { print "place-replica.awk: no pod to place" > "/dev/stderr"; exit 2 }
  low = count[1]
  for (i = 2; i <= m; i++) if (count[i] < low) low = count[i]
  # The pods that will fill the candidates (the masters with the fewest replicas).
  group = 0
  for (i = 1; i <= m; i++) if (count[i] == low) group++
  if (group > p) group = p
  best = 0
  for (i = 1; i <= m; i++) {
    if (count[i] != low) continue
    same[i] = (mnode[i] == pnode[1]) ? 1 : 0
    takers[i] = 0
    for (j = 2; j <= p; j++) if (pnode[j] != mnode[i]) takers[i]++
    score[i] = 1 - same[i] + matched(i, group)
    if (best == 0 || better(i, best)) best = i
  }
  print id[best], addr[best]
}
