"""Baselines against the same target: `redis-benchmark --cluster --tls` (always) and
`memtier_benchmark` (when it is on PATH), with the harness run's connections, pipeline
depth and value size.

redis-benchmark's keys are `app:{tag}:<n>` (the `app` user may only touch `app:*`; `{tag}`
is how redis-benchmark routes custom commands in cluster mode). A mixed workload is
compared against separate SET and GET runs, combined by the mix: throughput as the
harmonic mix, p50 as the weighted mean.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

from harness.bench.client import Target
from harness.bench.workload import Workload
from harness.errors import HarnessError


class BaselineError(HarnessError):
    """A baseline tool failed or printed something unreadable."""


@dataclass(frozen=True)
class BaselineResult:
    tool: str
    test: str
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float


def redis_benchmark_argv(target: Target, command: list[str], clients: int, pipeline: int, requests: int, keys: int) -> list[str]:
    host, port = target.seeds[0]
    argv = ["redis-benchmark", "--cluster", "-h", host, "-p", str(port), "--user", target.user, "-a", target.password]
    if target.ca:
        argv += ["--tls", "--cacert", target.ca, "--cert", target.cert or "", "--key", target.key or ""]
    return argv + ["-c", str(clients), "-P", str(pipeline), "-n", str(requests), "-r", str(keys), "--csv", "-q", *command]


def parse_csv(text: str) -> list[BaselineResult]:
    """redis-benchmark --csv: a header line, then one quoted line per test."""
    start = text.find('"test"')
    if start < 0:
        raise BaselineError(f"redis-benchmark printed no CSV results: {text.strip()[-200:] or '(nothing)'}")
    results = []
    for row in csv.DictReader(io.StringIO(text[start:])):
        try:
            results.append(
                BaselineResult(
                    tool="redis-benchmark",
                    test=row["test"].split()[0],
                    rps=float(row["rps"]),
                    p50_ms=float(row["p50_latency_ms"]),
                    p99_ms=float(row["p99_latency_ms"]),
                    max_ms=float(row["max_latency_ms"]),
                )
            )
        except (KeyError, ValueError, TypeError, AttributeError):
            raise BaselineError(f"redis-benchmark printed an unreadable CSV line: {row}") from None
    return results


def commands_for(workload: Workload) -> dict[str, list[str]]:
    """The redis-benchmark commands that stand for the workload's GETs and SETs."""
    value = "x" * max(1, round(workload.value_size.mean))
    tests: dict[str, list[str]] = {}
    if workload.mix.get("set", 0) or workload.mix.get("incr", 0) or workload.mix.get("del", 0):
        tests["SET"] = ["SET", "app:{tag}:__rand_int__", value]
    if workload.mix.get("get", 0) or workload.mix.get("exists", 0):
        tests["GET"] = ["GET", "app:{tag}:__rand_int__"]
    return tests


def mix_weights(workload: Workload, tests: dict[str, object]) -> dict[str, float]:
    reads = workload.read_fraction
    weights = {"GET": reads, "SET": 1 - reads}
    weights = {t: w for t, w in weights.items() if t in tests and w > 0}
    total = sum(weights.values())
    return {t: w / total for t, w in weights.items()}


def combine(results: dict[str, BaselineResult], weights: dict[str, float]) -> dict[str, float]:
    """One figure for the mix: throughput = 1 / Σ(wᵢ / rpsᵢ); p50 = Σ wᵢ·p50ᵢ."""
    rps = 1 / sum(w / results[t].rps for t, w in weights.items() if results[t].rps > 0)
    return {
        "rps": rps,
        "p50_ms": sum(w * results[t].p50_ms for t, w in weights.items()),
        "p99_ms": max(results[t].p99_ms for t in weights),
    }


def run_redis_benchmark(
    target: Target, workload: Workload, clients: int, pipeline: int, seconds: float, expected_rps: float, timeout: float
) -> dict:
    """Each of the workload's tests for about `seconds` (bounded in requests and time)."""
    if shutil.which("redis-benchmark") is None:
        raise BaselineError("'redis-benchmark' is not on PATH: install the Debian package redis-tools")
    tests = commands_for(workload)
    results: dict[str, BaselineResult] = {}
    for test, command in tests.items():
        requests = int(min(5_000_000, max(20_000, expected_rps * seconds)))
        argv = redis_benchmark_argv(target, command, clients, pipeline, requests, workload.keys)
        text = _run(argv, timeout)
        (results[test],) = parse_csv(text)
    weights = mix_weights(workload, results)
    return {
        "tool": "redis-benchmark",
        "clients": clients,
        "pipeline": pipeline,
        "value_size": max(1, round(workload.value_size.mean)),
        "tests": {t: r.__dict__ for t, r in results.items()},
        "weights": weights,
        **combine(results, weights),
    }


def run_memtier(target: Target, workload: Workload, clients: int, pipeline: int, seconds: float, timeout: float) -> dict | None:
    """memtier_benchmark with the workload's read/write ratio, when installed; None otherwise."""
    if shutil.which("memtier_benchmark") is None:
        return None
    host, port = target.seeds[0]
    reads = workload.read_fraction
    sets, gets = max(1, round((1 - reads) * 10)), round(reads * 10)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "memtier.json")
        argv = [
            "memtier_benchmark", "--cluster-mode", "-s", host, "-p", str(port),
            "--authenticate", f"{target.user}:{target.password}", "-t", "1", "-c", str(clients),
            "--pipeline", str(pipeline), "-d", str(max(1, round(workload.value_size.mean))), f"--ratio={sets}:{gets}",
            "--key-prefix", "app:m:", "--key-maximum", str(workload.keys), "--test-time", str(max(1, int(seconds))),
            "--hide-histogram", "--json-out-file", out,
        ]  # fmt: skip
        if target.ca:
            argv += ["--tls", "--cacert", target.ca, "--cert", target.cert or "", "--key", target.key or "", "--tls-skip-verify"]
        _run(argv, timeout)
        return parse_memtier_json(open(out).read())


def parse_memtier_json(text: str) -> dict:
    try:
        totals = json.loads(text)["ALL STATS"]["Totals"]
        percentiles = totals.get("Percentile Latencies", {})
        return {
            "tool": "memtier_benchmark",
            "rps": float(totals["Ops/sec"]),
            "p50_ms": float(percentiles.get("p50.00", totals.get("Latency", 0))),
            "p99_ms": float(percentiles.get("p99.00", 0)),
        }
    except (ValueError, KeyError, TypeError) as exc:
        raise BaselineError(f"memtier_benchmark wrote an unreadable JSON report ({exc})") from None


def _run(argv: list[str], timeout: float) -> str:
    """Run a baseline tool in its own process group; on timeout or Ctrl-C, the whole group goes."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)  # the exception's text would carry the argv, password included
        raise BaselineError(f"{argv[0]} did not finish within {timeout:.0f} s") from None
    except BaseException:
        _kill_group(proc)
        raise
    if proc.returncode != 0:
        raise BaselineError(f"{argv[0]} failed (exit {proc.returncode}): {(err or out).strip()[-200:]}")
    return out


def _kill_group(proc: subprocess.Popen) -> None:
    import signal

    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
