"""Checkers: pure functions from a history (and a final read) to figures and a verdict.
They never touch a live cluster."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from harness.history import FAIL, INFO, OK, History, Op


@dataclass
class SetResult:
    """Jepsen's set checker, split by whether writes were WAITed for replicas."""

    attempted: int
    acknowledged: int
    lost: list[str]  # acknowledged, absent from the final read
    lost_waited: list[str]  # ... of which WAITed and acknowledged by the replicas asked for
    lost_unwaited: list[str]
    unexpected: list[str]  # present but never attempted, or holding a value nobody wrote
    recovered: list[str]  # outcome unknown (info), present
    failed_but_present: list[str]  # reported as surely not applied, yet present

    @property
    def valid(self) -> bool:
        return not (self.lost or self.unexpected or self.failed_but_present)

    def summary(self) -> dict:
        out = asdict(self)
        for key in ("lost", "lost_waited", "lost_unwaited", "unexpected", "recovered", "failed_but_present"):
            out[f"{key}_count"] = len(out[key])
            out[key] = out[key][:50]  # examples; the counts are complete
        out["valid"] = self.valid
        return out


def check_set(history: History, present: set[str] | dict[str, str], wait_replicas: int = 1) -> SetResult:
    """Compare every write the history attempted with what a final read found: the keys present
    (a set), or every key under the run's prefix with its value (a mapping; each write carries a
    value of its own, so a value nobody wrote, or a key nobody attempted, is unexpected)."""
    writes = [op for op in history.ops if op.f == "write"]
    written: dict[str, set[str]] = {}
    for op in writes:
        written.setdefault(op.key, set()).add(str(op.value))
    values = present if isinstance(present, dict) else None

    def there(op: Op) -> bool:
        if op.key not in present:
            return False
        return values is None or len(written[op.key]) > 1 or values[op.key] == str(op.value)

    ok = [op for op in writes if op.outcome == OK]
    waited_ok = {op.key for op in ok if op.waited and (op.acks or 0) >= wait_replicas}
    lost = sorted(op.key for op in ok if not there(op))
    unexpected = set(present) - set(written)
    if values is not None:
        unexpected |= {k for k, v in values.items() if k in written and v not in written[k]}
    return SetResult(
        attempted=len(written),
        acknowledged=len(ok),
        lost=lost,
        lost_waited=[k for k in lost if k in waited_ok],
        lost_unwaited=[k for k in lost if k not in waited_ok],
        unexpected=sorted(unexpected),
        recovered=sorted(op.key for op in writes if op.outcome == INFO and there(op)),
        failed_but_present=sorted(op.key for op in writes if op.outcome == FAIL and there(op)),
    )


@dataclass
class Availability:
    ok_fraction: float
    ops: int
    windows: list[tuple[float, float]] = field(default_factory=list)  # (start, end) of runs of non-ok ops

    @property
    def longest(self) -> float:
        return max((end - start for start, end in self.windows), default=0.0)

    @property
    def total(self) -> float:
        return sum(end - start for start, end in self.windows)

    def summary(self) -> dict:
        return {
            "ok_fraction": self.ok_fraction,
            "ops": self.ops,
            "windows": self.windows,
            "longest_s": self.longest,
            "total_s": self.total,
        }


def availability(history: History, f: str | None = None) -> Availability:
    """Windows in which operations did not succeed: from the invoke of the first non-ok op
    after a success to the completion of the next success (or of the last op)."""
    ops = sorted((op for op in history.completed() if f is None or op.f == f), key=lambda o: o.invoke)
    if not ops:
        return Availability(ok_fraction=0.0, ops=0)
    windows: list[tuple[float, float]] = []
    start: float | None = None
    for op in ops:
        if op.outcome != OK and start is None:
            start = op.invoke
        elif op.outcome == OK and start is not None and op.invoke >= start:
            windows.append((start, op.complete or op.invoke))
            start = None
    if start is not None:
        windows.append((start, max(op.complete or op.invoke for op in ops)))
    return Availability(ok_fraction=sum(op.outcome == OK for op in ops) / len(ops), ops=len(ops), windows=windows)


def recovery_time(probe: History | list[Op], fault: float) -> float | None:
    """Seconds from the fault to the first success of the probe after its first failure
    following the fault; 0.0 when the probe never failed after it; None when it never
    succeeded again."""
    ops = probe.ops if isinstance(probe, History) else probe
    after = sorted((op for op in ops if op.outcome is not None and op.invoke >= fault), key=lambda o: o.invoke)
    first_bad = next((op for op in after if op.outcome != OK), None)
    if first_bad is None:
        return 0.0
    first_good = next((op for op in after if op.outcome == OK and op.invoke >= first_bad.invoke), None)
    if first_good is None:
        return None
    return (first_good.complete or first_good.invoke) - fault


def probe_rate(probe: History | list[Op]) -> float:
    """Operations per second the probe actually achieved (it must be ≥ 100 Hz to time recovery)."""
    ops = [op for op in (probe.ops if isinstance(probe, History) else probe) if op.outcome is not None]
    if len(ops) < 2:
        return 0.0
    span = max(op.invoke for op in ops) - min(op.invoke for op in ops)
    return (len(ops) - 1) / span if span > 0 else 0.0


def probe_rate_between(probe: History | list[Op], start: float, end: float) -> float:
    """Probe operations started per second within [start, end]: its rate while a fault lasted."""
    ops = probe.ops if isinstance(probe, History) else probe
    return sum(start <= op.invoke <= end for op in ops) / (end - start) if end > start else 0.0


def p99(values: list[float]) -> float:
    """The 99th percentile of `values` (nearest rank from below); they need not be sorted."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def probe_gap(probe: History | list[Op], start: float, end: float) -> tuple[float, float]:
    """(the longest time within [start, end] in which the probe could have missed a recovery,
    when it began): the precision to which the probe can time a recovery in that window.

    The probe watches at each invocation, and all the while an operation that a server answered
    (ok) was in flight: a server that held the request (a paused master during a manual
    failover, a write waiting for its replica) answered the moment it could serve, so that wait
    is observed, not missed. An operation that timed out or failed watched nothing while it
    waited (it may have been stuck on a dead master's socket while the replica took over)."""
    ops = probe.ops if isinstance(probe, History) else probe
    watched = [(op.invoke, op.complete if op.outcome == OK and op.complete is not None else op.invoke) for op in ops]
    seen = sorted((max(lo, start), min(hi, end)) for lo, hi in watched if lo <= end and hi >= start)
    gap, at, reached = 0.0, start, start
    for lo, hi in [*seen, (end, end)]:
        if lo - reached > gap:
            gap, at = lo - reached, reached
        reached = max(reached, hi)
    return gap, at


def isolated_master_figures(history: History, fault_time: float, address: str, present: set[str] | dict[str, str]) -> dict[str, Any]:
    """Writes the isolated master acknowledged after the partition began: how many, until when, how many lost."""
    acked = [
        op
        for op in history.ops
        if op.f == "write" and op.outcome == OK and op.node == address and op.complete is not None and op.complete >= fault_time
    ]
    last = max((op.complete for op in acked), default=None)
    return {
        "address": address,
        "acknowledged": len(acked),
        "last_ack_after_s": None if last is None else round(last - fault_time, 3),
        "lost": sum(op.key not in present for op in acked),
        "lost_waited": sum(op.key not in present and bool(op.acks) for op in acked),
    }
