"""Pure logic of the benchmarks: workload files, key distributions, histograms, open-loop
accounting, redis-benchmark output, capacity knees and the regression gate."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from harness.bench import baseline, capacity, compare, histograms
from harness.bench import workload as workloads
from harness.bench.schedule import CapacityPlan, OpenLoopSchedule, RateError
from harness.cli import main


# --- workload files ------------------------------------------------------------------------
def test_shipped_workloads_parse():
    names = workloads.available()
    assert {"cache-read-heavy", "write-heavy"} <= set(names)
    for name in names:
        w = workloads.load(name)
        assert w.keys > 0 and sum(w.mix.values()) > 0


def test_cli_knobs_override_the_file():
    w = workloads.load(
        "cache-read-heavy", {"pipeline": 16, "keys.count": 500, "mix": {"get": 1}, "value_size": {"min": 8, "max": 16}}
    )
    assert (w.pipeline, w.keys, w.mix, w.value_size.min, w.value_size.max) == (16, 500, {"get": 1}, 8, 16)


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"mix": {"get": 1}, "colour": "blue"}, "unknown field 'colour'"),
        ({"mix": {"fetch": 1}}, "unknown operation 'fetch'"),
        ({"mix": {"get": 0}}, "at least one positive weight"),
        ({"mix": {"get": 1}, "keys": {"distribution": "pareto"}}, "'keys.distribution' must be one of"),
        ({"mix": {"get": 1}, "pipeline": 0}, "'pipeline' must be between 1"),
        ({"mix": {"get": 1}, "pipeline": 2.5}, "'pipeline' must be an integer"),
        ({"mix": {"get": 1}, "value_size": "big"}, "'value_size' must be"),
        ({"mix": {"get": 1}, "read_from_replicas": "yes"}, "must be true or false"),
        ({"mix": {"set": 1}, "keys": {"count": 1_000_000}, "value_size": 1024}, "budget"),
    ],
)
def test_bad_workload_fields_are_one_clear_error(raw, message):
    with pytest.raises(workloads.WorkloadError, match=message):
        workloads.parse(raw, "w.yaml")


def test_bad_mix_and_value_size_text():
    assert workloads.parse_mix("get=90,set=10") == {"get": 90.0, "set": 10.0}
    assert workloads.parse_value_size_text("64:9,4096:1") == {"choices": {64: 9.0, 4096: 1.0}}
    with pytest.raises(workloads.WorkloadError):
        workloads.parse_mix("get90")
    with pytest.raises(workloads.WorkloadError):
        workloads.parse_value_size_text("a-b")


# --- key distributions -------------------------------------------------------------------------
def _draw(distribution: str, **keys) -> np.ndarray:
    w = workloads.parse({"mix": {"get": 1}, "keys": {"count": 10_000, "distribution": distribution, **keys}})
    return w.key_indices(np.random.default_rng(1), 200_000)


def test_uniform_keys_are_flat():
    counts = np.bincount(_draw("uniform"), minlength=10_000)
    assert counts.min() > 0 and counts.max() < 3 * counts.mean()


def test_zipf_keys_concentrate_on_the_first_ranks():
    draws = _draw("zipf", zipf_s=0.99)
    top_one_percent = np.mean(draws < 100)
    assert 0.4 < top_one_percent < 0.7  # s≈1 over 10k keys: ~53 % of requests to the top 1 %
    assert draws.max() < 10_000


def test_hot_keys_get_their_share():
    draws = _draw("hot", hot_keys=0.01, hot_share=0.9)
    assert abs(np.mean(draws < 100) - 0.9) < 0.01


def test_hash_tags_put_keys_in_few_slots():
    from harness.bench.client import slot_of

    w = workloads.parse({"mix": {"get": 1}, "keys": {"count": 1000, "hash_tags": 4}})
    assert len({slot_of(w.key(i)) for i in range(1000)}) == 4


# --- histograms --------------------------------------------------------------------------------
def test_merged_histograms_give_the_percentiles_of_all_values():
    a, b = histograms.new(), histograms.new()
    for v in range(1, 501):
        histograms.record(a, v * 10)  # 10 µs … 5 ms
    for v in range(501, 1001):
        histograms.record(b, v * 10)
    merged = histograms.merge([histograms.encode(a), histograms.encode(b)])
    p = histograms.percentiles_ms(merged)
    assert p["count"] == 1000
    assert p["p50"] == pytest.approx(5.0, rel=0.01)
    assert p["p99"] == pytest.approx(9.9, rel=0.01)
    assert p["p50"] <= p["p90"] <= p["p99"] <= p["p99.9"] <= p["max"] == pytest.approx(10.0, rel=0.01)


def test_batch_latency_counts_once_per_operation():
    h = histograms.new()
    histograms.record(h, 2000, count=16)
    assert histograms.percentiles_ms(h)["count"] == 16


# --- open loop: coordinated omission -------------------------------------------------------------
def test_a_stall_counts_against_every_request_that_should_have_started_during_it():
    """100 batches/s; the server stalls for 1 s on the 10th. A closed-loop view sees one slow request;
    from intended start times, the ~100 requests queued behind it are slow too."""
    schedule = OpenLoopSchedule(start=0.0, rate=100)
    now, latencies, service = 0.0, [], []
    for i in range(300):
        now = max(now, schedule.next)  # the generator sleeps until due, or is late
        intended = schedule.start(now)
        took = 1.0 if i == 10 else 0.001
        now += took
        latencies.append(OpenLoopSchedule.latency(intended, now))
        service.append(took)
    slow = sum(1 for x in latencies if x > 0.1)
    assert sum(1 for x in service if x > 0.1) == 1
    assert 90 <= slow <= 101
    assert schedule.late >= 90 and schedule.max_lag == pytest.approx(0.99, abs=0.02)
    assert max(latencies) == pytest.approx(1.001, abs=0.01)


def test_capacity_plan_steps_and_rejects_nonsense():
    plan = CapacityPlan.parse("1000:2:3:4", slo_p99_ms=5)
    assert [plan.rate(s) for s in range(5)] == [1000, 2000, 4000, 8000, 8000]
    assert plan.step_at(6.5) == 2 and plan.duration == 12
    for bad in ("x", "0", "100:1", "100:2:1", "1:2:3:4:5"):
        with pytest.raises(RateError):
            CapacityPlan.parse(bad, slo_p99_ms=5)
    with pytest.raises(RateError):
        OpenLoopSchedule(0.0, rate=0)


# --- capacity search ---------------------------------------------------------------------------
def _point(rate, achieved, p99, errors=0):
    return {"target_rate": rate, "throughput": achieved, "p99": p99, "p50": p99 / 3, "errors": errors}


def test_knee_is_the_last_step_before_latency_turns_up():
    points = [_point(1000, 1000, 1.0), _point(2000, 2000, 1.1), _point(4000, 3990, 1.5), _point(8000, 6000, 9.0)]
    assert capacity.knee(points) == 2
    assert capacity.capacity_at_slo(points, slo_p99_ms=5) == 3990


def test_knee_when_throughput_stops_following_the_offered_rate():
    points = [_point(1000, 1000, 1.0), _point(2000, 1990, 1.0), _point(4000, 3000, 1.2)]
    assert capacity.knee(points) == 1


def test_knee_is_the_last_point_when_nothing_broke_and_errors_end_it():
    assert capacity.knee([_point(1000, 1000, 1.0), _point(2000, 2000, 1.2)]) == 1
    assert capacity.knee([_point(1000, 1000, 1.0), _point(2000, 2000, 1.0, errors=3)]) == 0
    assert capacity.knee([]) is None


def test_step_points_merge_processes_and_drop_straddling_intervals():
    plan = CapacityPlan(1000, 2, 2.0, 3)
    h = histograms.new()
    histograms.record(h, 1500, 100)
    enc = histograms.encode(h)

    def line(pid, start):
        return {"pid": pid, "start": start, "end": start + 1, "ops": 100, "errors": 0, "cpu": 0.5, "hist": enc}

    lines = [line(1, 0.0), line(2, 0.0), line(1, 1.5), line(1, 2.0), line(2, 3.0)]
    points = capacity.step_points(lines, 0.0, plan)
    assert [p["step"] for p in points] == [0, 1]
    assert points[0]["throughput"] == pytest.approx(200)  # two processes, 100 ops/s each
    assert points[0]["count"] == 200 and points[0]["p99"] == pytest.approx(1.5, rel=0.01)


def test_saturation_names_what_ran_out():
    assert capacity.saturation(0.97, {"redis-cluster-0": 0.3}, 0.9, 0.0)["limited_by"] == "client"
    assert capacity.saturation(0.5, {"redis-cluster-0": 0.95}, 0.9, 0.0)["limited_by"] == "servers"
    assert capacity.saturation(0.5, {"redis-cluster-0": 0.5}, 0.99, 0.0)["limited_by"] == "machine"
    assert capacity.saturation(0.2, {"redis-cluster-0": 0.2}, 0.3, 0.0)["limited_by"] == "none"


# --- redis-benchmark ---------------------------------------------------------------------------
CSV = """Cluster has 3 master nodes:

