"""A few seconds of real Locust load (two processes) and redis-benchmark against a small
cluster of its own: the report has throughput, no errors, sane percentiles and a baseline ratio.
And the same load from Locust workers started apart from the master, as the loadgen Deployment's
pods are on kind and kubernetes: they get the workload and the platform from the master and report
to it over Locust's own connection."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest

from harness.bench import campaign
from harness.bench import workload as workloads
from harness.bench.run import BenchOptions, benchmark
from harness.observe import wait_healthy
from harness.platforms import registry
from harness.ports import free_port

pytestmark = [pytest.mark.cluster, pytest.mark.netns, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def bench_cluster(tmp_path_factory):
    state = tmp_path_factory.mktemp("state")
    # A name per xdist worker: the module's two tests may be dealt to both, and a local cluster's
    # stand-up sweeps whatever an earlier cluster of its name left.
    cluster = f"rh-bench-smoke-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    p = registry.create("local", cluster=cluster, state_dir=str(state))
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
    for name in ("index.html", "timeline.png", "baseline.csv", "histogram.hdr"):
        assert (run_dir / name).stat().st_size > 0, name
    # The time line partitions the loop: a row per second it ran (the last, short one too), every operation in one.
    with open(run_dir / "timeline.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) >= 2, f"a {options.seconds:g} s loop gave {len(rows)} time line rows"
    assert sum(int(r["ops"]) for r in rows) == closed["ops"]
    assert all(float(r["throughput"]) > 0 for r in rows if int(r["ops"])), rows
    password = bench_cluster.credentials().password("app")
    assert password not in (run_dir / "report.json").read_text()


def test_workers_started_apart_from_the_master_load_and_report_to_it(bench_cluster, tmp_path, monkeypatch):
    port = free_port()
    monkeypatch.setattr(campaign, "MASTER_PORT", port)
    worker = [sys.executable, "-m", "locust", "-f", str(campaign.LOCUSTFILE), "--worker", "--skip-log-setup",
              "--master-host", "127.0.0.1", "--master-port", str(port)]  # fmt: skip
    # Started as the Deployment starts them: no workload, no platform, nothing but the master's address.
    procs = [subprocess.Popen(worker, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True) for _ in range(2)]
    try:
        workload = workloads.load("set-only", {"keys.count": 1000})
        options = BenchOptions(seconds=3, users=4, baseline=False)
        run_dir, body = benchmark(bench_cluster, workload, options, reports=tmp_path / "reports", workers=2)
    finally:
        for proc in procs:
            campaign.stop_group(proc)
    (closed,) = body["phases"]
    assert closed["ops"] > 0 and closed["errors"] == 0, closed["error_samples"]
    assert len(closed["client_cpu"]) == 2, "one entry per remote worker"
    assert set(closed["by_command"]) == {"SET"}, "the workers ran the master's workload (the default reads)"
    assert len(list((run_dir / "raw" / "closed").glob("worker-*.jsonl"))) == 2
