"""One judgement for gating tests and chaos verdicts: the figures a recorded run yields,
and the SLO rules they are held to. Pure: no live cluster here."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from harness.slo import Slo


@dataclass
class Figures:
    """What the checkers found in one recorded run (harness/recording.py `judge`)."""

    writes: int  # distinct keys attempted
    acknowledged: int
    lost: int  # acknowledged, then absent from the final read
    lost_waited: int  # ... of which WAITed and acknowledged by a replica
    lost_unwaited: int
    unexpected: int  # present, never attempted
    recovered: int  # outcome unknown (info), present
    failed_but_present: int  # reported as surely not applied, yet present
    fail_ops: int
    info_ops: int
    ok_fraction: float
    unavailable_s: float  # longest window in which the attacked shard (the probe) did not succeed
    unavailable_windows: list[tuple[float, float]] = field(default_factory=list)
    set: dict[str, Any] = field(default_factory=dict)  # the set checker's summary, with examples
    workload_errors: list[str] = field(default_factory=list)
    probe_hz: float | None = None  # None: no probe ran
    recovery_s: float | None = None  # None: never recovered (or no fault)
    recoveries_s: list[float | None] | None = None  # several faults in a row: each one's recovery
    isolated_master: dict[str, Any] | None = None  # partitions: what the isolated master acknowledged

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def headline(self) -> dict[str, Any]:
        """The figures without the long lists, for journals and tables."""
        return {k: v for k, v in self.as_dict().items() if k not in ("set", "unavailable_windows")}


UnwaitedLoss = Literal["slo", "documented"]


def slo_reasons(
    figures: Figures,
    slo: Slo,
    fault: str | None = None,
    unwaited_loss: UnwaitedLoss = "slo",
    minority_stops_within_s: float | None = None,
) -> tuple[list[str], list[str]]:
    """(reasons the run breaks its objectives, notes a report must state even when it passed).

    `fault` names the entry in recovery_seconds / max_unavailability_seconds the run is held
    to; `unwaited_loss` "documented" reports lost un-WAITed writes instead of failing on them
    (partitions, as Redis Cluster documents); `minority_stops_within_s` bounds how long an
    isolated master may keep acknowledging writes."""
    reasons: list[str] = []
    notes: list[str] = []
    if figures.workload_errors:
        reasons.append(f"workload errors: {figures.workload_errors[:3]}")
    if fault is not None and fault in slo.raw["recovery_seconds"]:
        limit = slo.recovery(fault)
        if figures.recovery_s is None:
            reasons.append("the probed shard never recovered")
        elif figures.recovery_s > limit:
            reasons.append(f"recovery {figures.recovery_s:.2f} s > SLO {limit:g} s")
    if fault is not None and fault in slo.raw["max_unavailability_seconds"]:
        limit = slo.unavailability(fault)
        if figures.unavailable_s > limit:
            reasons.append(f"unavailable {figures.unavailable_s:.2f} s > SLO {limit:g} s")
    if figures.lost_waited > slo.lost_writes(waited=True):
        reasons.append(f"{figures.lost_waited} WAITed writes lost (SLO {slo.lost_writes(waited=True)})")
    if unwaited_loss == "slo" and figures.lost_unwaited > slo.lost_writes(waited=False):
        reasons.append(f"{figures.lost_unwaited} un-WAITed writes lost (SLO {slo.lost_writes(waited=False)})")
    elif unwaited_loss == "documented" and figures.lost_unwaited:
        notes.append(f"{figures.lost_unwaited} acknowledged un-WAITed writes lost, as Redis Cluster documents for this fault")
    if figures.unexpected:
        reasons.append(f"{figures.unexpected} values nobody wrote")
    if figures.failed_but_present:
        reasons.append(f"{figures.failed_but_present} writes reported failed yet present")
    isolated = figures.isolated_master
    if minority_stops_within_s is not None and isolated:
        last = isolated.get("last_ack_after_s")
        if last is not None and last > minority_stops_within_s:
            reasons.append(f"the isolated master acknowledged writes {last:.2f} s into the partition")
        notes.append(
            f"the isolated master acknowledged {isolated['acknowledged']} writes after the partition "
            f"(last {0 if last is None else last:.2f} s in); {isolated['lost']} of them lost"
        )
    return reasons, notes
