"""Locust glue: the Redis Cluster user, its command-line knobs, the per-process recorder and
the capacity-search shape. benchmarks/locustfile.py imports these.

Each operation fires `events.request` (request_type "redis", name = the command), so
Locust's own statistics and web UI work. The honest numbers go into HdrHistograms per
process: pipelined operations share their batch's latency (send → last reply of the batch,
what redis-benchmark reports per request under -P); in open loop, latency counts from the
batch's intended start. With --results DIR every load process reports one line per second and
a summary at the end to the master (a Locust message, so workers on other machines — the
loadgen Deployment's pods — report as forked ones do); the master appends them to
DIR/worker-<process>.jsonl, where the capacity shape reads them.
"""

from __future__ import annotations

import glob
import json
import os
import re
import socket
import time
from pathlib import Path

import gevent
import gevent.lock
import yaml
from locust import User, constant, events, task
from locust.runners import MasterRunner, WorkerRunner
from locust.shape import LoadTestShape

from harness.bench import histograms
from harness.bench.client import Target
from harness.bench.driver import Driver
from harness.bench.loadgen import Commands
from harness.bench.schedule import FLUSH_SECONDS, LATE_SECONDS, CapacityPlan, next_boundary
from harness.bench.workload import load as load_workload
from harness.bench.workload import parse as parse_workload
from harness.bench.workload import parse_mix, parse_value_size_text

INTERVALS = "redis-harness-intervals"  # the Locust message a load process reports its lines with
MAX_RUN_SECONDS = 6 * 3600  # a bound on the load loop besides --run-time


@events.init_command_line_parser.add_listener
def _knobs(parser):
    group = parser.add_argument_group("redis-harness benchmark")
    group.add_argument("--workload", default="cache-read-heavy", help="workload name or file (benchmarks/workloads)")
    group.add_argument(
        "--workload-spec", default="", help="the effective workload as YAML (redis-harness bench passes it; overrides --workload)"
    )
    group.add_argument("--seconds", type=float, default=0.0, help="stop the load after this many seconds (0: --run-time)")
    group.add_argument("--platform", default="local", help="the platform the cluster runs on")
    group.add_argument("--cluster", default=None, help="local: the cluster to load (its credentials and pods)")
    group.add_argument(
        "--platform-options", default="{}", help="the platform's options as JSON (redis-harness bench passes them)"
    )
    group.add_argument("--pipeline", type=int, default=None, help="operations per round trip of a user")
    group.add_argument("--value-size", default=None, help="BYTES, MIN-MAX or SIZE:WEIGHT,...")
    group.add_argument("--keys", type=int, default=None, help="key space size")
    group.add_argument("--key-distribution", default=None, help="uniform, zipf or hot")
    group.add_argument("--mix", default=None, help="operation weights, e.g. get=90,set=10")
    group.add_argument("--hash-tags", type=int, default=None, help="group keys under N hash tags (0: none)")
    group.add_argument("--read-from-replicas", action="store_true", default=None, help="send reads to replicas (READONLY)")
    group.add_argument("--ttl", type=int, default=None, help="SET with EX seconds (0: no TTL)")
    group.add_argument("--rate", type=float, default=0.0, help="open loop: total operations/s (0: closed loop)")
    group.add_argument("--capacity", default="", help="capacity search START[:FACTOR[:STEP_SECONDS[:MAX_STEPS]]]")
    group.add_argument("--slo-p99-ms", type=float, default=5.0, help="p99 objective of the capacity search")
    group.add_argument("--results", default="", help="directory for per-process interval files")
    group.add_argument(
        "--start-at",
        type=float,
        default=0.0,
        help="open loop and capacity search: epoch second the schedule starts (after warm-up)",
    )


