"""The gating job behind `redis-harness run`: static checks of the overlay, then
stand it up, check the topology invariants, tear down, and write one report."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import observe, reference, static_checks
from harness.errors import HarnessError
from harness.platforms.base import Platform
from harness.report import rundir
from harness.topology import PodState, check_invariants


@dataclass
class GateResult:
    run_dir: Path
    outcome: str  # pass | fail | error
    report: dict[str, Any]
    states: list[PodState] = field(default_factory=list)


def _check(name: str, findings: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": name, "outcome": "fail" if findings else "pass", "details": findings}


def run_gate(
    platform: Platform,
    platform_name: str,
    overlay: str,
    reports: Path | None = None,
    keep: bool = False,
    progress: Callable[[str], None] = lambda _: None,
) -> GateResult:
    run_dir = rundir.new_run_dir("up", reports)
    started = rundir.utc_now()
    timings: dict[str, float] = {}
    checks: list[dict[str, Any]] = []
    secrets: list[str] = []
    versions: dict[str, str] = {}
    states: list[PodState] = []
    error = None
    try:
        progress("static checks")
        t = time.monotonic()
        findings = static_checks.run_all(reference.render(overlay))
        checks.append(_check("static-checks", [{"check": f.check, "message": f.message} for f in findings]))
        timings["static_s"] = time.monotonic() - t
        progress("standing the reference up")
        t = time.monotonic()
        platform.up()
        timings["up_s"] = time.monotonic() - t
        secrets = list(platform.credentials().passwords.values())
        versions = platform.versions()
        progress("waiting for the cluster to settle")
        waited, states = observe.wait_healthy(platform)
        timings["settle_s"] = waited
        masters, replicas = platform.layout()
        violations = check_invariants(states, expected_masters=masters, replicas_per_master=replicas)
        checks.append(_check("topology-invariants", [v.__dict__ for v in violations]))
    except HarnessError as exc:
        error = str(exc)
    finally:
        if keep and error is None and hasattr(platform, "detach"):
            platform.detach()
        else:
            progress("tearing down")
            t = time.monotonic()
            platform.down()
            timings["down_s"] = time.monotonic() - t
    outcome = "error" if error else ("fail" if any(c["outcome"] == "fail" for c in checks) else "pass")
    finished = rundir.utc_now()
    report = {
        "kind": "up",
        "started": started.isoformat(),
        "finished": finished.isoformat(),
        "duration_s": (finished - started).total_seconds(),
        "environment": rundir.environment(platform_name, overlay, versions),
        "outcome": outcome,
        "timings": timings,
        "checks": checks,
        "error": error,
    }
    rundir.write_report(run_dir, report, secrets)
    return GateResult(run_dir, outcome, report, states)
