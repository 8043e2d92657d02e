"""Observing from outside the cluster: where the harness cannot reach pod addresses (on
Kubernetes, outside the runner Job), snapshots ask the pods through exec_redis_cli and must see
what a direct client sees."""

from __future__ import annotations

import pytest

from harness.observe import snapshot
from harness.topology import check_invariants

pytestmark = pytest.mark.cluster


def view(states):
    return sorted(
        (s.pod, s.myself().id, s.myself().is_master, s.cluster_info["cluster_state"], s.replication["role"]) for s in states
    )


def test_a_snapshot_through_exec_sees_what_a_client_sees(healthy, monkeypatch):
    direct = snapshot(healthy)
    monkeypatch.setattr(healthy, "reaches_pods", lambda: False)
    monkeypatch.setattr(healthy, "node_client", lambda *a, **k: pytest.fail("a direct connection was opened"))
    through_exec = snapshot(healthy)
    assert all(s.error is None for s in through_exec), [s.error for s in through_exec]
    assert view(through_exec) == view(direct)
    assert check_invariants(through_exec) == check_invariants(direct)  # the same findings, whatever the layout
