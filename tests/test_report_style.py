"""Every HTML report carries the one stylesheet of harness/report/style.py, and no module keeps CSS of its own."""

from __future__ import annotations

from pathlib import Path

from harness.bench import report as bench_report
from harness.chaos import report as chaos_report
from harness.chaos.result import ExperimentResult
from harness.chaos.verdict import Expectations, Verdict
from harness.report import html, style

HARNESS = Path(style.__file__).resolve().parents[1]
ENVIRONMENT = {"platform": "local", "overlay": "kind", "cpus": 2, "versions": {"redis_server": "7.2"}}


def carries_the_stylesheet(page: str) -> None:
    assert page.startswith("<!doctype html>")
    assert page.count("<style>") == 1
    assert style.CSS in page


def test_no_css_outside_the_stylesheet_module():
    holders = sorted(
        str(p.relative_to(HARNESS)) for p in HARNESS.rglob("*.py") if "<style" in p.read_text() or "font-family" in p.read_text()
    )
    assert holders == ["report/style.py"]


def test_the_head_escapes_the_title():
    head = str(style.head("<b>x</b> — pass"))
    assert "<title>&lt;b&gt;x&lt;/b&gt; — pass</title>" in head


def test_suite_and_run_pages(tmp_path):
    suite = {
        "kind": "failover",
        "outcome": "not run",
        "not_run": "the only test not supported: x",
        "started": "s",
        "finished": "f",
        "duration_s": 1.0,
        "environment": ENVIRONMENT,
        "tests": [{"name": "t", "outcome": "not_supported", "duration_s": 0.0, "reason": "x", "plots": [], "failure": None}],
    }
    page = html.write_html(tmp_path, suite).read_text()
    carries_the_stylesheet(page)
    assert '<td class="not_supported">not supported</td>' in page
    run = {"outcome": "pass", "started": "s", "duration_s": 1.0, "environment": ENVIRONMENT, "suites": [], "not_run": []}
    carries_the_stylesheet(html.write_run_html(tmp_path, run).read_text())


def test_chaos_pages_are_wide():
    result = ExperimentResult("kill-master", "Kill a master", {}, {"recovery_s": 2.5}, Verdict(True), Expectations(), 3.0)
    report = {"started": "s", "duration_s": 3.0, "environment": ENVIRONMENT, "journal_status": "completed", "deviated": False}
    page = style.render(
        chaos_report.EXPERIMENT, r=result, report=report, columns=chaos_report.COLUMNS, nemesis="[]", figures="{}"
    )
    carries_the_stylesheet(page)
    assert '<body class="wide">' in page and "<title>kill-master — pass</title>" in page
    summary = {"outcome": "pass", "started": "s", "duration_s": 3.0, "environment": ENVIRONMENT, "experiments": []}
    carries_the_stylesheet(style.render(chaos_report.SUMMARY, report=summary, columns=chaos_report.COLUMNS))


def test_bench_page_has_numeric_tables(tmp_path):
    latency = {k: 0.5 for k in ("p50", "p90", "p99", "p99.9", "max")}
    report = {
        "kind": "bench-set-only",
        "outcome": "pass",
        "started": "s",
        "duration_s": 10.0,
        "environment": ENVIRONMENT,
        "workload": {"name": "set-only", "description": "SET", "pipeline": 1, "users": 4},
        "processes": 1,
        "phases": [
            {
                "name": "closed",
                "mode": "closed",
                "throughput": 1000.0,
                "errors": 0,
                "latency_ms": latency,
                "client_cpu_peak": 0.5,
                "late_fraction": 0.0,
            }
        ],
        "plots": {"timelines": []},
    }
    page = bench_report.write_html(tmp_path, report).read_text()
    carries_the_stylesheet(page)
    assert '<table class="numbers">' in page
