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
    probe_fault_hz: float | None = None  # the probe's rate from the fault to recovery (None: no fault, or instant)
    recovery_s: float | None = None  # None: never recovered (or no fault)
    recoveries_s: list[float | None] | None = None  # several faults in a row: each one's recovery
    isolated_master: dict[str, Any] | None = None  # partitions: what the isolated master acknowledged
    loss_window_s: float | None = None  # power loss: how long before the fault the oldest lost write was acknowledged
    node_timeout_s: float | None = None  # the running configuration's, for the conformance limit
    conformance_limit_s: float | None = None  # the failover limit that configuration implies
    probe_lost: int | None = None  # probe writes acknowledged, then gone (they count as unavailable)
    probe_gap_s: float | None = None  # longest time without a probe operation from the fault to recovery
    probe_gap_at: float | None = None
    attacked_shard: int | None = None  # the per-shard writers' index of the probed shard
    waited_before_fault: int | None = None  # its replica-acknowledged writes before the fault
    shard_unavailable_s: list[float] = field(default_factory=list)  # per shard: longest window without a write

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def headline(self) -> dict[str, Any]:
        """The figures without the long lists, for journals and tables."""
        return {k: v for k, v in self.as_dict().items() if k not in ("set", "unavailable_windows")}


UnwaitedLoss = Literal["slo", "documented"]
# Faults whose recovery is a Redis Cluster failover: held to the configuration's own limit too.
FAILOVER_FAULTS = ("kill_master", "pause_master", "partition", "node_failure")
INCONCLUSIVE = "inconclusive: "  # a reason that says the instrument failed, not the deployment


class Inconclusive(AssertionError):
    """Every reason a run missed its objectives says the instrument failed (INCONCLUSIVE), none
    that the deployment did: the measurement may be taken again. pytest takes such a test again,
    once (pyproject.toml: `reruns`, `only_rerun`); a verdict on the deployment is never retaken."""


def assert_met(reasons: list[str]) -> None:
    """Fail a test with the reasons slo_reasons gave: Inconclusive when all of them say the
    instrument failed, a plain AssertionError when any says the deployment did."""
    if not reasons:
        return
    message = "; ".join(reasons)
    if all(reason.startswith(INCONCLUSIVE) for reason in reasons):
        raise Inconclusive(message)
    raise AssertionError(message)


def slo_reasons(
    figures: Figures,
    slo: Slo,
    fault: str | None = None,
    unwaited_loss: UnwaitedLoss = "slo",
    minority_stops_within_s: float | None = None,
    max_loss_window_s: float | None = None,
    one_shard: bool = False,
) -> tuple[list[str], list[str]]:
    """(reasons the run breaks its objectives, notes a report must state even when it passed).

    `fault` names the entry in recovery_seconds / max_unavailability_seconds the run is held
    to; `unwaited_loss` "documented" reports lost un-WAITed writes instead of failing on them
    (partitions, as Redis Cluster documents); `minority_stops_within_s` bounds how long an
    isolated master may keep acknowledging writes; `max_loss_window_s` (a power loss) judges lost
    writes, WAITed or not, by how long before the fault they were acknowledged instead of by
    their count: a master restarted from what it had fsynced takes its replicas back with it;
    `one_shard` (a fault on one shard alone) holds every other shard to untouched_shard."""
    reasons: list[str] = []
    notes: list[str] = []
    if figures.workload_errors:
        reasons.append(f"workload errors: {figures.workload_errors[:3]}")
    gap_limit = slo.value("probe", "max_gap_seconds")
    if figures.probe_gap_s is not None and figures.probe_gap_s > gap_limit:
        reasons.append(
            f"{INCONCLUSIVE}the probe went {figures.probe_gap_s:.2f} s without an operation "
            f"(from t={figures.probe_gap_at:.2f} s; limit {gap_limit:g} s): the recovery figure is not known to that precision"
        )
    minimum = slo.value("probe", "min_waited_before_fault")
    if figures.waited_before_fault is not None and figures.waited_before_fault < minimum:
        reasons.append(
            f"{INCONCLUSIVE}the attacked shard had {figures.waited_before_fault} replica-acknowledged writes before "
            f"the fault (needs {minimum:g}): no WAITed write was at stake"
        )
    if fault is not None and fault in slo.raw["recovery_seconds"]:
        limit = slo.recovery(fault)
        if figures.recovery_s is None:
            reasons.append("the probed shard never recovered")
        elif figures.recovery_s > limit:
            reasons.append(f"recovery {figures.recovery_s:.2f} s > SLO {limit:g} s")
    if fault in FAILOVER_FAULTS and figures.conformance_limit_s is not None and figures.recovery_s is not None:
        if figures.recovery_s > figures.conformance_limit_s:
            reasons.append(
                f"recovery {figures.recovery_s:.2f} s > {figures.conformance_limit_s:.2f} s, the limit its own "
                f"configuration implies (node-timeout {figures.node_timeout_s:g} s)"
            )
    if one_shard and figures.attacked_shard is not None and len(figures.shard_unavailable_s) > 1:
        limit = slo.unavailability("untouched_shard")
        for shard, longest in enumerate(figures.shard_unavailable_s):
            if shard != figures.attacked_shard and longest > limit:
                reasons.append(f"shard {shard}, not attacked, took no write for {longest:.2f} s (limit {limit:g} s)")
    if fault is not None and fault in slo.raw["max_unavailability_seconds"]:
        limit = slo.unavailability(fault)
        if figures.unavailable_s > limit:
            reasons.append(f"unavailable {figures.unavailable_s:.2f} s > SLO {limit:g} s")
    if max_loss_window_s is not None:
        window = figures.loss_window_s or 0.0
        if window > max_loss_window_s:
            reasons.append(f"lost writes acknowledged {window:.2f} s before the power loss (SLO {max_loss_window_s:g} s)")
        if figures.lost:
            notes.append(
                f"{figures.lost} acknowledged writes lost ({figures.lost_waited} WAITed), the last "
                f"{window:.2f} s before the power loss: what was not fsynced yet"
            )
    elif figures.lost_waited > slo.lost_writes(waited=True):
        reasons.append(f"{figures.lost_waited} WAITed writes lost (SLO {slo.lost_writes(waited=True)})")
    by_count = max_loss_window_s is None
    if by_count and unwaited_loss == "slo" and figures.lost_unwaited > slo.lost_writes(waited=False):
        reasons.append(f"{figures.lost_unwaited} un-WAITed writes lost (SLO {slo.lost_writes(waited=False)})")
    elif by_count and unwaited_loss == "documented" and figures.lost_unwaited:
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