Master 0: 451274eff6 198.18.20.2:6379

"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
"SET app:{tag}:__rand_int__ xxxx","43610.99","0.782","0.072","0.655","1.415","2.855","43.263"
"""


def test_redis_benchmark_csv_is_parsed():
    (r,) = baseline.parse_csv(CSV)
    assert (r.test, r.rps, r.p50_ms, r.p99_ms, r.max_ms) == ("SET", 43610.99, 0.655, 2.855, 43.263)


def test_unreadable_redis_benchmark_output_is_an_error():
    with pytest.raises(baseline.BaselineError):
        baseline.parse_csv("Could not connect to Redis at 127.0.0.1:6379: Connection refused")
    with pytest.raises(baseline.BaselineError):
        baseline.parse_csv('"test","rps"\n"SET","fast"\n')


def test_a_mixed_workload_is_compared_with_the_mix_of_set_and_get():
    w = workloads.load("cache-read-heavy")
    results = {
        "GET": baseline.BaselineResult("redis-benchmark", "GET", 50_000, 0.5, 1.0, 2.0),
        "SET": baseline.BaselineResult("redis-benchmark", "SET", 25_000, 1.0, 2.0, 3.0),
    }
    combined = baseline.combine(results, baseline.mix_weights(w, results))
    assert combined["rps"] == pytest.approx(1 / (0.9 / 50_000 + 0.1 / 25_000))
    assert combined["p50_ms"] == pytest.approx(0.55)


def test_redis_benchmark_argv_uses_tls_user_and_tagged_keys():
    from harness.bench.client import Target

    t = Target([("198.18.20.2", 6379)], "app", "secret", "/ca", "/crt", "/key")
    argv = baseline.redis_benchmark_argv(t, ["GET", "app:{tag}:__rand_int__"], 24, 16, 1000, 100)
    assert argv[:2] == ["redis-benchmark", "--cluster"] and "--tls" in argv
    assert argv[argv.index("-P") + 1] == "16" and argv[argv.index("-c") + 1] == "24"


# --- report compare: the regression gate -----------------------------------------------------------
def _report(tmp_path, name, throughput, p99):
    d = tmp_path / name
    d.mkdir()
    phase = {"name": "closed", "throughput": throughput, "latency_ms": {"p50": 1.0, "p99": p99}}
    (d / "report.json").write_text(json.dumps({"kind": "bench-x", "phases": [phase], "capacity": None}))
    return str(d)


def test_compare_passes_within_the_thresholds(tmp_path):
    old, new = _report(tmp_path, "old", 10_000, 2.0), _report(tmp_path, "new", 9_500, 2.2)
    assert main(["report", "compare", old, new]) == 0


def test_compare_fails_on_a_throughput_drop_past_the_threshold(tmp_path):
    old, new = _report(tmp_path, "old", 10_000, 2.0), _report(tmp_path, "new", 8_000, 2.0)
    assert main(["report", "compare", old, new]) == 1


def test_compare_fails_on_a_p99_rise_past_the_threshold(tmp_path):
    old, new = _report(tmp_path, "old", 10_000, 2.0), _report(tmp_path, "new", 10_000, 2.6)
    assert main(["report", "compare", old, new]) == 1


def test_compare_of_a_missing_report_is_one_sentence(tmp_path, capsys):
    assert main(["report", "compare", str(tmp_path / "nope"), str(tmp_path / "nope2")]) == 2
    assert "no benchmark report" in capsys.readouterr().err


def test_deltas_judge_only_throughput_and_p99():
    old = {"phases": [{"name": "closed", "throughput": 100, "latency_ms": {"p50": 1, "p99": 2}}]}
    new = {"phases": [{"name": "closed", "throughput": 100, "latency_ms": {"p50": 5, "p99": 2}}]}
    result = compare.deltas(old, new, 10, 20)
    assert not any(d.regressed for d in result)


@pytest.mark.parametrize(
    "args, message",
    [
        (["bench", "--workload", "no-such-workload"], "unknown workload"),
        (["bench", "--rate", "-1"], "rate must be"),
        (["bench", "--capacity", "fast"], "capacity plan"),
        (["bench", "--mix", "get90"], "mix"),
    ],
)
def test_bench_bad_input_is_one_sentence_and_exit_2(args, message, capsys):
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_node_local_runs_keep_every_operation_and_group_by_node():
    from harness.bench.driver import node_local

    write_node = [slot % 3 for slot in range(30)]  # slot → master index
    sequence = [("SET" if i % 4 else "GET", i % 30, i % 4 == 0, b"cmd%d" % i, None) for i in range(200)]
    runs = node_local(sequence, write_node, pipeline=8)
    assert sorted(runs) == sorted(sequence)  # the same operations, so the same key distribution
    routes = Counter((write_node[slot], read) for _n, slot, read, _c, _v in sequence)
    complete = len(sequence) - sum(count % 8 for count in routes.values())  # leftovers close the list
    for start in range(0, complete, 8):
        assert len({(write_node[slot], read) for _n, slot, read, _c, _v in runs[start : start + 8]}) == 1
    assert node_local(sequence, write_node, pipeline=1) == sequence
