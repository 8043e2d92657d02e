"""The kubelet's crash back-off for a container that died, as client-go's flowcontrol.Backoff keeps
it for the kubelet (pkg/kubelet/kuberuntime/kuberuntime_manager.go, doBackOff; Backoff.Next and
IsInBackOffSince in k8s.io/client-go/util/flowcontrol/backoff.go): the first crash restarts at
once; each later one waits the current back-off, which starts at 10 s and doubles up to 5 minutes;
a crash more than twice that maximum (10 minutes) after the last one starts afresh.
"""

from __future__ import annotations

INITIAL_SECONDS = 10.0
MAX_SECONDS = 300.0


def after_crash(backoff_s: float, backoff_at: float, now: float, immediate_s: float) -> tuple[float, float, float]:
    """(delay before the restart, the back-off after it, when it was set) for a crash at `now`, given
    the back-off so far (0: none) and when it was set; `immediate_s` stands for an at-once restart
    (the kubelet's next sync)."""
    if backoff_s <= 0 or now - backoff_at > 2 * MAX_SECONDS:
        return immediate_s, INITIAL_SECONDS, now
    return backoff_s, min(backoff_s * 2, MAX_SECONDS), now
