"""How long the harness itself takes: `redis-harness up` (and `down`) over several runs, each phase
timed in-process, and as a user waits for it from the command line (a fresh process each time);
medians and spread in a report — numbers to compare, not a test that fails on a slow day.
With `gate`, also the gating run's suites (`make run` without the set-up), one run each time."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.phases import summarize
from harness.platforms import registry
from harness.report.rundir import environment, new_run_dir, utc_now, write_report

MAX_RUNS = 20


def time_up(
    runs: int, cluster: str, subnet: str | None, overlay: str = "kind", say: Callable[[str], None] = print
) -> list[dict[str, float]]:
    """`up` then `down` of a fresh local cluster, `runs` times: each run's phases and totals."""
    timed = []
    for i in range(runs):
        p = registry.create("local", overlay=overlay, cluster=cluster, subnet=subnet)
        started = time.monotonic()
        try:
            p.up()
            up_s = time.monotonic() - started
            phases = p.phases.as_dict()
        finally:
            down_started = time.monotonic()
            p.down()
        run = {**phases, "up (total)": up_s, "down": time.monotonic() - down_started}
        timed.append(run)
        say(f"run {i + 1}/{runs}: up {up_s:.2f} s, down {run['down']:.2f} s")
    return timed


def time_command_line_up(
    runs: int, cluster: str, subnet: str | None, overlay: str = "kind", say: Callable[[str], None] = print
) -> list[dict[str, float]]:
    """`redis-harness up` as a user runs it, a fresh process each time, timed from outside until it
    returns (interpreter start, imports, the stand-up, the health check and the status table), then
    `redis-harness down`."""
    base = [sys.executable, "-m", "harness.cli"]
    where = ["--overlay", overlay, "--cluster", cluster, *(["--subnet", subnet] if subnet else [])]
    timed = []
    for i in range(runs):
        started = time.monotonic()
        try:
            proc = subprocess.run([*base, "up", *where], capture_output=True, text=True, timeout=300)
            up_s = time.monotonic() - started
            if proc.returncode != 0:
                raise HarnessError(f"redis-harness up failed (exit {proc.returncode}): {proc.stderr.strip()[-300:]}")
        finally:
            down_started = time.monotonic()
            subprocess.run([*base, "down", "--cluster", cluster], capture_output=True, text=True, timeout=120)
        run = {"up, command line": up_s, "down, command line": time.monotonic() - down_started}
        timed.append(run)
        say(f"command line {i + 1}/{runs}: up {up_s:.2f} s, down {run['down, command line']:.2f} s")
    return timed


def time_gate(
    runs: int, cluster: str, subnet: str | None, reports: Path | None, say: Callable[[str], None] = print, jobs: int = 1
) -> list[dict[str, float]]:
    """The gating suites, `runs` times, in `jobs` lanes: each suite's duration and the total (what
    `make run` does after set-up)."""
    from harness import gate

    timed = []
    for i in range(runs):
        started = time.monotonic()
        result = gate.run_gate("local", "kind", None, reports, cluster=cluster, subnet=subnet, jobs=jobs)
        run = {f"suite {s['suite']}": float(s["duration_s"]) for s in result.report["suites"]}
        run["gate (total)"] = time.monotonic() - started
        timed.append(run)
        say(f"gate run {i + 1}/{runs}: {run['gate (total)']:.0f} s, {result.outcome}")
    return timed


def bench_self(
    runs: int,
    cluster: str,
    subnet: str | None,
    gate: bool = False,
    reports: Path | None = None,
    say: Callable[[str], None] = print,
    jobs: int = 1,
) -> tuple[Path, dict[str, Any]]:
    if not 1 <= runs <= MAX_RUNS:
        raise HarnessError(f"--runs must be between 1 and {MAX_RUNS}, not {runs}")
    started = utc_now()
    body: dict[str, Any] = {"kind": "bench-self", "started": started.isoformat(), "runs": runs, "jobs": jobs}
    up_runs = time_up(runs, cluster, subnet, say=say)
    body["up"] = {"runs": up_runs, "phases": summarize(up_runs)}
    cli_runs = time_command_line_up(runs, cluster, subnet, say=say)
    body["command line"] = {"runs": cli_runs, "phases": summarize(cli_runs)}
    if gate:
        gate_runs = time_gate(runs, cluster, subnet, reports, say=say, jobs=jobs)
        body["gate"] = {"runs": gate_runs, "phases": summarize(gate_runs)}
    body["finished"] = utc_now().isoformat()
    body["environment"] = environment("local", "kind", {})
    body["outcome"] = "pass"
    run_dir = new_run_dir("bench-self", reports)
    write_report(run_dir, body, [])
    return run_dir, body
