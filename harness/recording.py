"""A recorded experiment: background writers (WAITed and not, each aimed at one shard) plus a
probe on the shard under attack, all in one timeline; afterwards a final read of every key the
run left behind and every checker's figures. Suites and chaos experiments inject the fault in
between."""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from harness import slo
from harness.checkers import availability, check_set, probe_gap, probe_rate, probe_rate_between, recovery_time
from harness.cluster import node_timeout_s
from harness.history import OK, History
from harness.judgement import Figures
from harness.platforms.base import Platform
from harness.writers import Probe, WorkloadLimits, WriteWorkload, key_on_master, read_prefix, shard_tags


@dataclass
class Recording:
    platform: Platform
    history: History
    probe_history: History
    workloads: list[WriteWorkload] = field(default_factory=list)
    probe: Probe | None = None
    stopped_at: float | None = None
    run: str = ""  # every key the writers write starts with app:w:<run>
    masters: list[str] = field(default_factory=list)  # the shards' masters at the start, by writer shard index
    probed: str | None = None  # the probed master's address

    def mark(self, name: str, **details: Any) -> float:
        return self.history.mark(name, **details)

    def run_for(self, seconds: float) -> None:
        time.sleep(seconds)

    def warm_up(self, seconds: float, start_within: float = 30.0) -> None:
        """The workload's pace before a fault: once every writer and the probe have completed an
        operation (their clients connected: a condition, not a time, since a loaded machine connects
        slowly; at most `start_within` seconds, a cluster that answers nothing is the checks' to
        judge), `seconds` more of it."""
        deadline = time.monotonic() + start_within
        while time.monotonic() < deadline and not self._all_started():
            time.sleep(0.02)
        time.sleep(seconds)

    def _all_started(self) -> bool:
        wanted = {w.first_process + n for w in self.workloads for n in range(w.workers)}
        if not wanted <= {op.process for op in self.history.completed()}:
            return False
        return self.probe is None or next(self.probe_history.completed(), None) is not None

    def stop(self) -> None:
        for w in self.workloads:
            w.stop()
        if self.probe is not None:
            self.probe.stop()
        self.stopped_at = self.history.now()

    def redirects(self) -> dict[str, int]:
        """MOVED and ASK replies the writers (not the probe) followed."""
        return dict(sum((w.redirects() for w in self.workloads), Counter()))

    def errors(self) -> list[str]:
        return [e for w in [*self.workloads, *([self.probe] if self.probe else [])] for e in w.errors]


def start_recording(
    platform: Platform,
    probe_master_address: str | None = None,
    waited_workers: int | None = None,
    unwaited_workers: int | None = None,
    rate: float = 70.0,
    max_seconds: float = 180.0,
    probe_rate_hz: float = 200.0,
) -> Recording:
    """Start writers (bounded by max_seconds; by default one WAITed and one un-WAITed per shard,
    worker w on shard w % shards) and, when a master is named, a probe on one of its slots."""
    history = History()
    run = secrets.token_hex(3)
    rec = Recording(platform, history, History(t0=history.t0, wall_t0=history.wall_t0), run=run)
    client = platform.client()
    try:
        tags = shard_tags(client)
        rec.masters = sorted({node.host for node in client.get_primaries()})
        if probe_master_address is not None:
            rec.probed = probe_master_address
            key = key_on_master(client, probe_master_address, prefix=f"app:probe:{run}")
            rec.probe = Probe(platform, rec.probe_history, key, rate=probe_rate_hz, max_seconds=max_seconds)
    finally:
        client.close()
    waited = len(tags) if waited_workers is None else waited_workers
    unwaited = len(tags) if unwaited_workers is None else unwaited_workers
    limits = WorkloadLimits(max_ops=int(rate * max_seconds) + 1, max_seconds=max_seconds)
    if waited:
        rec.workloads.append(WriteWorkload(platform, history, f"{run}w", waited, rate, wait_replicas=1, limits=limits, tags=tags))
    if unwaited:
        rec.workloads.append(
            WriteWorkload(platform, history, f"{run}u", unwaited, rate, limits=limits, first_process=waited, tags=tags)
        )
    for w in rec.workloads:
        w.start()
    if rec.probe is not None:
        rec.probe.start()
    return rec


def final_read(rec: Recording) -> dict[str, str]:
    """Every key under the run's prefix now, with its value — attempted or not."""
    return read_prefix(rec.platform, f"app:w:{rec.run}")


def check(rec: Recording, fault_time: float | None, present: dict[str, str] | None = None) -> Figures:
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
    shards = sorted({op.shard for op in writes if op.shard is not None})
    figures.shard_unavailable_s = [round(availability_of_shard(rec.history, s).longest, 3) for s in shards]
    if rec.probed in rec.masters:
        figures.attacked_shard = rec.masters.index(rec.probed)
        if fault_time is not None and any(op.waited for op in writes):
            figures.waited_before_fault = sum(
                1
                for op in writes
                if op.shard == figures.attacked_shard and op.outcome == OK and (op.acks or 0) >= 1 and op.complete < fault_time
            )
    if rec.probe is not None:
        # The probe sees the attacked shard alone: its outage is the shard's unavailability. A
        # probe write counts only if it lasted: one acknowledged by a master cut off from the
        # majority and lost at the heal was never available, and shows as the outage it was.
        lasted = read_prefix(rec.platform, f"app:probe:{rec.run}")
        probe = durable(rec.probe_history, lasted)
        figures.probe_lost = sum(op.outcome == "lost" for op in probe.ops)
        shard = availability(probe)
        figures.unavailable_s = round(shard.longest, 3)
        figures.unavailable_windows = [(round(a, 3), round(b, 3)) for a, b in shard.windows]
        figures.probe_hz = round(probe_rate(probe), 1)
        if fault_time is not None:
            rt = recovery_time(probe, fault_time)
            figures.recovery_s = None if rt is None else round(rt, 3)
            end = fault_time + (rt if rt is not None else rec.probe_history.now() - fault_time)
            gap, at = probe_gap(probe, fault_time, end)
            figures.probe_gap_s, figures.probe_gap_at = round(gap, 3), round(at, 3)
            figures.probe_fault_hz = round(probe_rate_between(probe, fault_time, end), 1) if end > fault_time else None
            figures.node_timeout_s = node_timeout_s(rec.platform)
            figures.conformance_limit_s = round(slo.load().conformance_limit(figures.node_timeout_s), 3)
    return figures


def durable(probe: History, lasted: dict[str, str]) -> History:
    """The probe's history with each acknowledged write that is gone now marked "lost"."""
    ops = [
        dataclasses.replace(op, outcome="lost", error="acknowledged, then lost")
        if op.outcome == OK and op.key not in lasted
        else op
        for op in probe.ops
    ]
    return History(t0=probe.t0, wall_t0=probe.wall_t0, ops=ops, events=probe.events)


def availability_of_shard(history: History, shard: int):
    return availability(History.of(op for op in history.ops if op.f == "write" and op.shard == shard))
