"""What one chaos experiment leaves: the runner produces it, the reports read it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.chaos.verdict import Expectations, Verdict
from harness.report.outcomes import NOT_RUN


@dataclass
class ExperimentResult:
    name: str
    title: str
    journal: dict[str, Any]
    figures: dict[str, Any]
    verdict: Verdict
    expectations: Expectations
    duration_s: float
    run_dir: Path | None = None
    nemesis_log: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)  # firing spans (alert, labels, from, to), wall time
    log_events: list[dict[str, Any]] = field(default_factory=list)  # the Redis log's failover story, wall time
    not_run: str = ""  # why the platform could not apply the experiment's fault: neither a pass nor a fail

    @property
    def outcome(self) -> str:
        return NOT_RUN if self.not_run else ("pass" if self.verdict.passed else "fail")
