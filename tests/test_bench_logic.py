"""Pure logic of the benchmarks: workload files, key distributions, histograms, open-loop
accounting, redis-benchmark output, capacity knees and the regression gate."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from harness.bench import baseline, capacity, compare, histograms, report, schedule
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
        return {"process": pid, "start": start, "end": start + 1, "ops": 100, "errors": 0, "cpu": 0.5, "hist": enc}

    lines = [line(1, 0.0), line(2, 0.0), line(1, 1.5), line(1, 2.0), line(2, 3.0)]
    points = capacity.step_points(lines, 0.0, plan)
    assert [p["step"] for p in points] == [0, 1]
    assert points[0]["throughput"] == pytest.approx(200)  # two processes, 100 ops/s each
    assert points[0]["count"] == 200 and points[0]["p99"] == pytest.approx(1.5, rel=0.01)


def test_saturation_names_what_ran_out():
    assert capacity.saturation(0.97, {"redis-cluster-0": 0.3}, 0.9, 0.0)["resource"] == "load generator"
    assert capacity.saturation(0.5, {"redis-cluster-0": 0.95}, 0.9, 0.0)["resource"] == "server"
    assert capacity.saturation(0.5, {"redis-cluster-0": 0.5}, 0.99, 0.0)["resource"] == "machine"
    assert capacity.saturation(0.2, {"redis-cluster-0": 0.2}, 0.3, 0.0)["limited_by"] == "none"


def test_a_busy_machine_is_named_with_its_numbers_not_none():
    """93 % of two cores, no single process at 90 % of a core: the machine is the limit."""
    servers = {"redis-cluster-0": 0.35, "redis-cluster-1": 0.3, "redis-cluster-2": 0.3}
    s = capacity.saturation(0.6, servers, 0.93, 0.02, cores=2, client_cpu_total=0.9, processes=2)
    assert s["resource"] == "machine"
    assert s["limited_by"] == "machine (93% CPU of 2 cores)"
    assert "load processes 0.90 cores" in s["why"] and "redis-servers 0.95 cores" in s["why"]
    assert "everything else 0.01 cores" in s["why"]  # 0.93 × 2 − 0.90 − 0.95


def test_a_saturated_load_generator_is_named_with_its_numbers():
    s = capacity.saturation(0.97, {"redis-cluster-0": 0.4}, 0.96, 0.0, cores=2, client_cpu_total=1.8, processes=2)
    assert s["limited_by"] == "load generator (locust processes at 97% CPU)"
    assert "busiest of 2 load processes used 97% of a core" in s["why"]
    server = capacity.saturation(0.5, {"redis-cluster-0": 0.5, "redis-cluster-1": 0.95}, 0.7, 0.0, cores=2)
    assert server["limited_by"] == "server (redis-cluster-1 at 95% CPU)"


def test_a_generator_that_cannot_keep_its_schedule_is_the_limit():
    s = capacity.saturation(0.6, {"redis-cluster-0": 0.4}, 0.6, 0.3, cores=2)
    assert s["limited_by"] == "load generator (30% of batches started late)"


def test_step_points_carry_what_the_verdict_needs():
    plan = CapacityPlan(1000, 2, 2.0, 3)
    h = histograms.new()
    histograms.record(h, 1500, 100)
    enc = histograms.encode(h)
    lines = [
        {"process": pid, "start": 0.0, "end": 1.0, "ops": 100, "errors": 0, "cpu": cpu, "hist": enc}
        for pid, cpu in ((1, 0.5), (2, 0.7))
    ]
    (point,) = capacity.step_points(lines, 0.0, plan)
    assert point["client_cpu_max"] == pytest.approx(0.7)
    assert point["client_cpu_total"] == pytest.approx(1.2) and point["processes"] == 2


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
    argv = baseline.redis_benchmark_argv(t, ["GET", "app:{tag}:__rand_int__"], 24, 2, 16, 1000, 100, 128)
    assert argv[:2] == ["redis-benchmark", "--cluster"] and "--tls" in argv
    assert argv[argv.index("-P") + 1] == "16" and argv[argv.index("-c") + 1] == "24"


def test_redis_benchmark_runs_the_harness_threads_key_range_and_value_size():
    from harness.bench.client import Target

    t = Target([("198.18.20.2", 6379)], "app", "secret")
    argv = baseline.redis_benchmark_argv(t, ["GET", "app:{tag}:__rand_int__"], 6, 2, 1, 20_000, 667, 128)
    assert argv[argv.index("--threads") + 1] == "2"  # one thread per load process
    assert argv[argv.index("-r") + 1] == "667"
    assert argv[argv.index("-d") + 1] == "128"
    assert argv[-2:] == ["GET", "app:{tag}:__rand_int__"]


def test_the_baseline_key_space_is_the_workload_key_space():
    """redis-benchmark uses one hash tag per master: masters × -r keys, -r = ⌈keys / masters⌉."""
    assert baseline.key_range(2000, 3) == 667  # 2001 keys for 2000
    assert baseline.key_range(100_000, 3) == 33_334
    assert baseline.key_range(99, 3) == 33 and baseline.key_range(1, 3) == 1
    for keys in (1, 2, 1000, 2000, 100_000):
        assert keys <= 3 * baseline.key_range(keys, 3) < keys + 3


def test_baseline_commands_carry_the_workload_value_size_and_ttl():
    w = workloads.load("write-heavy", {"keys.count": 2000})
    tests = baseline.commands_for(w)
    assert set(tests) == {"SET", "GET"}
    assert tests["SET"][:2] == ["SET", "app:{tag}:__rand_int__"]
    assert len(tests["SET"][2]) == 288  # 64–512 uniform: the mean
    assert tests["SET"][3:] == ["EX", "300"]
    only_set = baseline.commands_for(workloads.load("set-only"))
    assert list(only_set) == ["SET"] and len(only_set["SET"][2]) == 64 and len(only_set["SET"]) == 3


def test_the_baseline_says_how_it_was_built():
    result = {
        "clients": 6, "threads": 2, "pipeline": 1, "value_size": 128, "key_range": 667, "masters": 3,
        "key_space": 2001, "prefilled": 2001, "get_hit_ratio": 1.0, "weights": {"GET": 0.9, "SET": 0.1},
    }  # fmt: skip
    text = baseline.describe(result)
    for part in ("6 connections over 2 threads", "-r 667 over 3 masters = 2001 keys", "2001 of them prefilled",
                 "GET hit ratio 100.0%", "GET (weight 0.90) and SET (weight 0.10)", "1/Σ(w/rps)"):  # fmt: skip
        assert part in text, part


# --- report compare: the regression gate -----------------------------------------------------------
WORKLOAD = {"name": "cache-read-heavy", "mix": {"get": 90.0, "set": 10.0}, "value_size": "128 B", "keys": 100_000,
            "distribution": "zipf", "pipeline": 1, "users": 24}  # fmt: skip


def _report(tmp_path, name, throughput, p99, phases=("closed",), errors=0, workload=None, users=24, capacity=None):
    d = tmp_path / name
    d.mkdir()
    rows = [
        {"name": n, "users": users, "errors": errors, "throughput": throughput, "latency_ms": {"p50": 1.0, "p99": p99}}
        for n in phases
    ]
    body = {"kind": "bench-x", "workload": workload or WORKLOAD, "phases": rows, "capacity": capacity}
    (d / "report.json").write_text(json.dumps(body))
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
    "change, words",
    [
        ({"workload": {**WORKLOAD, "name": "write-heavy"}}, ["different workloads", "cache-read-heavy → write-heavy"]),
        ({"workload": {**WORKLOAD, "keys": 2000}}, ["different workloads", "keys 100000 → 2000"]),
        ({"users": 6}, ["different user counts", "users 24 → 6"]),
        ({"workload": {**WORKLOAD, "pipeline": 16}}, ["different pipelines", "pipeline 1 → 16"]),
    ],
)
def test_compare_refuses_runs_that_are_not_alike(tmp_path, capsys, change, words):
    old, new = _report(tmp_path, "old", 10_000, 2.0), _report(tmp_path, "new", 10_000, 2.0, **change)
    assert main(["report", "compare", old, new]) == 2
    err = " ".join(capsys.readouterr().err.split())  # the console wraps long lines
    assert err.startswith("error: refusing to compare runs of different") and ". " not in err, err  # one sentence
    for word in words:
        assert word in err


def test_a_phase_missing_from_one_run_is_reported_and_fails(tmp_path, capsys):
    old = _report(tmp_path, "old", 10_000, 2.0, phases=("closed", "capacity"), capacity={"capacity_at_slo": 9000})
    new = _report(tmp_path, "new", 10_000, 2.0, phases=("closed",))
    assert main(["report", "compare", old, new]) == 1
    printed = capsys.readouterr().out
    assert "missing in NEW" in printed and "phases in one report only: 2" in printed
    result = compare.deltas(compare.load_report(old), compare.load_report(new), 10, 20)
    missing = [d for d in result if d.missing]
    assert [(d.phase, d.verdict) for d in missing] == [("capacity", "missing in NEW"), ("capacity", "missing in NEW")]
    assert [d.phase for d in result if d.metric == "throughput"] == ["closed"]


def test_a_phase_only_the_new_run_has_is_reported(tmp_path):
    old = _report(tmp_path, "old", 10_000, 2.0, phases=("closed",))
    new = _report(tmp_path, "new", 10_000, 2.0, phases=("closed", "open-5000"))
    result = compare.deltas(compare.load_report(old), compare.load_report(new), 10, 20)
    assert [(d.phase, d.verdict) for d in result if d.missing] == [("open-5000", "missing in OLD")]
    assert main(["report", "compare", old, new]) == 1


@pytest.mark.parametrize("old_errors, new_errors", [(0, 3), (5, 0)])
def test_errors_in_either_run_are_counted_and_fail(tmp_path, capsys, old_errors, new_errors):
    old = _report(tmp_path, "old", 10_000, 2.0, errors=old_errors)
    new = _report(tmp_path, "new", 10_000, 2.0, errors=new_errors)
    assert main(["report", "compare", old, new]) == 1
    assert f"errors: OLD {old_errors}, NEW {new_errors}" in capsys.readouterr().out
    (row,) = [d for d in compare.deltas(compare.load_report(old), compare.load_report(new), 10, 20) if d.metric == "errors"]
    assert (row.old, row.new, row.verdict) == (old_errors, new_errors, "errors")


@pytest.mark.parametrize(
    "args, message",
    [
        (["bench", "--workload", "no-such-workload"], "unknown workload"),
        (["bench", "--rate", "-1"], "rate must be"),
        (["bench", "--duration", "1.5"], "a shorter loop cannot be measured"),
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


def _interval(process, start, end, ops, final=False):
    h = histograms.new()
    histograms.record(h, 1000, max(ops, 1))
    line = {"process": process, "start": start, "end": end, "ops": ops, "errors": 0, "cpu": 0.5, "hist": histograms.encode(h)}
    return {**line, "final": True} if final else line


def test_a_run_that_only_sent_its_final_interval_still_has_a_timeline():
    # A short loop on a loaded machine: the processes stopped before their first flush.
    rows = report.timeline([_interval("a", 100.2, 102.9, 270, final=True), _interval("b", 100.3, 102.9, 260, final=True)])
    assert len(rows) == 1
    assert rows[0]["ops"] == 530 and rows[0]["throughput"] == pytest.approx(100 + 100)


def test_timeline_rows_follow_whole_seconds_and_sum_the_processes_rates():
    lines = [
        _interval("a", 10.4, 11.0, 60), _interval("a", 11.0, 12.0, 100), _interval("a", 12.0, 12.5, 50, final=True),
        _interval("b", 10.7, 11.0, 60), _interval("b", 11.0, 12.0, 200), _interval("b", 12.0, 12.5, 100, final=True),
    ]  # fmt: skip
    rows = report.timeline(lines)
    assert [r["second"] for r in rows] == [0, 1, 2]
    assert [r["throughput"] for r in rows] == pytest.approx([100 + 200, 300, 300])
    assert sum(r["ops"] for r in rows) == sum(x["ops"] for x in lines)


def test_intervals_end_on_the_anchors_clock():
    assert schedule.next_boundary(100.3, 0.0) == pytest.approx(101.0)
    assert schedule.next_boundary(101.0, 0.0) == pytest.approx(102.0)
    assert schedule.next_boundary(100.3, 100.5) == pytest.approx(100.5)  # the schedule starts ahead: its first second
    assert schedule.next_boundary(107.0, 100.5) == pytest.approx(107.5)
