"""Reading a pod's Redis container status from the API: for `KubernetesPlatform.hold_down`/`release`,
and why it last stopped.

Holding a pod down on Kubernetes is a SIGKILL from the node and an image patch the container's
command cannot start in. The kubelet may restart Redis (old image) before it sees the patch, and a
running container whose spec changed is stopped gracefully: its preStop hook runs, and the
reference's hands a master's slots over, so "killed" would become a manual failover. The kubelet
says what it did in the container's status (restartCount, state, image) and in a `Killing` event
(pkg/kubelet/kuberuntime/kuberuntime_container.go, killContainer: reason "Killing", recorded when it
stops a running container; "Container redis definition changed, will be restarted" for a spec
change). On release, a container that failed to start waits out the kubelet's crash back-off, which
the waiting state's message states ("back-off 20s restarting failed container=...";
pkg/kubelet/kuberuntime/kuberuntime_manager.go, doBackOff).
"""

from __future__ import annotations

import re
from typing import Any

BACKOFF = re.compile(r"back-off ((?:\d+(?:\.\d+)?(?:h|ms|m|s))+) restarting failed container", re.IGNORECASE)
UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def container_status(pod: dict[str, Any], container: str = "redis") -> dict[str, Any]:
    found = (pod.get("status") or {}).get("containerStatuses") or []
    return next((s for s in found if s.get("name") == container), {})


def restarts(status: dict[str, Any]) -> int:
    return int(status.get("restartCount") or 0)


def came_back(status: dict[str, Any], restarts_before: int) -> bool:
    """A new instance of the container runs: the kubelet restarted it since `restarts_before`."""
    return "running" in (status.get("state") or {}) and restarts(status) > restarts_before


def held(status: dict[str, Any], hold_image: str) -> bool:
    """The kubelet has taken the hold image for the container, and it does not run."""
    return status.get("image") == hold_image and "running" not in (status.get("state") or {})


def go_duration_seconds(text: str) -> float:
    """Go's time.Duration as String() writes it ("10s", "1m20s", "5m0s") in seconds."""
    return sum(float(n) * UNIT_SECONDS[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s)", text))


def backoff_seconds(status: dict[str, Any]) -> float | None:
    """The crash back-off the kubelet holds the container in, from its waiting message; None when it does not."""
    waiting = (status.get("state") or {}).get("waiting") or {}
    if waiting.get("reason") != "CrashLoopBackOff":
        return None
    match = BACKOFF.search(waiting.get("message") or "")
    return go_duration_seconds(match.group(1)) if match else None


def graceful_stops(events: list[dict[str, Any]], pod: str, container: str = "redis") -> dict[str, str]:
    """The kubelet's `Killing` events of the pod's container, by uid and count → message: a stop
    the kubelet made itself (with the preStop hook), as opposed to a SIGKILL from the node."""
    found = {}
    for event in events:
        involved = event.get("involvedObject") or {}
        if event.get("reason") != "Killing" or involved.get("name") != pod:
            continue
        if involved.get("fieldPath") not in (None, f"spec.containers{{{container}}}"):
            continue
        key = f"{(event.get('metadata') or {}).get('uid') or (event.get('metadata') or {}).get('name')}#{event.get('count') or 1}"
        found[key] = event.get("message") or "Killing"
    return found


def last_termination(status: dict[str, Any]) -> str:
    """Why the container last stopped (lastState.terminated.reason: OOMKilled, Error, …), or ""."""
    return str(((status.get("lastState") or {}).get("terminated") or {}).get("reason") or "")
