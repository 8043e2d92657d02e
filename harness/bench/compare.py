"""`redis-harness report compare OLD NEW`: deltas between two benchmark reports, judged against
the SLO file's `benchmark` thresholds (throughput drop, p99 rise), so CI can gate on them.

Only like is compared with like: two runs of different workloads, user counts or pipeline depths
are refused (CompareError, exit status 2). Nothing is skipped in silence: a phase present in one
run and absent in the other is a row of its own, and so are the errors of each phase in either
run; either fails the comparison, as a regression does."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError

# What makes two runs the same workload: every field of the workload except its description and
# its default user count (the users a phase really ran with are compared on their own).
WORKLOAD_IDENTITY = (
    "name", "mix", "value_size", "keys", "distribution", "zipf_s", "hot_keys", "hot_share", "hash_tags",
    "read_from_replicas", "ttl_seconds",
)  # fmt: skip


class CompareError(HarnessError):
    """A report directory that cannot be compared."""


@dataclass(frozen=True)
class Delta:
    phase: str
    metric: str  # throughput | p50_ms | p99_ms | errors | phase (present in one run only)
    old: float | None  # None: the phase is absent from OLD
    new: float | None  # None: the phase is absent from NEW
    limit_percent: float | None  # None: shown, not judged

    @property
    def change_percent(self) -> float:
        if self.old is None or self.new is None:
            return 0.0
        return (self.new - self.old) / self.old * 100 if self.old else 0.0

    @property
    def missing(self) -> bool:
        return self.metric == "phase"

    @property
    def regressed(self) -> bool:
        if self.limit_percent is None or not self.old or self.new is None:
            return False
        if self.metric == "throughput":
            return -self.change_percent > self.limit_percent
        return self.change_percent > self.limit_percent

    @property
    def failed(self) -> bool:
        """A regression, a phase one run lacks, or errors in either run."""
        return self.regressed or self.missing or (self.metric == "errors" and bool(self.old or self.new))

    @property
    def verdict(self) -> str:
        if self.missing:
            return "missing in OLD" if self.old is None else "missing in NEW"
        if self.metric == "errors":
            return "errors" if self.failed else "ok"
        if self.regressed:
            return "regression"
        return "ok" if self.limit_percent is not None else ""


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


def shape(report: dict) -> dict:
    """What a run ran: its workload (identity fields), the users of its phases, its pipeline depth."""
    workload = report.get("workload") or {}
    return {
        "workload": {k: workload.get(k) for k in WORKLOAD_IDENTITY},
        "users": sorted({p.get("users") for p in report["phases"]}, key=str),
        "pipeline": workload.get("pipeline"),
    }


def check_comparable(old: dict, new: dict) -> None:
    """Refuse, in one sentence, two runs of different workloads, user counts or pipelines."""
    a, b = shape(old), shape(new)
    differences = []
    if a["workload"] != b["workload"]:
        fields = [k for k in WORKLOAD_IDENTITY if k != "name" and a["workload"][k] != b["workload"][k]]
        detail = ", ".join(f"{k} {a['workload'][k]!r} → {b['workload'][k]!r}" for k in fields)
        names = f"{a['workload']['name']} → {b['workload']['name']}"
        differences.append(("workloads", f"{names} ({detail})" if fields else names))
    if a["users"] != b["users"]:
        differences.append(("user counts", f"users {_join(a['users'])} → {_join(b['users'])}"))
    if a["pipeline"] != b["pipeline"]:
        differences.append(("pipelines", f"pipeline {a['pipeline']} → {b['pipeline']}"))
    if differences:
        raise CompareError(
            f"refusing to compare runs of different {' and '.join(kind for kind, _ in differences)} "
            f"(OLD → NEW: {'; '.join(text for _, text in differences)}): compare runs of the same workload, users and pipeline"
        )


def _join(values: list) -> str:
    return "/".join(str(v) for v in values) or "?"


def deltas(old: dict, new: dict, max_throughput_drop: float, max_p99_rise: float) -> list[Delta]:
    """For every phase of either report: throughput and p99 (judged), p50 (shown) and errors (counted)
    when both ran it; one `phase` row when only one did; then the capacity at the objective."""
    check_comparable(old, new)
    old_phases = {p["name"]: p for p in old["phases"]}
    new_phases = {p["name"]: p for p in new["phases"]}
    names = list(old_phases) + [n for n in new_phases if n not in old_phases]
    result = []
    for name in names:
        before, after = old_phases.get(name), new_phases.get(name)
        if before is None or after is None:
            result.append(Delta(name, "phase", None if before is None else 1.0, None if after is None else 1.0, None))
            continue
        result.append(Delta(name, "throughput", before["throughput"], after["throughput"], max_throughput_drop))
        result.append(Delta(name, "p50_ms", before["latency_ms"]["p50"], after["latency_ms"]["p50"], None))
        result.append(Delta(name, "p99_ms", before["latency_ms"]["p99"], after["latency_ms"]["p99"], max_p99_rise))
        result.append(Delta(name, "errors", before.get("errors", 0), after.get("errors", 0), None))
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
    elif old.get("capacity") or new.get("capacity"):
        result.append(
            Delta("capacity", "phase", 1.0 if old.get("capacity") else None, 1.0 if new.get("capacity") else None, None)
        )
    if not any(d.metric == "throughput" for d in result):
        raise CompareError("the two reports have no phase in common: compare runs of the same workload")
    return result


def errors(report: dict) -> int:
    return sum(int(p.get("errors", 0)) for p in report["phases"])
