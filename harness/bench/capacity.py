"""Capacity search results: per-step points from the load processes' interval lines, the knee
of the latency-vs-throughput curve, the capacity at the objective, and what saturated."""

from __future__ import annotations

import os
from collections import defaultdict

from harness.bench import histograms
from harness.bench.schedule import CapacityPlan

KNEE_P99_FACTOR = 2.0  # p99 more than twice the light-load p99 …
KNEE_SHORTFALL = 0.95  # … or achieved throughput below 95 % of the offered rate: past the knee
CLIENT_SATURATED_CPU = 0.9  # of one core per load process
SERVER_SATURATED_CPU = 0.9  # of one core per redis-server (single-threaded)
MACHINE_SATURATED_CPU = 0.85  # of all cores: past this, run queues form and every process waits for a core
LATE_SATURATED = 0.1  # share of batches the load processes started late: they could not keep the schedule


def step_points(intervals: list[dict], wall_start: float, plan: CapacityPlan) -> list[dict]:
    """One point per step: offered and achieved rate, merged latency percentiles, errors, client CPU.
    Intervals that straddle a step boundary are left out (the rate changed inside them)."""
    by_step: dict[int, list[dict]] = defaultdict(list)
    for line in intervals:
        if line["start"] < wall_start - 1e-3:
            continue  # warm-up: users connecting, nothing scheduled yet
        first = plan.step_at(line["start"] - wall_start)
        last = plan.step_at(line["end"] - wall_start - 1e-6)
        if first == last and first < plan.max_steps:
            by_step[first].append(line)
    points = []
    for step in sorted(by_step):
        lines = by_step[step]
        merged = histograms.merge(line["hist"] for line in lines)
        per_process: dict[str, list[float]] = defaultdict(list)
        for line in lines:
            per_process[line["process"]].append(line["cpu"])
        # achieved: operations per second of each process over its own intervals, summed
        achieved = sum(
            sum(x["ops"] for x in lines if x["process"] == process)
            / sum(x["end"] - x["start"] for x in lines if x["process"] == process)
            for process in per_process
        )
        points.append(
            {
                "step": step,
                "target_rate": plan.rate(step),
                "throughput": achieved,
                "errors": sum(x["errors"] for x in lines),
                "client_cpu_max": max(sum(v) / len(v) for v in per_process.values()),
                "client_cpu_total": sum(sum(v) / len(v) for v in per_process.values()),
                "processes": len(per_process),
                **histograms.percentiles_ms(merged),
            }
        )
    return points


def knee(points: list[dict]) -> int | None:
    """Index of the last point before latency turns up (p99 > 2× light-load p99) or throughput stops
    following the offered rate (< 95 %); None when there are no points."""
    if not points:
        return None
    light = min(p["p99"] for p in points[: max(1, min(2, len(points)))]) or 1e-9
    for i, p in enumerate(points):
        if p["p99"] > KNEE_P99_FACTOR * light or p["throughput"] < KNEE_SHORTFALL * p["target_rate"] or p["errors"]:
            return max(0, i - 1)
    return len(points) - 1


def capacity_at_slo(points: list[dict], slo_p99_ms: float) -> float:
    """The highest achieved throughput of a step with p99 within the objective and no errors."""
    good = [p["throughput"] for p in points if p["p99"] <= slo_p99_ms and not p["errors"]]
    return max(good, default=0.0)


def saturation(
    client_cpu: float,
    server_cpu: dict[str, float],
    machine_cpu: float,
    schedule_late_fraction: float,
    cores: int | None = None,
    client_cpu_total: float | None = None,
    processes: int = 1,
) -> dict:
    """What limited the run at its highest load, named with the numbers that led to it.

    In order: the load generator (a load process ≥ 90 % of a core), a server (a redis-server ≥ 90 %
    of a core), the machine they share (all cores ≥ 85 % busy), the load generator again when more
    than 10 % of its batches started late (it could not keep the schedule), else none. `client_cpu`
    is the busiest load process (fraction of a core), `client_cpu_total` all of them (cores),
    `machine_cpu` the busy fraction of all `cores`."""
    cores = cores or os.cpu_count() or 1
    total_client = client_cpu if client_cpu_total is None else client_cpu_total
    busiest = max(server_cpu.items(), key=lambda kv: kv[1], default=("", 0.0))
    servers_total = sum(server_cpu.values())
    other = max(0.0, machine_cpu * cores - total_client - servers_total)
    shares = (
        f"load processes {total_client:.2f} cores, redis-servers {servers_total:.2f} cores, "
        f"everything else {other:.2f} cores, machine {machine_cpu:.0%} of {cores} cores"
    )
    late = f"{schedule_late_fraction:.0%} of batches started late"
    if client_cpu >= CLIENT_SATURATED_CPU:
        resource = "load generator"
        limited_by = f"load generator (locust processes at {client_cpu:.0%} CPU)"
        why = f"the busiest of {processes} load processes used {client_cpu:.0%} of a core; {shares}"
    elif busiest[1] >= SERVER_SATURATED_CPU:
        resource = "server"
        limited_by = f"server ({busiest[0]} at {busiest[1]:.0%} CPU)"
        why = f"{busiest[0]} used {busiest[1]:.0%} of a core (redis-server runs commands on one thread); {shares}"
    elif machine_cpu >= MACHINE_SATURATED_CPU:
        resource = "machine"
        limited_by = f"machine ({machine_cpu:.0%} CPU of {cores} cores)"
        why = f"all cores were {machine_cpu:.0%} busy: {shares}"
    elif schedule_late_fraction > LATE_SATURATED:
        resource = "load generator"
        limited_by = f"load generator ({late})"
        why = f"the load processes could not keep the schedule ({late}); {shares}"
    else:
        resource = "none"
        limited_by = "none"
        why = f"no CPU was saturated ({shares}, busiest redis-server {busiest[1]:.0%}): latency came from elsewhere (network, fsync, scheduling)"
    if schedule_late_fraction > LATE_SATURATED and resource not in ("load generator",):
        why += f"; {late}"
    return {
        "resource": resource,
        "limited_by": limited_by,
        "why": why,
        "client_cpu": client_cpu,
        "client_cpu_total": total_client,
        "server_cpu": server_cpu,
        "machine_cpu": machine_cpu,
        "cores": cores,
        "late_fraction": schedule_late_fraction,
    }