def workload_from(options):
    overrides = {
        "pipeline": options.pipeline,
        "keys.count": options.keys,
        "keys.distribution": options.key_distribution,
        "keys.hash_tags": options.hash_tags,
        "read_from_replicas": options.read_from_replicas,
        "ttl_seconds": options.ttl,
        "mix": parse_mix(options.mix) if options.mix else None,
        "value_size": parse_value_size_text(options.value_size) if options.value_size else None,
    }
    if options.workload_spec:
        return parse_workload(yaml.safe_load(options.workload_spec), "the workload the master sent")
    return load_workload(options.workload, overrides)


def target_from(options) -> Target:
    import json

    from harness.platforms import registry

    platform_options = json.loads(options.platform_options)
    if options.cluster:
        platform_options["cluster"] = options.cluster
    platform = registry.create(options.platform, **platform_options)
    return Target.from_platform(platform)


class Recorder:
    """This process's measurements: histograms (total, per command, per interval), schedule lag, CPU."""

    def __init__(self, send=None, anchor: float = 0.0):
        self.send = send  # where a line goes (None: nothing is recorded)
        # Intervals end at anchor + k × FLUSH_SECONDS (wall clock): every process's lines cover the
        # same seconds, and a scheduled run's lines never straddle a capacity step.
        self.anchor = anchor
        self.process = f"{socket.gethostname()}/{os.getpid()}"  # containers' load processes are all PID 1
        self.total = histograms.new()
        self.by_command: dict[str, object] = {}
        self.interval = histograms.new()
        self.ops = self.errors = self.interval_ops = self.interval_errors = 0
        self.late = self.batches = 0
        self.max_lag = 0.0
        self.error_samples: dict[str, str] = {}
        self.started = time.time()
        self.last_flush = time.time()
        self.last_cpu = time.process_time()
        self.cpu_start = self.last_cpu
        self.flusher = None

    def record(self, names: list[str], micros: float, failed: int) -> None:
        n = len(names)
        histograms.record(self.total, micros, n)
        histograms.record(self.interval, micros, n)
        counts: dict[str, int] = {}
        for name in names:
            counts[name] = counts.get(name, 0) + 1
        for name, count in counts.items():
            h = self.by_command.get(name)
            if h is None:
                self.by_command[name] = h = histograms.new()
            histograms.record(h, micros, count)
        self.ops += n
        self.interval_ops += n
        self.errors += failed
        self.interval_errors += failed

    def start_flushing(self) -> None:
        if self.send and self.flusher is None:
            self.flusher = gevent.spawn(self._flush_loop)

    def _flush_loop(self) -> None:
        while True:
            gevent.sleep(next_boundary(time.time(), self.anchor) - time.time())
            self.flush()

    def flush(self, final: bool = False) -> None:
        if not self.send:
            return
        now, cpu = time.time(), time.process_time()
        line = {
            "process": self.process,
            "start": self.last_flush,
            "end": now,
            "ops": self.interval_ops,
            "errors": self.interval_errors,
            "cpu": (cpu - self.last_cpu) / max(now - self.last_flush, 1e-6),
            "hist": histograms.encode(self.interval),
        }
        self.interval, self.interval_ops, self.interval_errors = histograms.new(), 0, 0
        self.last_flush, self.last_cpu = now, cpu
        if final:
            line.update(
                final=True,
                total_ops=self.ops,
                total_errors=self.errors,
                total_hist=histograms.encode(self.total),
                by_command={name: histograms.encode(h) for name, h in self.by_command.items()},
                batches=self.batches,
                late_batches=self.late,
                max_schedule_lag_ms=self.max_lag * 1000,
                cpu_seconds=cpu - self.cpu_start,
                wall_seconds=now - self.started,
                error_samples=self.error_samples,
            )
        self.send(line)


def append_interval(results: str, process: str, line: dict) -> None:
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", process)
    with open(Path(results) / f"worker-{name}.jsonl", "a") as f:
        f.write(json.dumps(line) + "\n")


