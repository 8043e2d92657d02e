"""`redis-harness report compare OLD NEW`: deltas between two benchmark reports, judged against
the SLO file's `benchmark` thresholds (throughput drop, p99 rise), so CI can gate on them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError


class CompareError(HarnessError):
    """A report directory that cannot be compared."""


@dataclass(frozen=True)
class Delta:
    phase: str
    metric: str
    old: float
    new: float
    limit_percent: float | None  # None: shown, not judged

    @property
    def change_percent(self) -> float:
        return (self.new - self.old) / self.old * 100 if self.old else 0.0

    @property
    def regressed(self) -> bool:
        if self.limit_percent is None or not self.old:
            return False
        if self.metric == "throughput":
            return -self.change_percent > self.limit_percent
        return self.change_percent > self.limit_percent


def load_report(run_dir: Path) -> dict:
    path = Path(run_dir) / "report.json" if Path(run_dir).is_dir() else Path(run_dir)
    try:
        report = json.loads(path.read_text())
    except FileNotFoundError:
        raise CompareError(f"no benchmark report at {path}: give a reports/<time>-bench-<workload> directory") from None
    except json.JSONDecodeError:
        raise CompareError(f"{path} is not valid JSON") from None
    if not str(report.get("kind", "")).startswith("bench-") or "phases" not in report:
        raise CompareError(f"{path} is not a benchmark report (kind {report.get('kind')!r})")
    return report


def deltas(old: dict, new: dict, max_throughput_drop: float, max_p99_rise: float) -> list[Delta]:
    """For every phase both reports ran: throughput and p99 (judged), p50 (shown)."""
    old_phases = {p["name"]: p for p in old["phases"]}
    result = []
    for phase in new["phases"]:
        before = old_phases.get(phase["name"])
        if before is None:
            continue
        result.append(Delta(phase["name"], "throughput", before["throughput"], phase["throughput"], max_throughput_drop))
        result.append(Delta(phase["name"], "p50_ms", before["latency_ms"]["p50"], phase["latency_ms"]["p50"], None))
        result.append(Delta(phase["name"], "p99_ms", before["latency_ms"]["p99"], phase["latency_ms"]["p99"], max_p99_rise))
    if old.get("capacity") and new.get("capacity"):
        result.append(
            Delta(
                "capacity",
                "throughput",
                old["capacity"]["capacity_at_slo"],
                new["capacity"]["capacity_at_slo"],
                max_throughput_drop,
            )
        )
    if not result:
        raise CompareError("the two reports have no phase in common: compare runs of the same workload")
    return result
