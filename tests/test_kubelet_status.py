"""What the kubelet reports of a held-down container (harness/platforms/kubernetes/kubelet_status.py)."""

from __future__ import annotations

import pytest

from harness.platforms.kubernetes import kubelet_status

HOLD = "registry.k8s.io/pause:3.10"


def status(state: dict, restarts: int = 0, image: str = "redis:7") -> dict:
    return {"name": "redis", "state": state, "restartCount": restarts, "image": image}


@pytest.mark.parametrize(
    ("message", "seconds"),
    [
        ("back-off 10s restarting failed container=redis pod=redis-cluster-1_redis(5d1f)", 10.0),
        ("back-off 2m40s restarting failed container=redis pod=redis-cluster-1_redis(5d1f)", 160.0),
        ("Back-off 5m0s restarting failed container=redis pod=redis-cluster-1_redis", 300.0),  # before Kubernetes 1.20
    ],
)
def test_the_crash_backoff_is_read_from_the_kubelets_message(message, seconds):
    waiting = status({"waiting": {"reason": "CrashLoopBackOff", "message": message}})
    assert kubelet_status.backoff_seconds(waiting) == seconds


def test_no_backoff_while_the_container_waits_for_something_else_or_runs():
    assert kubelet_status.backoff_seconds(status({"waiting": {"reason": "ErrImagePull", "message": "back-off 10s"}})) is None
    assert kubelet_status.backoff_seconds(status({"running": {}})) is None


def test_a_restarted_container_came_back_and_a_held_one_did_not():
    assert kubelet_status.came_back(status({"running": {}}, restarts=1), restarts_before=0)
    assert not kubelet_status.came_back(status({"running": {}}, restarts=0), restarts_before=0)  # the one killed, not yet seen dead
    assert not kubelet_status.came_back(status({"terminated": {}}, restarts=1), restarts_before=0)
    assert kubelet_status.held(status({"waiting": {"reason": "RunContainerError"}}, image=HOLD), HOLD)
    assert not kubelet_status.held(status({"running": {}}, image=HOLD), HOLD)
    assert not kubelet_status.held(status({"waiting": {"reason": "CrashLoopBackOff"}}), HOLD)


def event(name: str, reason: str, count: int = 1, uid: str = "e1", field: str = "spec.containers{redis}") -> dict:
    return {
        "metadata": {"uid": uid},
        "reason": reason,
        "count": count,
        "message": "Container redis definition changed, will be restarted",
        "involvedObject": {"kind": "Pod", "name": name, "fieldPath": field},
    }


def test_graceful_stops_are_the_kubelets_killing_events_of_that_container():
    events = [
        event("redis-cluster-1", "Killing"),
        event("redis-cluster-2", "Killing", uid="e2"),
        event("redis-cluster-1", "Started", uid="e3"),
        event("redis-cluster-1", "Killing", uid="e4", field="spec.containers{exporter}"),
    ]
    assert kubelet_status.graceful_stops(events, "redis-cluster-1") == {"e1#1": "Container redis definition changed, will be restarted"}
    # the same event counted again is a new stop
    assert set(kubelet_status.graceful_stops([event("redis-cluster-1", "Killing", count=2)], "redis-cluster-1")) == {"e1#2"}
