"""A recorded experiment: background writers (WAITed and not) plus a ≥100 Hz probe on
the shard under attack, all in one timeline; afterwards a final read and every
checker's figures. Suites and chaos experiments inject the fault in between."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from harness.checkers import availability, check_set, probe_rate, recovery_time
from harness.history import History
from harness.judgement import Figures
from harness.platforms.base import Platform
from harness.writers import Probe, WorkloadLimits, WriteWorkload, key_on_master, read_keys


@dataclass
class Recording:
    platform: Platform
    history: History
    probe_history: History
    workloads: list[WriteWorkload] = field(default_factory=list)
    probe: Probe | None = None
    stopped_at: float | None = None

    def mark(self, name: str, **details: Any) -> float:
        return self.history.mark(name, **details)

    def run_for(self, seconds: float) -> None:
        time.sleep(seconds)

    def stop(self) -> None:
        for w in self.workloads:
            w.stop()
        if self.probe is not None:
            self.probe.stop()
        self.stopped_at = self.history.now()

    def errors(self) -> list[str]:
        return [e for w in [*self.workloads, *([self.probe] if self.probe else [])] for e in w.errors]


def start_recording(
    platform: Platform,
    probe_master_address: str | None = None,
    waited_workers: int = 2,
    unwaited_workers: int = 2,
    rate: float = 100.0,
    max_seconds: float = 180.0,
    probe_rate_hz: float = 200.0,
) -> Recording:
    """Start writers (bounded by max_seconds) and, when a master is named, a probe on one of its slots."""
    history = History()
    run = secrets.token_hex(3)
    rec = Recording(platform, history, History(t0=history.t0, wall_t0=history.wall_t0))
    limits = WorkloadLimits(max_ops=int(rate * max_seconds) + 1, max_seconds=max_seconds)
    if waited_workers:
        rec.workloads.append(WriteWorkload(platform, history, f"{run}w", waited_workers, rate, wait_replicas=1, limits=limits))
    if unwaited_workers:
        rec.workloads.append(
            WriteWorkload(platform, history, f"{run}u", unwaited_workers, rate, limits=limits, first_process=waited_workers)
        )
    if probe_master_address is not None:
        client = platform.client()
        key = key_on_master(client, probe_master_address, prefix=f"app:probe:{run}")
        client.close()
        rec.probe = Probe(platform, rec.probe_history, key, rate=probe_rate_hz, max_seconds=max_seconds)
    for w in rec.workloads:
        w.start()
    if rec.probe is not None:
        rec.probe.start()
    return rec


def final_read(rec: Recording) -> set[str]:
    """The keys the workload wrote that are present now."""
    return read_keys(rec.platform, sorted({op.key for op in rec.history.ops if op.f == "write"}))


def check(rec: Recording, fault_time: float | None, present: set[str] | None = None) -> Figures:
    """Every checker on the history and a final read (made here unless `present` is one already):
    the figures a test asserts on and a report shows."""
    if present is None:
        present = final_read(rec)
    result = check_set(rec.history, present)
    avail = availability(rec.history, f="write")
    writes = [op for op in rec.history.ops if op.f == "write"]
    figures = Figures(
        writes=result.attempted,
        acknowledged=result.acknowledged,
        lost=len(result.lost),
        lost_waited=len(result.lost_waited),
        lost_unwaited=len(result.lost_unwaited),
        unexpected=len(result.unexpected),
        recovered=len(result.recovered),
        failed_but_present=len(result.failed_but_present),
        fail_ops=sum(op.outcome == "fail" for op in writes),
        info_ops=sum(op.outcome == "info" for op in writes),
        ok_fraction=round(avail.ok_fraction, 4),
        unavailable_s=round(avail.longest, 3),
        unavailable_windows=[(round(a, 3), round(b, 3)) for a, b in avail.windows],
        set=result.summary(),
        workload_errors=rec.errors(),
    )
    if rec.probe is not None:
        # The probe sees the attacked shard alone: its outage is the shard's unavailability.
        shard = availability(rec.probe_history)
        figures.unavailable_s = round(shard.longest, 3)
        figures.unavailable_windows = [(round(a, 3), round(b, 3)) for a, b in shard.windows]
        figures.probe_hz = round(probe_rate(rec.probe_history), 1)
        if fault_time is not None:
            rt = recovery_time(rec.probe_history, fault_time)
            figures.recovery_s = None if rt is None else round(rt, 3)
    return figures
