"""Verdicts of chaos experiments: pure functions of the journal, the checkers' figures,
the experiment's expectations and the SLO file. No live cluster here."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from harness.chaos.alerts import AlertExpectation
from harness.checkers import check_set, recovery_time
from harness.history import OK, History
from harness.judgement import Figures, UnwaitedLoss, margins, slo_reasons
from harness.slo import Slo


@dataclass(frozen=True)
class Expectations:
    """The `redis-harness` extension of an experiment file."""

    slo: str | None = None  # key in recovery_seconds / max_unavailability_seconds
    unwaited_loss: UnwaitedLoss = "slo"  # "slo": judged against lost_writes.unwaited; "documented": reported only
    minority_stops_within_s: float | None = None  # partitions: the isolated master's last acknowledgement
    must_deviate: bool = False  # negative controls
    loss_window: bool = False  # power loss: lost writes judged by persistence.max_loss_window_seconds
    one_shard: bool = False  # a fault on one shard alone: every other shard keeps taking writes
    platforms: list[str] | None = None  # where its fault can be applied (None: every platform)
    alerts: list[dict[str, Any]] | None = None  # alerts the fault must fire (harness/chaos/alerts.py)

    @classmethod
    def of(cls, experiment: dict[str, Any]) -> Expectations:
        ext = next((e for e in experiment.get("extensions") or [] if e.get("name") == "redis-harness"), {})
        known = {k: v for k, v in ext.items() if k != "name"}
        unknown = sorted(set(known) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"unknown key(s) {', '.join(unknown)}")
        platforms = known.get("platforms")
        if platforms is not None and (not isinstance(platforms, list) or not all(isinstance(p, str) for p in platforms)):
            raise ValueError(f"platforms must be a list of platform names, not {platforms!r}")
        AlertExpectation.parse(known.get("alerts"))
        if known.get("unwaited_loss", "slo") not in ("slo", "documented"):
            raise ValueError(f"unwaited_loss must be 'slo' or 'documented', not {known['unwaited_loss']!r}")
        return cls(**known)


@dataclass
class Verdict:
    passed: bool
    reasons: list[str] = field(default_factory=list)  # why it failed
    notes: list[str] = field(default_factory=list)  # what the report must state even when it passed
    margins: list[dict[str, Any]] = field(default_factory=list)  # each judged figure beside its limit


def failed_probes(journal: dict[str, Any]) -> list[str]:
    """Names of steady-state probes that did not hold, before or after the method."""
    return [
        f"{probe['activity']['name']} ({when})"
        for when, state in (journal.get("steady_states") or {}).items()
        for probe in (state or {}).get("probes", [])
        if not probe.get("tolerance_met", True)
    ]


NOT_SUPPORTED = re.compile(r"harness\.errors\.NotSupported: (.+)")


def not_supported(journal: dict[str, Any]) -> str:
    """The sentence of the first activity the platform could not perform (chaostoolkit records the
    exception an action or probe raised as traceback lines in the journal), or '': an experiment
    whose fault could not be applied was not run, whatever its other figures say."""
    entries = [*(journal.get("run") or []), *(journal.get("rollbacks") or [])]
    for state in (journal.get("steady_states") or {}).values():
        entries += (state or {}).get("probes") or []
    for entry in entries:
        for line in entry.get("exception") or []:
            found = NOT_SUPPORTED.search(line)
            if found:
                return found.group(1).strip()
    return ""


def judge(
    journal: dict[str, Any], figures: Figures | None, expect: Expectations, slo: Slo, alert_reasons: list[str] | None = None
) -> Verdict:
    reasons: list[str] = list(alert_reasons or [])
    notes: list[str] = []
    status = journal.get("status")
    broken = failed_probes(journal)
    if journal.get("deviated") or broken:
        reasons.append("steady state did not hold: " + (", ".join(broken) or "after the method"))
    elif status != "completed":
        reasons.append(f"experiment {status}")
    judged: list[dict[str, Any]] = []
    if figures is None:
        reasons.append("no workload was recorded")
    else:
        window = slo.value("persistence", "max_loss_window_seconds") if expect.loss_window else None
        found, notes = slo_reasons(
            figures, slo, expect.slo, expect.unwaited_loss, expect.minority_stops_within_s, window, expect.one_shard
        )
        reasons += found
        judged = margins(figures, slo, expect.slo, expect.minority_stops_within_s, expect.one_shard)
    if expect.must_deviate:
        # A negative control passes when the experiment caught the weakness.
        caught = bool(journal.get("deviated")) or bool(reasons)
        return Verdict(caught, [] if caught else ["the experiment did not deviate"], reasons, judged)
    return Verdict(not reasons, reasons, notes, judged)


def loss_window(history: History, fault_time: float, present: set[str] | dict[str, str]) -> float:
    """How long before the fault the oldest write acknowledged and then lost was acknowledged (0: none lost)."""
    lost = set(check_set(history, present).lost)
    acked = [op.complete for op in history.ops if op.f == "write" and op.outcome == OK and op.key in lost]
    return round(max((fault_time - t for t in acked if t is not None), default=0.0), 3)


def recoveries(probe: History, fault_times: list[float]) -> list[float | None]:
    """Recovery from each fault, judged on the probe's operations up to the next fault."""
    times = sorted(fault_times)
    out = []
    for i, start in enumerate(times):
        end = times[i + 1] if i + 1 < len(times) else float("inf")
        out.append(recovery_time([op for op in probe.ops if op.invoke < end], start))
    return out
