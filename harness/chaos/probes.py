"""chaostoolkit probes for the steady-state hypothesis (module harness.chaos.probes).

The steady state of the reference: cluster_state ok on every pod, every slot covered,
every master with a connected replica, a write/read round trip, and the recording
workload's p99 under the SLO. Each probe returns a value a tolerance can judge."""

from __future__ import annotations

import secrets
import time
from typing import Any

from harness.chaos.session import session
from harness.checkers import p99
from harness.observe import snapshot
from harness.topology import check_invariants

Configuration = dict[str, Any]


def _violations(configuration: Configuration | None, kinds: set[str]) -> list[str]:
    platform = session(configuration).platform
    masters, _ = platform.layout()
    # The reference's steady state asks for a replica per master whatever the overlay says.
    found = check_invariants(snapshot(platform), expected_masters=masters, replicas_per_master=1)
    return [v.message for v in found if v.code in kinds]


def cluster_ok(configuration: Configuration | None = None) -> bool:
    """Every pod answers and reports cluster_state:ok."""
    return not _violations(configuration, {"pod-unreachable", "cluster-state"})


def all_slots_covered(configuration: Configuration | None = None) -> bool:
    """All 16384 slots served, by one master each, and every pod agrees."""
    return not _violations(configuration, {"slots-uncovered", "slots-overlap", "slots-disagree"})


def masters_have_replicas(configuration: Configuration | None = None) -> bool:
    """Every master has at least one replica with master_link_status:up."""
    return not _violations(configuration, {"master-without-replica", "master-count"})


def round_trip(configuration: Configuration | None = None) -> bool:
    """A SET then GET of a fresh key through the cluster client returns what was written."""
    client = session(configuration).platform.client(socket_timeout=2.0)
    try:
        key, value = f"app:chaos:rt:{secrets.token_hex(4)}", secrets.token_hex(8)
        client.set(key, value, ex=60)
        return client.get(key) == value
    except Exception:
        return False
    finally:
        client.close()


def workload_p99_ms(configuration: Configuration | None = None, window_s: float = 5.0, samples: int = 200) -> float:
    """p99 latency (ms) of the recording workload's successful writes in the last `window_s`;
    without a running workload, of `samples` writes sent now."""
    s = session(configuration)
    rec = s.recording
    if rec is not None and rec.stopped_at is None:
        since = rec.history.now() - window_s
        latencies = [
            op.latency for op in rec.history.completed() if op.f == "write" and op.outcome == "ok" and op.complete >= since
        ]
    else:
        latencies = _sample(s.platform, samples)
    return round(p99(latencies) * 1000, 3) if latencies else float("inf")


def _sample(platform, samples: int) -> list[float]:
    client = platform.client(socket_timeout=2.0)
    out = []
    try:
        for i in range(10):  # connections and TLS handshakes are not what is measured
            client.set(f"app:chaos:lat:{i}", "x", ex=60)
        for i in range(samples):
            started = time.monotonic()
            client.set(f"app:chaos:lat:{i % 32}", "x", ex=60)
            out.append(time.monotonic() - started)
    except Exception:
        pass
    finally:
        client.close()
    return out


def within_slo(value: float | None = None, key: str = "write_p99_ms", section: str = "steady_state") -> bool:
    """Tolerance probe: `value` is at most the SLO file's `section.key`."""
    from harness import slo

    return value is not None and value <= slo.load().value(section, key)
