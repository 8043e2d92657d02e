"""One benchmark of one workload against a running cluster, written to
reports/<timestamp>-bench-<workload>[-p<pipeline>]/: prefill, closed loop (or open loop at
--rate), optionally a capacity search, the baselines, then report.json, CSVs, plots, index.html."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.bench import campaign, histograms, report
from harness.bench.client import Target
from harness.bench.loadgen import Commands, prefill
from harness.bench.schedule import FLUSH_SECONDS, CapacityPlan, RateError
from harness.bench.workload import Workload
from harness.platforms.base import Platform
from harness.report.rundir import environment, new_run_dir, utc_now, write_report

AUTO_START_SHARE = 0.3  # the automatic capacity search starts at this share of the closed-loop throughput
AUTO_FACTOR = 1.3
MIN_SECONDS = 2 * FLUSH_SECONDS  # a loop shorter than two intervals has no time line to speak of
MAX_SECONDS = 3600


@dataclass
class BenchOptions:
    seconds: float = 10.0
    processes: int = 0  # 0: one per core
    users: int = 0  # 0: the workload's
    rate: float = 0.0  # >0: open loop at this total rate instead of closed loop
    capacity: str = ""  # "", "auto" or START[:FACTOR[:STEP_SECONDS[:MAX_STEPS]]]
    slo_p99_ms: float = 5.0
    baseline: bool = True
    baseline_seconds: float = 5.0

    def validate(self) -> None:
        if not MIN_SECONDS <= self.seconds <= MAX_SECONDS:
            raise RateError(
                f"duration must be between {MIN_SECONDS:g} and {MAX_SECONDS} seconds (load processes report every "
                f"{FLUSH_SECONDS:g} s: a shorter loop cannot be measured over time), not {self.seconds!r}"
            )
        if self.rate < 0:
            raise RateError(f"rate must be a positive number of operations per second, not {self.rate!r}")
        if self.capacity and self.capacity != "auto":
            CapacityPlan.parse(self.capacity, self.slo_p99_ms)


def kind_of(workload: Workload) -> str:
    return f"bench-{workload.name}" + (f"-p{workload.pipeline}" if workload.pipeline != 1 else "")


def benchmark(
    platform: Platform,
    workload: Workload,
    options: BenchOptions,
    reports: Path | None = None,
    say: Callable[[str], None] = lambda _msg: None,
    workers: int = 0,
) -> tuple[Path, dict]:
    """`workers`: remote Locust workers (the loadgen Deployment) instead of `options.processes` of our own."""
    options.validate()
    started, t0 = utc_now(), time.monotonic()
    run_dir = new_run_dir(kind_of(workload), reports)
    work = run_dir / "raw"
    work.mkdir()
    target = Target.from_platform(platform)
    processes = options.processes or os.cpu_count() or 1
    users = options.users or workload.users

    say(f"{workload.name}: prefilling {workload.keys} keys")
    prefill(Commands(workload), target)

    phases: list[campaign.Phase] = []
    mode = f"open-{options.rate:.0f}" if options.rate else "closed"
    load = f"{workers} worker pods" if workers else f"{processes} processes"
    say(f"{workload.name}: {mode} loop, {users} users × pipeline {workload.pipeline}, {load}, {options.seconds:g} s")
    main = campaign.run_locust(
        platform, workload, work, mode, options.seconds, users, processes, rate=options.rate, workers=workers
    )
    phases.append(main)
    main_summary = main.summary()

    capacity = None
    if options.capacity:
        plan = (
            CapacityPlan(max(100.0, AUTO_START_SHARE * main_summary["throughput"]), AUTO_FACTOR, 4.0, 8, options.slo_p99_ms)
            if options.capacity == "auto"
            else CapacityPlan.parse(options.capacity, options.slo_p99_ms)
        )
        say(f"{workload.name}: capacity search from {plan.start_rate:.0f} ops/s ×{plan.factor:g} every {plan.step_seconds:g} s")
        search = campaign.run_locust(platform, workload, work, "capacity", 0, users, processes, plan=plan, workers=workers)
        phases.append(search)
        capacity = campaign.analyse_capacity(search)

    baseline = None
    if options.baseline:
        say(
            f"{workload.name}: baseline redis-benchmark, {users} connections over {processes} threads, "
            f"pipeline {workload.pipeline}, {workload.keys} keys prefilled"
        )
        tools = campaign.run_baselines(
            platform, target, workload, users, processes, options.baseline_seconds, main_summary["throughput"]
        )
        baseline = {
            "tools": tools,
            "ratios": {
                name: {
                    "throughput": main_summary["throughput"] / t["rps"] if t["rps"] else 0.0,
                    "p50": main_summary["latency_ms"]["p50"] / t["p50_ms"] if t["p50_ms"] else 0.0,
                }
                for name, t in tools.items()
            },
            "compared_phase": main.name,
            "note": (
                f"Same target, same run: {users} connections (harness users; each holds one connection per node it "
                f"talks to) over {processes} load processes / threads, pipeline {workload.pipeline}, "
                f"{workload.keys} keys prefilled, value size ≈ {round(workload.value_size.mean)} B. "
                + tools["redis-benchmark"]["method"]
                + " Closed loop on both sides: by Little's law a lower throughput at the same concurrency means a "
                "proportionally higher p50."
            ),
        }

    summaries = [p.summary() for p in phases]
    rows = report.timeline(main.lines)
    report.write_csv(run_dir / "timeline.csv", rows)
    timelines = [report.plot_timeline(rows, run_dir / "timeline.png", f"{workload.name}: {mode} loop").name]
    plots: dict = {"timelines": timelines}
    if capacity:
        search_rows = report.timeline(phases[-1].lines)
        report.write_csv(run_dir / "capacity-timeline.csv", search_rows)
        timelines.append(report.plot_timeline(search_rows, run_dir / "capacity-timeline.png", "capacity search").name)
        report.write_csv(run_dir / "capacity.csv", capacity["points"])
        plots["capacity"] = report.plot_capacity(
            capacity["points"], capacity["knee"], options.slo_p99_ms, run_dir / "capacity.png"
        ).name
    if baseline:
        report.write_csv(
            run_dir / "baseline.csv",
            [{"tool": n, **{k: v for k, v in t.items() if not isinstance(v, dict)}} for n, t in baseline["tools"].items()],
        )
    (run_dir / "histogram.hdr").write_text(main_summary["histogram"] + "\n")
    errors = sum(s["errors"] for s in summaries)
    body = {
        "kind": kind_of(workload),
        "started": started.isoformat(),
        "finished": utc_now().isoformat(),
        "duration_s": time.monotonic() - t0,
        "environment": environment(platform.name, platform.overlay, platform.versions()),
        "outcome": "pass" if errors == 0 else "fail",
        "workload": workload.summary(),
        "processes": processes,
        "phases": summaries,
        "capacity": capacity,
        "baseline": baseline,
        "plots": plots,
        "error_samples": {k: v for s in summaries for k, v in s["error_samples"].items()},
        "histogram_file": "histogram.hdr",
        "latency_definition": "per operation: its batch's send → last reply; open loop: from the batch's intended start",
    }
    write_report(run_dir, body, list(platform.credentials().passwords.values()))
    report.write_html(run_dir, body)
    return run_dir, body


def percentile_line(summary: dict) -> str:
    lat = summary["latency_ms"]
    return " ".join(f"{k} {lat[k]:.3f}" for k in (*histograms.PERCENTILES, "max")) + " ms"
