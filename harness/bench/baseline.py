"""Baselines against the same target: `redis-benchmark --cluster --tls` (always) and
`memtier_benchmark` (when it is on PATH), with the harness run's connections, load processes
(as threads), pipeline depth, key space and value sizes.

How the redis-benchmark comparison is built:

- Concurrency: `-c` = the harness's users, `--threads` = its load processes, `-P` = its pipeline.
- Keys: the `app` user may only touch `app:*`, so redis-benchmark runs a command given on its
  command line, `SET|GET app:{tag}:__rand_int__`. In cluster mode it replaces `{tag}` with a hash
  tag of a slot of the node the client talks to (one slot per node, redis-benchmark 7.0), and
  `__rand_int__` with a number in `[0, -r)`. Its key space is therefore masters × `-r` keys, so
  `-r` = ⌈keys / masters⌉: the same size as the workload's key space (within masters − 1 keys),
  uniform over it. A probe run finds the tags; a prefill pass then writes every one of those keys
  with values of the workload's sizes (the harness's own prefill does the same for its keys), so
  baseline GETs hit as the harness's do; the hit ratio is measured (INFO keyspace_hits/misses) and
  reported. The baseline's keys are removed afterwards.
- Values: a command given on the command line carries its value literally, so the SET value is
  the workload's mean value size (`-d` is passed with the same size for the record; redis-benchmark
  applies it only to its built-in tests). A workload with a TTL sets it too (`EX`).
- Mix: redis-benchmark has no read/write ratio and runs one command line per invocation, so a mixed
  workload is compared with one SET run and one GET run at the same settings, combined by the mix
  (GET weight = the workload's read share, get + exists; SET weight = the rest): throughput as
  1 / Σ(wᵢ / rpsᵢ) (a stream that spends wᵢ of its operations at each command's rate), p50 as Σ wᵢ·p50ᵢ,
  p99 as the larger of the two (an upper bound: the mixture's own p99 cannot be rebuilt from CSV
  percentiles). memtier_benchmark, when installed, runs the mix in one process with `--ratio`.
- Not matched: the key popularity (redis-benchmark draws keys uniformly; a zipf or hot workload
  does not), and the harness's own prefilled keys stay in place while the baseline runs.
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

import hiredis
import numpy as np

from harness.bench.client import Target, encode, slot_of
from harness.bench.workload import Workload
from harness.errors import HarnessError

PROBE = "rh-baseline-probe"
PREFILL_BATCH = 512


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


def key_range(keys: int, masters: int) -> int:
    """redis-benchmark's `-r`: its key space is masters × `-r` keys (one hash tag per node)."""
    return max(1, -(-keys // max(1, masters)))


def value_size(workload: Workload) -> int:
    return max(1, round(workload.value_size.mean))


def redis_benchmark_argv(
    target: Target,
    command: list[str],
    clients: int,
    threads: int,
    pipeline: int,
    requests: int,
    keys: int,
    data_size: int,
) -> list[str]:
    """`-c` clients over `--threads` threads, `-P` pipeline, `-n` requests, `-r` key range, `-d` value size."""
    host, port = target.seeds[0]
    argv = ["redis-benchmark", "--cluster", "-h", host, "-p", str(port), "--user", target.user, "-a", target.password]
    if target.ca:
        argv += ["--tls", "--cacert", target.ca, "--cert", target.cert or "", "--key", target.key or ""]
    return argv + [
        "-c", str(clients), "--threads", str(max(1, threads)), "-P", str(pipeline), "-n", str(requests),
        "-r", str(keys), "-d", str(data_size), "--csv", "-q", *command,
    ]  # fmt: skip


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
    """The redis-benchmark commands that stand for the workload's reads (GET) and writes (SET)."""
    tests: dict[str, list[str]] = {}
    if workload.mix.get("set", 0) or workload.mix.get("incr", 0) or workload.mix.get("del", 0):
        ttl = ["EX", str(workload.ttl_seconds)] if workload.ttl_seconds else []
        tests["SET"] = ["SET", "app:{tag}:__rand_int__", "x" * value_size(workload), *ttl]
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
    """One figure for the mix: throughput = 1 / Σ(wᵢ / rpsᵢ); p50 = Σ wᵢ·p50ᵢ; p99 = max p99ᵢ."""
    rps = 1 / sum(w / results[t].rps for t, w in weights.items() if results[t].rps > 0)
    return {
        "rps": rps,
        "p50_ms": sum(w * results[t].p50_ms for t, w in weights.items()),
        "p99_ms": max(results[t].p99_ms for t in weights),
    }


def describe(result: dict) -> str:
    """How a redis-benchmark result was built, in one paragraph of the report."""
    tests = " and ".join(f"{t} (weight {w:.2f})" for t, w in result["weights"].items())
    mixed = (
        f"one run per command, {tests}, combined: throughput 1/Σ(w/rps), p50 Σ w·p50, p99 the larger"
        if len(result["weights"]) > 1
        else f"one {tests.split(' ')[0]} run"
    )
    hits = result.get("get_hit_ratio")
    return (
        f"redis-benchmark --cluster: {result['clients']} connections over {result['threads']} threads "
        f"(the harness's users and load processes), pipeline {result['pipeline']}, values of {result['value_size']} B, "
        f"-r {result['key_range']} over {result['masters']} masters = {result['key_space']} keys, "
        f"{result['prefilled']} of them prefilled"
        + (f", GET hit ratio {hits:.1%}" if hits is not None else "")
        + f"; {mixed}. Keys are drawn uniformly."
    )


def run_redis_benchmark(
    target: Target,
    workload: Workload,
    clients: int,
    threads: int,
    pipeline: int,
    seconds: float,
    expected_rps: float,
    timeout: float,
) -> dict:
    """Probe, prefill, then each of the workload's commands for about `seconds` (bounded in requests
    and time), and the baseline's keys removed again."""
    if shutil.which("redis-benchmark") is None:
        raise BaselineError("'redis-benchmark' is not on PATH: install the Debian package redis-tools")
    from harness.bench.driver import slot_map, tls_context

    context = tls_context(target)
    nodes, owner, _replicas = slot_map(target, context)
    masters = [nodes[i] for i in sorted(set(owner))]
    keys = key_range(workload.keys, len(masters))
    size = value_size(workload)

    def argv(command: list[str], requests: int) -> list[str]:
        return redis_benchmark_argv(target, command, clients, threads, pipeline, requests, keys, size)

    _run(argv(["SET", f"app:{{tag}}:{PROBE}", "1"], max(100, 4 * clients)), timeout)
    prefixes = probe_prefixes(target, context, masters)
    one_per_master = len(prefixes) == len(masters) and len({slot_of(p) for p in prefixes}) == len(masters)
    prefilled = 0
    try:
        if one_per_master:
            values = workload.values(np.random.default_rng(7))
            prefilled = write_keys(target, context, nodes, owner, prefixes, keys, values)
        results: dict[str, BaselineResult] = {}
        hit_ratio = None
        for test, command in commands_for(workload).items():
            requests = int(min(5_000_000, max(20_000, expected_rps * seconds)))
            before = keyspace_stats(target, context, masters)
            text = _run(argv(command, requests), timeout)
            (results[test],) = parse_csv(text)
            if test == "GET":
                after = keyspace_stats(target, context, masters)
                hits, misses = after[0] - before[0], after[1] - before[1]
                hit_ratio = hits / (hits + misses) if hits + misses else None
    finally:
        if one_per_master:
            write_keys(target, context, nodes, owner, prefixes, keys, None)
    weights = mix_weights(workload, results)
    result = {
        "tool": "redis-benchmark",
        "clients": clients,
        "threads": max(1, threads),
        "pipeline": pipeline,
        "value_size": size,
        "masters": len(masters),
        "key_range": keys,
        "key_space": keys * len(prefixes) if one_per_master else None,
        "prefilled": prefilled,
        "get_hit_ratio": hit_ratio,
        "tests": {t: r.__dict__ for t, r in results.items()},
        "weights": weights,
        **combine(results, weights),
    }
    result["method"] = describe(result)
    return result


def probe_prefixes(target: Target, context, masters: list[tuple[str, int]]) -> list[str]:
    """The key prefixes (`app:{<tag>}:`) redis-benchmark used, found from its probe keys, which go."""
    from harness.bench.driver import Wire

    prefixes = []
    for address in masters:
        wire = Wire(address, target, context, readonly=False)
        try:
            cursor, found = b"0", []
            while True:
                wire.sock.sendall(encode("SCAN", cursor, "MATCH", f"app:{{*}}:{PROBE}", "COUNT", 1000))
                (reply,) = wire.read(1)
                if isinstance(reply, hiredis.ReplyError):
                    raise BaselineError(f"SCAN for redis-benchmark's probe keys failed: {reply}")
                cursor, batch = reply
                found += batch
                if cursor == b"0":
                    break
            if found:
                wire.sock.sendall(b"".join(encode("DEL", k) for k in found))
                wire.read(len(found))
            prefixes += sorted(k.decode()[: -len(PROBE)] for k in found)
        finally:
            wire.close()
    return prefixes


def write_keys(
    target: Target, context, nodes, owner: list[int], prefixes: list[str], keys: int, values: list[bytes] | None
) -> int:
    """SET every baseline key (values cycled from `values`, as the harness's prefill does), or DEL
    them all when `values` is None; returns the number of keys written or removed."""
    from harness.bench.driver import Wire

    wires: dict[int, Wire] = {}
    count = 0
    try:
        for prefix in prefixes:
            node = owner[slot_of(prefix)]
            if node not in wires:
                wires[node] = Wire(nodes[node], target, context, readonly=False)
            names = [f"{prefix}{i:012d}" for i in range(keys)]
            for start in range(0, keys, PREFILL_BATCH):
                batch = names[start : start + PREFILL_BATCH]
                if values is None:
                    commands = [encode("DEL", k) for k in batch]
                else:
                    commands = [encode("SET", k, values[(start + j) % len(values)]) for j, k in enumerate(batch)]
                wires[node].sock.sendall(b"".join(commands))
                errors = [r for r in wires[node].read(len(commands)) if isinstance(r, hiredis.ReplyError)]
                if errors:
                    raise BaselineError(f"writing redis-benchmark's key space failed: {errors[0]}")
                count += len(batch)
    finally:
        for wire in wires.values():
            wire.close()
    return count


def keyspace_stats(target: Target, context, masters: list[tuple[str, int]]) -> tuple[int, int]:
    """(keyspace_hits, keyspace_misses) summed over the masters (INFO stats)."""
    from harness.bench.driver import Wire

    hits = misses = 0
    for address in masters:
        wire = Wire(address, target, context, readonly=False)
        try:
            wire.sock.sendall(encode("INFO", "stats"))
            (reply,) = wire.read(1)
        finally:
            wire.close()
        fields = dict(line.split(":", 1) for line in reply.decode().splitlines() if ":" in line)
        hits += int(fields.get("keyspace_hits", 0))
        misses += int(fields.get("keyspace_misses", 0))
    return hits, misses


def run_memtier(
    target: Target, workload: Workload, clients: int, threads: int, pipeline: int, seconds: float, timeout: float
) -> dict | None:
    """memtier_benchmark with the workload's read/write ratio, when installed; None otherwise. Its `-c`
    is per thread, so the harness's users are spread over `threads` threads."""
    if shutil.which("memtier_benchmark") is None:
        return None
    host, port = target.seeds[0]
    reads = workload.read_fraction
    sets, gets = max(1, round((1 - reads) * 10)), round(reads * 10)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "memtier.json")
        argv = [
            "memtier_benchmark", "--cluster-mode", "-s", host, "-p", str(port),
            "--authenticate", f"{target.user}:{target.password}", "-t", str(max(1, threads)), "-c", str(max(1, round(clients / max(1, threads)))),
            "--pipeline", str(pipeline), "-d", str(value_size(workload)), f"--ratio={sets}:{gets}",
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
