"""A few seconds of real Locust load (two processes) and redis-benchmark against a small
cluster of its own: the report has throughput, no errors, sane percentiles and a baseline ratio."""

from __future__ import annotations

import json

import pytest

from harness.bench import workload as workloads
from harness.bench.run import BenchOptions, benchmark
from harness.observe import wait_healthy
from harness.platforms import registry

pytestmark = [pytest.mark.cluster, pytest.mark.netns, pytest.mark.timeout(120)]


@pytest.fixture
def bench_cluster(tmp_path):
    p = registry.create("local", cluster="rh-bench-smoke", state_dir=str(tmp_path / "state"), subnet="198.18.21.0/24")
    p.up()
    try:
        wait_healthy(p, timeout=60)
        yield p
    finally:
        p.down()


def test_benchmark_smoke(bench_cluster, tmp_path):
    workload = workloads.load("cache-read-heavy", {"keys.count": 2000})
    options = BenchOptions(seconds=3, processes=2, users=6, baseline_seconds=2)
    run_dir, body = benchmark(bench_cluster, workload, options, reports=tmp_path / "reports")

    report = json.loads((run_dir / "report.json").read_text())
    (closed,) = report["phases"]
    latency = closed["latency_ms"]
    assert closed["throughput"] > 0 and closed["ops"] > 0
    assert closed["errors"] == 0, closed["error_samples"]
    assert 0 < latency["p50"] <= latency["p99"] <= latency["max"]
    assert set(closed["by_command"]) == {"GET", "SET"}
    assert len(closed["client_cpu"]) == 2  # one entry per load process
    ratio = report["baseline"]["ratios"]["redis-benchmark"]
    assert ratio["throughput"] > 0 and ratio["p50"] > 0
    for name in ("index.html", "timeline.csv", "timeline.png", "baseline.csv", "histogram.hdr"):
        assert (run_dir / name).stat().st_size > 0, name
    password = bench_cluster.credentials().password("app")
    assert password not in (run_dir / "report.json").read_text()