def _sender(environment, results: str):
    """A worker sends its lines to the master; a lone process (no --processes, no master) writes them."""
    if not results:
        return None
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        return lambda line: runner.send_message(INTERVALS, line)
    Path(results).mkdir(parents=True, exist_ok=True)
    return lambda line: append_interval(results, line["process"], line)


@events.init.add_listener
def _collect_intervals(environment, **_kwargs):
    """The master writes down what its workers report, wherever they run."""
    runner = environment.runner
    results = getattr(environment.parsed_options, "results", "")
    if isinstance(runner, MasterRunner) and results:
        Path(results).mkdir(parents=True, exist_ok=True)
        runner.register_message(INTERVALS, lambda msg, **_kw: append_interval(results, msg.data["process"], msg.data))


_state: dict[str, object] = {}
_state_lock = gevent.lock.Semaphore()


def _process_state(environment):
    """Built once per load process: the workload's commands, the target, the recorder."""
    with _state_lock:  # building it yields (platform look-ups), and every user asks at once
        return _build_state(environment)


def _build_state(environment):
    if not _state:
        options = environment.parsed_options
        workload = workload_from(options)
        _state.update(
            workload=workload,
            commands=Commands(workload),
            target=target_from(options),
            recorder=Recorder(_sender(environment, options.results), anchor=options.start_at or 0.0),
            plan=CapacityPlan.parse(options.capacity, options.slo_p99_ms) if options.capacity else None,
            # One clock for every process and the shape: the schedule starts at --start-at, once
            # every user has connected, so connecting is not charged to scheduled requests.
            plan_start=time.perf_counter() + ((options.start_at or time.time()) - time.time()),
            next_user=0,
        )
    return _state


@events.test_stop.add_listener
def _final_flush(environment, **_kwargs):
    recorder = _state.get("recorder")
    if isinstance(recorder, Recorder):
        recorder.flush(final=True)
        if recorder.flusher is not None:
            recorder.flusher.kill(block=False)
            recorder.flusher = None
        _state.clear()


def _driver(environment, state) -> Driver:
    """The process's load engine, started with its first user; it runs until the last one leaves."""
    driver = state.get("driver")
    if driver is not None:
        return driver  # type: ignore[return-value]
    options = environment.parsed_options
    workload, recorder = state["workload"], state["recorder"]
    users = max(1, options.num_users or 1)
    plan, plan_start = state["plan"], state["plan_start"]
    fire = environment.events.request.fire

    def batch_rate(now: float) -> float:
        if plan is not None:
            return plan.rate(plan.step_at(now - plan_start)) / users / workload.pipeline
        return options.rate / users / workload.pipeline

    def on_batch(ok: list[str], failed: list[tuple[str, str]], latency_s: float, lag_s: float) -> None:
        millis = latency_s * 1000
        for name in ok:
            fire(request_type="redis", name=name, response_time=millis, response_length=0, exception=None, context=None)
        for name, error in failed:
            recorder.error_samples.setdefault(error.split()[0], error[:200])
            fire(request_type="redis", name=name, response_time=millis, response_length=0, exception=error, context=None)
        recorder.batches += 1
        if lag_s > LATE_SECONDS:
            recorder.late += 1
        recorder.max_lag = max(recorder.max_lag, lag_s)
        recorder.record(ok, millis * 1000, len(failed))

    open_loop = bool(plan or options.rate)
    driver = Driver(
        state["target"],
        state["commands"].shared_sequence(),
        workload.pipeline,
        on_batch,
        read_from_replicas=workload.read_from_replicas,
        batch_rate=batch_rate if open_loop else None,
        start=plan_start,
    )
    state["driver"] = driver

    def loop() -> None:
        try:
            driver.run(lambda: bool(driver.users), lambda: gevent.sleep(0), MAX_RUN_SECONDS)
        finally:
            driver.close()
            state.pop("driver", None)

    state["loop"] = gevent.spawn_later(0, loop)
    return driver


