# Chooses the next role repair of an existing cluster (bootstrap.sh, step 5): after
# failovers, masters drift onto one node and replicas onto their master's node.
#
# Input, one line per pod that is a member of the cluster:
#   <pod> <node> <id> <role> <master-id>
# role: "master" (a master that serves slots), "replica" (master-id: the id of the master
# it replicates) or "none" (anything else: a master without slots, a member in flux);
# master-id is "-" when the pod is no replica. A replica of a master not in the input
# (or not serving slots) counts as no replica.
# Output: at most one line, the next action; nothing when the roles need no repair or
# when no repair improves them:
#   failover <replica-pod>                        CLUSTER FAILOVER on it (graceful)
#   replicate <replica-pod> <master-id>           CLUSTER REPLICATE on it
#   swap <pod-a> <master-id-b> <pod-b> <master-id-a>
#                                                 both replicas change masters (two
#                                                 CLUSTER REPLICATE calls, back to back)
#
# The rules, in order; the first that yields an action wins:
#   1. masters on distinct nodes: when the pods' nodes are at least as many as the masters
#      and two masters share a node, fail over to a replica R of such a master M where R's
#      node runs no master. Candidates by (fewest other replicas of M on R's node, which
#      would follow R onto its own node), then M's ordinal, then R's ordinal.
#   2. when masters share a node but no such replica exists: swap the masters of a replica
#      R' on a node without masters (replicating a master C on a node of its own) and a
#      replica R of a master M on a shared node: R' then replicates M and rule 1 applies
#      next. Swaps that leave R off C's node first, then by M's, R''s, R's ordinal (a
#      swap that puts R on C's node is left to rule 4 to mend).
#   3. balance: when a master has at least two replicas fewer than another, move a replica
#      of the one with the most (not on the other master's node; preferably one on its own
#      master's node, then by ordinal) to the one with the fewest. (It completes a swap
#      interrupted half-way.)
#   4. no replica on its master's node: for the first such replica R (by ordinal) of M,
#      a) if M keeps another replica on another node than M and some master M2 (not on R's
#         node) has fewer replicas than M, move R to M2 (the fewest replicas, then ordinal);
#      b) otherwise swap with a replica R2 of another master M2, where R's node is not M2's
#         node and R2's node is not M's node: R replicates M2, R2 replicates M. Candidates
#         by (R2 on M2's node first: one swap mends both), then R2's ordinal.
# Every action makes things strictly better (rule 1 removes a shared master, 2 enables
# rule 1, 3 evens replica counts, 4 lowers the number of replicas on their master's node,
# and 2-4 never move a master), so the loop that applies them ends; a layout that no
# action improves (every pod on one node, more masters than nodes) gets no action.
# Ties break by pod ordinal (<prefix>-<i>), then name, never by node id (random).

function ordinal(pod) {
  return match(pod, /-[0-9]+$/) ? substr(pod, RSTART + 1) + 0 : -1
}

# before(a, b): does pod index a come before pod index b?
function before(a, b) {
  if (ord[a] != ord[b]) return (ord[a] < 0) ? 0 : (ord[b] < 0) ? 1 : ord[a] < ord[b]
  return pod[a] < pod[b]
}

# sort_pods(): order[1..n], the pods by ordinal (insertion sort: n is small).
function sort_pods(    i, j, t) {
  for (i = 1; i <= n; i++) order[i] = i
  for (i = 2; i <= n; i++) {
    t = order[i]
    for (j = i - 1; j >= 1 && before(t, order[j]); j--) order[j + 1] = order[j]
    order[j + 1] = t
  }
}

# on_node(m, nd, except): how many replicas of master m run on node nd, replica `except` aside.
function on_node(m, nd, except,    i, c) {
  c = 0
  for (i = 1; i <= n; i++) if (i != except && master[i] == m && node[i] == nd) c++
  return c
}

NF == 5 && ($4 == "master" || $4 == "replica" || $4 == "none") {
  n++
  pod[n] = $1; node[n] = $2; id[n] = $3; role[n] = $4; mid[n] = $5
  ord[n] = ordinal($1)
  if ($3 in by_id) { printf "repair-roles.awk: id %s appears twice\n", $3 > "/dev/stderr"; bad = 1 }
  by_id[$3] = n
  next
}
NF > 0 { printf "repair-roles.awk: line %d not understood: %s\n", NR, $0 > "/dev/stderr"; bad = 1 }

