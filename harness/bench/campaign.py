"""Run a benchmark against a running cluster: Locust headless with --processes (closed loop,
open loop or capacity search), server and machine CPU sampled alongside, the processes'
interval files merged, the baselines run with the same parameters, and a report written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.bench import baseline, capacity, histograms
from harness.bench.client import Target
from harness.bench.schedule import CapacityPlan, RateError
from harness.bench.workload import Workload
from harness.errors import HarnessError
from harness.platforms.base import Platform
from harness.ports import free_port

LOCUSTFILE = Path(__file__).resolve().parents[2] / "benchmarks" / "locustfile.py"
STARTUP_GRACE = 30.0  # seconds Locust may take to start its processes and connect, beyond --run-time
STOP_MARGIN = 15.0  # --run-time beyond the run's seconds: a bound, should the shape not stop the run
MASTER_PORT = 5557  # where remote workers (the loadgen Deployment) reach the master
WARMUP_SECONDS = 5.0  # open loop and capacity search: processes start and users connect before the schedule


class LoadError(HarnessError):
    """The load generator failed."""


@dataclass
class Phase:
    """One Locust run: what was asked, and the merged measurements."""

    name: str
    mode: str  # closed | open | capacity
    users: int
    processes: int
    seconds: float
    rate: float = 0.0
    plan: CapacityPlan | None = None
    lines: list[dict] = field(default_factory=list)
    finals: list[dict] = field(default_factory=list)
    server_cpu: list[dict] = field(default_factory=list)
    wall_start: float = 0.0
    stop_reason: str = ""

    def summary(self) -> dict:
        """Totals come from the interval lines (they partition the run, the final flush included), so a
        process whose end-of-run summary went missing still counts; per-command figures need the summaries."""
        total = histograms.merge(x["hist"] for x in self.lines)
        by_command: dict[str, list[str]] = {}
        for f in self.finals:
            for name, h in f["by_command"].items():
                by_command.setdefault(name, []).append(h)
        busy = [x for x in self.lines if x["ops"]]
        # From the schedule's start (after the warm-up) when there is one, to the last busy interval.
        span = (max(x["end"] for x in busy) - max(min(x["start"] for x in busy), self.wall_start)) if busy else 0.0
        batches = sum(f["batches"] for f in self.finals)
        cpu: dict[str, list[tuple[float, float]]] = {}
        for x in self.lines:
            cpu.setdefault(str(x["process"]), []).append((x["cpu"] * (x["end"] - x["start"]), x["end"] - x["start"]))
        return {
            "name": self.name,
            "mode": self.mode,
            "users": self.users,
            "processes": self.processes,
            "rate": self.rate,
            "ops": sum(x["ops"] for x in self.lines),
            "errors": sum(x["errors"] for x in self.lines),
            "throughput": sum(x["ops"] for x in busy) / span if span else 0.0,
            "latency_ms": histograms.percentiles_ms(total),
            "by_command": {n: histograms.percentiles_ms(histograms.merge(hs)) for n, hs in by_command.items()},
            "histogram": histograms.encode(total),
            "client_cpu": {pid: sum(c for c, _ in v) / max(sum(w for _, w in v), 1e-6) for pid, v in cpu.items()},
            "client_cpu_peak": max((x["cpu"] for x in self.lines if x["end"] - x["start"] > 0.5), default=0.0),
            "late_fraction": sum(f["late_batches"] for f in self.finals) / batches if batches else 0.0,
            "max_schedule_lag_ms": max((f["max_schedule_lag_ms"] for f in self.finals), default=0.0),
            "error_samples": {k: v for f in self.finals for k, v in f["error_samples"].items()},
            "wall_seconds": max((f["wall_seconds"] for f in self.finals), default=0.0),
            "stop_reason": self.stop_reason,
        }


class CpuSampler(threading.Thread):
    """Once a second: each master's redis-server CPU (INFO CPU deltas) and the machine's busy fraction."""

    def __init__(self, platform: Platform, interval: float = 1.0):
        super().__init__(daemon=True)
        self.platform = platform
        self.interval = interval
        self.samples: list[dict] = []
        self.halt = threading.Event()

    def _cpu(self, clients) -> dict[str, float]:
        seconds = {}
        for pod, client in clients.items():
            try:
                info = client.info("cpu")
                seconds[pod] = float(info["used_cpu_sys"]) + float(info["used_cpu_user"])
            except Exception:  # noqa: BLE001 - a node that does not answer has no sample
                continue
        return seconds

    def run(self) -> None:
        clients = {p.name: self.platform.node_client(p.name) for p in self.platform.pods() if p.running}
        previous, prev_machine, prev_time = self._cpu(clients), machine_jiffies(), time.time()
        while not self.halt.wait(self.interval):
            now, current, machine = time.time(), self._cpu(clients), machine_jiffies()
            elapsed = now - prev_time
            busy, total = machine[0] - prev_machine[0], machine[1] - prev_machine[1]
            self.samples.append(
                {
                    "time": now,
                    "servers": {pod: (current[pod] - previous[pod]) / elapsed for pod in current if pod in previous},
                    "machine": busy / total if total else 0.0,
                }
            )
            previous, prev_machine, prev_time = current, machine, now
        for client in clients.values():
            client.close()

    def stop(self) -> list[dict]:
        self.halt.set()
        self.join(timeout=5)
        return self.samples


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def run_locust(
    platform: Platform,
    workload: Workload,
    work_dir: Path,
    name: str,
    seconds: float,
    users: int,
    processes: int,
    rate: float = 0.0,
    plan: CapacityPlan | None = None,
    extra: list[str] | None = None,
    workers: int = 0,
) -> Phase:
    """Locust headless, stopped by its shape after the run's seconds (--run-time and a hard timeout
    bound it); Ctrl-C stops every process it started. With `workers`, this process is the master of
    that many remote workers (the loadgen Deployment's pods, which connect to MASTER_PORT) instead
    of forking `processes` of its own."""
    if rate < 0:
        raise RateError(f"rate must be a positive number of operations per second, not {rate!r}")
    results = work_dir / name
    results.mkdir(parents=True, exist_ok=True)
    run_seconds = plan.duration if plan else seconds
    scheduled = bool(plan or rate)
    start_at = time.time() + WARMUP_SECONDS if scheduled else 0.0
    locust_seconds = run_seconds + (WARMUP_SECONDS if scheduled else 0.0)
    topology = (
        ["--master", "--expect-workers", str(workers), "--expect-workers-max-wait", str(int(STARTUP_GRACE)),
         "--master-bind-port", str(MASTER_PORT)]
        if workers
        else ["--processes", str(processes), *master_port_args()]
    )  # fmt: skip
    argv = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary", "--skip-log-setup",
        "-u", str(users), "-r", str(users), "--seconds", f"{locust_seconds:g}",
        "-t", f"{int(locust_seconds + STOP_MARGIN)}s", "--stop-timeout", "2", "--exit-code-on-error", "0", *topology,
        "--workload-spec", workload_yaml(workload), "--platform", platform.name, "--platform-options", json.dumps(platform.options()),
        "--results", str(results), "--rate", str(rate), "--start-at", str(start_at),
        *(["--capacity", f"{plan.start_rate}:{plan.factor}:{plan.step_seconds}:{plan.max_steps}", "--slo-p99-ms", str(plan.slo_p99_ms)] if plan else []),
        *(extra or []),
    ]  # fmt: skip
    (work_dir / f"workload-{workload.name}.yaml").write_text(workload_yaml(workload))
    timeout = locust_seconds + STOP_MARGIN + STARTUP_GRACE * (2 if workers else 1)
    mode = "capacity" if plan else ("open" if rate else "closed")
    phase = Phase(name=name, mode=mode, users=users, processes=processes, seconds=run_seconds, rate=rate, plan=plan)
    sampler = CpuSampler(platform)
    sampler.start()
    log = open(results / "locust.log", "w")
    proc = subprocess.Popen(
        argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    phase.wall_start = start_at or time.time()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_group(proc)
        raise LoadError(f"locust did not finish within {timeout:.0f} s; see {results / 'locust.log'}") from None
    except BaseException:
        stop_group(proc)
        raise
    finally:
        phase.server_cpu = sampler.stop()
        log.close()
    if proc.returncode != 0:
        tail = (results / "locust.log").read_text().strip().splitlines()[-3:]
        raise LoadError(f"locust exited with status {proc.returncode}: {' '.join(tail)[-300:]}")
    for path in sorted(results.glob("worker-*.jsonl")):
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            phase.lines.append(entry)
            if entry.get("final"):
                phase.finals.append(entry)
    if not phase.lines:
        raise LoadError(f"no load process reported results; see {results / 'locust.log'}")
    shape = results / "shape.json"
    if shape.exists():
        meta = json.loads(shape.read_text())
        phase.wall_start, phase.stop_reason = meta["wall_start"], meta["stop_reason"]
    elif plan:
        phase.stop_reason = "all steps ran"
    return phase


def master_port_args() -> list[str]:
    port = str(free_port())  # the master binds it; --processes workers connect to it
    return ["--master-bind-port", port, "--master-port", port]


def workload_yaml(workload: Workload) -> str:
    """The effective workload (file and CLI knobs applied), as YAML the load processes parse."""
    import dataclasses

    import yaml

    data = dataclasses.asdict(workload)
    size = data.pop("value_size")
    data["value_size"] = (
        size["fixed"]
        if size["fixed"] is not None
        else ({"choices": size["choices"]} if size["choices"] else {"min": size["min"], "max": size["max"]})
    )
    data["keys"] = {
        "count": data.pop("keys"),
        **{k: data.pop(k) for k in ("distribution", "zipf_s", "hot_keys", "hot_share", "hash_tags")},
    }
    return yaml.safe_dump(data, sort_keys=False)


def stop_group(proc: subprocess.Popen) -> None:
    """SIGINT to Locust's process group (it stops its workers), then SIGKILL whatever is left."""
    for sig, wait in ((signal.SIGINT, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # forked workers outlive a master that exits first
    except ProcessLookupError:
        pass


def server_peak(samples: list[dict], start: float, end: float) -> tuple[dict[str, float], float]:
    """Mean CPU per server and of the machine between start and end."""
    inside = [s for s in samples if start <= s["time"] <= end] or samples
    pods = {pod for s in inside for pod in s["servers"]}
    servers = {pod: sum(s["servers"].get(pod, 0.0) for s in inside) / len(inside) for pod in sorted(pods)}
    machine = sum(s["machine"] for s in inside) / len(inside) if inside else 0.0
    return servers, machine


def analyse_capacity(phase: Phase) -> dict:
    """Steps, knee, capacity at the objective and what saturated at the highest load tried."""
    assert phase.plan is not None
    points = capacity.step_points([x for x in phase.lines if not x.get("final")], phase.wall_start, phase.plan)
    for p in points:
        start = phase.wall_start + p["step"] * phase.plan.step_seconds
        p["server_cpu"], p["machine_cpu"] = server_peak(phase.server_cpu, start, start + phase.plan.step_seconds)
    knee_index = capacity.knee(points)
    top = points[-1] if points else None
    summary = phase.summary()
    return {
        "plan": phase.plan.__dict__,
        "stop_reason": phase.stop_reason,
        "points": points,
        "knee": points[knee_index] if knee_index is not None else None,
        "capacity_at_slo": capacity.capacity_at_slo(points, phase.plan.slo_p99_ms),
        "saturation": capacity.saturation(
            top["client_cpu_max"] if top else 0.0,
            top["server_cpu"] if top else {},
            top["machine_cpu"] if top else 0.0,
            summary["late_fraction"],
            cores=os.cpu_count() or 1,
            client_cpu_total=top["client_cpu_total"] if top else 0.0,
            processes=top["processes"] if top else phase.processes,
        ),
    }


def run_baselines(
    platform: Platform, target: Target, workload: Workload, users: int, processes: int, seconds: float, expected_rps: float
) -> dict:
    """redis-benchmark (and memtier_benchmark when installed) with the harness's users as connections and its
    load processes as threads, over a prefilled key space of the workload's size (see harness/bench/baseline.py)."""
    result = {
        "redis-benchmark": baseline.run_redis_benchmark(
            target, workload, users, processes, workload.pipeline, seconds, expected_rps, timeout=seconds * 6 + 30
        )
    }
    memtier = baseline.run_memtier(target, workload, users, processes, workload.pipeline, seconds, timeout=seconds * 3 + 30)
    if memtier:
        result["memtier_benchmark"] = memtier
    return result