class RedisClusterUser(User):
    """A client of the cluster: one connection per node, batches of `pipeline` operations. The
    process's driver sends them; the user's own greenlet only keeps it registered."""

    abstract = False
    wait_time = constant(1.0)

    def on_start(self):
        state = _process_state(self.environment)
        self.recorder: Recorder = state["recorder"]  # type: ignore[assignment]
        self.recorder.start_flushing()
        self.user_index = state["next_user"] + os.getpid() * 1000
        state["next_user"] += 1
        self.driver = _driver(self.environment, state)
        self.driver.add_user(self.user_index)

    def on_stop(self):
        self.driver.remove_user(self.user_index)

    @task
    def registered(self):
        """Nothing to do here: the driver's loop sends this user's batches."""


def read_intervals(results: str, offsets: dict[str, int]) -> list[dict]:
    """New interval lines of every process since the last call (offsets are kept by the caller)."""
    lines = []
    for path in glob.glob(os.path.join(results, "worker-*.jsonl")):
        with open(path) as f:
            f.seek(offsets.get(path, 0))
            chunk = f.read()
        complete = chunk[: chunk.rfind("\n") + 1]
        offsets[path] = offsets.get(path, 0) + len(complete)
        lines += [json.loads(line) for line in complete.splitlines() if line]
    return lines


class CapacityShape(LoadTestShape):
    """Without --capacity: the -u users for --run-time. With it: the same users, the rate stepped
    (users read it from the plan), stopped once a step's p99 breaks the objective or errors appear."""

    use_common_options = True

    def __init__(self):
        super().__init__()
        self.offsets: dict[str, int] = {}
        self.intervals: list[dict] = []
        self.wall_start: float | None = None
        self.stop_reason = ""

    def tick(self):
        options = self.runner.environment.parsed_options
        users = options.num_users or 1
        if not options.capacity:
            seconds = options.seconds or options.run_time
            if seconds and self.get_run_time() > seconds:
                return self._end()
            return users, float(options.spawn_rate or users)
        if self.stop_reason:
            return self._end()
        if self.wall_start is None:
            self.wall_start = options.start_at or time.time()
        plan = CapacityPlan.parse(options.capacity, options.slo_p99_ms)
        if time.time() - self.wall_start >= plan.duration:
            self._note(options.results, "all steps ran")
            return self._end()
        if options.results:
            self.intervals += read_intervals(options.results, self.offsets)
            verdict = judge_finished_steps(self.intervals, self.wall_start, plan, time.time())
            if verdict:
                self._note(options.results, verdict)
                return self._end()
        return users, float(users)

    def _end(self) -> None:
        """A headless master told to end by its shape quits at once and gives its workers 0.5 s to
        report; stopped first, it waits until every worker has stopped, and each worker sends its
        final line before saying so."""
        if isinstance(self.runner, MasterRunner):
            self.runner.stop()
        return None

    def _note(self, results: str, reason: str) -> None:
        self.stop_reason = reason
        if results:
            Path(results, "shape.json").write_text(json.dumps({"wall_start": self.wall_start, "stop_reason": reason}))


def judge_finished_steps(intervals: list[dict], wall_start: float, plan: CapacityPlan, now: float) -> str:
    """Why to stop (a finished step broke the objective or had errors), or ''."""
    from harness.bench.capacity import step_points

    for point in step_points(intervals, wall_start, plan):
        if wall_start + (point["step"] + 1) * plan.step_seconds + FLUSH_SECONDS * 1.5 > now:
            continue  # the step's last interval may not be written yet
        if point["errors"]:
            return f"step {point['step']} ({point['target_rate']:.0f} ops/s) had {point['errors']} errors"
        if point["p99"] > plan.slo_p99_ms:
            return f"step {point['step']} ({point['target_rate']:.0f} ops/s) broke p99 ≤ {plan.slo_p99_ms:g} ms ({point['p99']:.2f} ms)"
    return ""