END {
  if (bad) exit 2
  sort_pods()
  nodes = 0; masters = 0
  for (i = 1; i <= n; i++) {
    if (!(node[i] in seen_node)) { seen_node[node[i]] = 1; nodes++ }
    if (role[i] == "master") { masters++; on[node[i]]++ }
  }
  # master[i]: the index of the master replica i follows (0: none); count[m]: its replicas.
  for (i = 1; i <= n; i++) {
    master[i] = 0
    if (role[i] == "replica" && (mid[i] in by_id) && role[by_id[mid[i]]] == "master") {
      master[i] = by_id[mid[i]]; count[master[i]]++
    }
  }
  if (masters == 0) exit 0
  shared = 0
  for (nd in on) if (on[nd] > 1) shared = 1

  # Rule 1: a replica on a node without masters takes over from a master on a shared node.
  if (nodes >= masters && shared) {
    best = 0
    for (k = 1; k <= n; k++) {
      r = order[k]; m = master[r]
      if (!m || on[node[m]] < 2 || (node[r] in on)) continue
      cost[r] = on_node(m, node[r], r)
      if (!best || cost[r] < cost[best] || (cost[r] == cost[best] && before(m, master[best]))) best = r
    }
    if (best) { print "failover", pod[best]; exit 0 }

    # Rule 2: a swap that gives a master on a shared node a replica on a node without
    # masters; first one that puts no replica on its master's node, else any (rule 4
    # mends that once rule 1 is done).
    for (pass = 1; pass <= 2; pass++)
      for (a = 1; a <= n; a++) {
        m = order[a]
        if (role[m] != "master" || on[node[m]] < 2) continue
        for (b = 1; b <= n; b++) {
          rp = order[b]; c = master[rp]
          if (!c || c == m || (node[rp] in on)) continue
          for (d = 1; d <= n; d++) {
            r = order[d]
            if (master[r] != m || (pass == 1 && node[r] == node[c])) continue
            print "swap", pod[rp], id[m], pod[r], id[c]; exit 0
          }
        }
      }
  }

  # Rule 3: even out replica counts that differ by two or more.
  low = -1; high = -1
  for (i = 1; i <= n; i++) if (role[i] == "master") {
    if (low < 0 || count[i] < low) low = count[i]
    if (high < 0 || count[i] > high) high = count[i]
  }
  if (high - low >= 2) {
    for (a = 1; a <= n; a++) {
      t = order[a]
      if (role[t] != "master" || count[t] != low) continue
      best = 0
      for (b = 1; b <= n; b++) {
        r = order[b]; s = master[r]
        if (!s || count[s] != high || node[r] == node[t]) continue
        if (!best || (node[r] == node[s] && node[best] != node[master[best]])) best = r
      }
      if (best) { print "replicate", pod[best], id[t]; exit 0 }
    }
  }

  # Rule 4: no replica on its master's node.
  for (a = 1; a <= n; a++) {
    r = order[a]; m = master[r]
    if (!m || node[r] != node[m]) continue
    # a) a move, when M keeps a replica on another node and M2 has fewer replicas.
    if (count[m] - 1 - on_node(m, node[m], r) > 0) {
      best = 0
      for (b = 1; b <= n; b++) {
        m2 = order[b]
        if (role[m2] != "master" || m2 == m || node[m2] == node[r] || count[m2] >= count[m]) continue
        if (!best || count[m2] < count[best]) best = m2
      }
      if (best) { print "replicate", pod[r], id[best]; exit 0 }
    }
    # b) a swap with a replica of another master.
    best = 0
    for (b = 1; b <= n; b++) {
      r2 = order[b]; m2 = master[r2]
      if (!m2 || m2 == m || node[r] == node[m2] || node[r2] == node[m]) continue
      if (!best || (node[r2] == node[m2] && node[best] != node[master[best]])) best = r2
    }
    if (best) { print "swap", pod[r], id[master[best]], pod[best], id[m]; exit 0 }
  }
}