def margin(check: str, figure: float, limit: float, at_least: bool = False) -> dict[str, Any]:
    """One judged figure beside its limit (an upper limit, or a lower one `at_least`)."""
    room = figure - limit if at_least else limit - figure
    return {"check": check, "figure": round(figure, 3), "limit": round(limit, 3), "margin": round(room, 3)}


def margins(
    figures: Figures,
    slo: Slo,
    fault: str | None = None,
    minority_stops_within_s: float | None = None,
    one_shard: bool = False,
) -> list[dict[str, Any]]:
    """How far each judged figure stayed from its limit: {"check", "figure", "limit", "margin"}, margin
    in the limit's unit (negative: broken). A run that passed by 0.1 s is worth knowing about."""
    out: list[dict[str, Any]] = []

    def add(check: str, figure: float | None, limit: float | None, at_least: bool = False) -> None:
        if figure is not None and limit is not None:
            out.append(margin(check, figure, limit, at_least))

    if fault is not None and fault in slo.raw["recovery_seconds"]:
        add("recovery within the objective", figures.recovery_s, slo.recovery(fault))
    if fault in FAILOVER_FAULTS:
        add("recovery within its configuration's limit", figures.recovery_s, figures.conformance_limit_s)
    if fault is not None and fault in slo.raw["max_unavailability_seconds"]:
        add("longest outage of the attacked shard", figures.unavailable_s, slo.unavailability(fault))
    if one_shard and figures.attacked_shard is not None and len(figures.shard_unavailable_s) > 1:
        others = [t for s, t in enumerate(figures.shard_unavailable_s) if s != figures.attacked_shard]
        add("longest outage of an untouched shard", max(others), slo.unavailability("untouched_shard"))
    add("probe's longest silence", figures.probe_gap_s, slo.value("probe", "max_gap_seconds"))
    if figures.waited_before_fault is not None:
        add(
            "replica-acknowledged writes before the fault",
            figures.waited_before_fault,
            slo.value("probe", "min_waited_before_fault"),
            at_least=True,
        )
    if minority_stops_within_s is not None and figures.isolated_master:
        add("isolated master's last acknowledgement", figures.isolated_master.get("last_ack_after_s"), minority_stops_within_s)
    return out


def tightest(found: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The margin smallest relative to its limit."""
    judged = [m for m in found if m["limit"]]
    return min(judged, key=lambda m: m["margin"] / m["limit"], default=None)
