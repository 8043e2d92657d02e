"""The gate's verdict on synthetic suite reports: not supported and nothing run are "not run", never
"pass"; a test skipped for any other reason fails its suite unless skips are allowed."""

from __future__ import annotations

from harness import gate
from harness.report import html, outcomes

MESSAGE = "partitioning a pod is not supported on the kubernetes platform"


SKIPPED = "network namespaces need root"


def body(kind: str, *tests: tuple[str, str], outcome: str = "pass") -> tuple[str, dict]:
    return (
        f"suites/x-{kind}/index.html",
        {
            "kind": kind,
            "outcome": outcome,
            "duration_s": 1.0,
            "environment": {"platform": "kubernetes", "overlay": "kind", "versions": {}},
            "tests": [
                {"name": name, "outcome": o, "reason": {"not_supported": MESSAGE, "skipped": SKIPPED}.get(o), "failure": None}
                for name, o in tests
            ],
        },
    )


def test_every_suite_passing_passes():
    verdict = gate.aggregate(["static", "sharding"], [body("static", ("a", "passed")), body("sharding", ("b", "passed"))], 0)
    assert verdict["outcome"] == "pass"
    assert verdict["not_run"] == []
    assert [s["outcome"] for s in verdict["suites"]] == ["pass", "pass"]


def test_a_suite_of_only_not_supported_tests_did_not_run():
    found = [body("static", ("a", "passed")), body("network_policy", ("p", "not_supported"), ("q", "not_supported"))]
    verdict = gate.aggregate(["static", "network_policy"], found, 0)
    assert verdict["outcome"] == "not run"
    suite = verdict["suites"][1]
    assert suite["outcome"] == "not run"
    assert suite["counts"] == {"passed": 0, "failed": 0, "error": 0, "skipped": 0, "not_supported": 2}
    assert verdict["not_run"] == [{"suite": "network_policy", "reason": f"all 2 tests not supported: {MESSAGE}"}]
    assert verdict["counts"]["not_supported"] == 2 and verdict["counts"]["passed"] == 1


def test_not_supported_beside_a_pass_still_passes():
    verdict = gate.aggregate(["failover"], [body("failover", ("a", "passed"), ("b", "not_supported"))], 0)
    assert verdict["outcome"] == "pass"
    assert verdict["suites"][0]["counts"]["not_supported"] == 1


def test_a_skipped_test_fails_its_suite():
    verdict = gate.aggregate(
        ["static", "network_policy"],
        [body("static", ("a", "passed")), body("network_policy", ("a", "skipped"), ("b", "passed"))],
        0,
    )
    assert verdict["outcome"] == "fail"
    suite = verdict["suites"][1]
    assert suite["outcome"] == "fail" and suite["failures"] == []
    assert suite["why"].startswith(f"1 test(s) skipped ({SKIPPED})")


def test_skips_allowed_pass_and_say_so():
    verdict = gate.aggregate(["network_policy"], [body("network_policy", ("a", "skipped"), ("b", "passed"))], 0, allow_skip=True)
    assert verdict["outcome"] == "pass" and verdict["allow_skip"] is True


def test_a_suite_report_that_failed_on_a_skip_stays_failed():
    """The suite's own report (written by the pytest plugin) decides too: the gate never upgrades it."""
    found = [body("network_policy", ("a", "passed"), outcome="fail")]
    assert gate.aggregate(["network_policy"], found, 0)["outcome"] == "fail"


def test_skipped_beside_not_supported_is_a_failure_not_a_not_run():
    verdict = gate.aggregate(["failover"], [body("failover", ("a", "skipped"), ("b", "not_supported"))], 0)
    assert verdict["outcome"] == "fail"
    verdict = gate.aggregate(["failover"], [body("failover", ("a", "skipped"), ("b", "not_supported"))], 0, allow_skip=True)
    assert verdict["outcome"] == "not run"
    assert verdict["not_run"][0]["reason"] == f"no test passed: 1 not supported ({MESSAGE}), 1 skipped"


def test_a_chosen_suite_without_a_report_did_not_run():
    verdict = gate.aggregate(["static", "security"], [body("static", ("a", "passed"))], 0)
    assert verdict["outcome"] == "not run"
    assert verdict["not_run"] == [{"suite": "security", "reason": "no test of this suite ran"}]
    missing = verdict["suites"][1]
    assert missing["index"] is None and missing["counts"] == outcomes.counts([])


def test_no_test_collected_is_not_run_not_error():
    verdict = gate.aggregate(["static"], [], 5)
    assert verdict["outcome"] == "not run"
    assert verdict["not_run"] == [{"suite": "static", "reason": "pytest collected no test"}]


def test_a_failure_outranks_not_run_and_a_broken_pytest_is_an_error():
    found = [body("static", ("a", "failed"), outcome="fail"), body("sharding", ("b", "not_supported"))]
    verdict = gate.aggregate(["static", "sharding", "failover"], found, 1)
    assert verdict["outcome"] == "fail"
    assert [s["suite"] for s in verdict["not_run"]] == ["sharding", "failover"]
    assert verdict["suites"][0]["failures"][0]["test"] == "a"
    assert gate.aggregate(["static"], [], 2)["outcome"] == "error"
    assert gate.aggregate(["static"], [], 1)["outcome"] == "error"
    assert "exit code 2" in gate.aggregate(["static"], [], 2)["not_run"][0]["reason"]


def test_the_run_page_says_which_suite_did_not_run_and_why(tmp_path):
    verdict = gate.aggregate(
        ["static", "network_policy"], [body("static", ("a", "passed")), body("network_policy", ("p", "not_supported"))], 0
    )
    report = {
        "started": "2025-01-01T00:00:00+00:00",
        "duration_s": 3.0,
        "environment": {"platform": "kubernetes", "overlay": "kind", "versions": {}},
        **verdict,
    }
    page = html.write_run_html(tmp_path, report).read_text()
    assert '<span class="not-run">not run</span>' in page
    assert f"<b>network_policy</b>: the only test not supported: {MESSAGE}" in page
    assert page.count("<style>") == 1


def test_the_run_reports_its_tightest_margin():
    found = [body("failover", ("a", "passed"), ("b", "passed")), body("nodes", ("c", "passed"))]
    found[0][1]["tests"][0]["figures"] = {"margins": [{"check": "recovery", "figure": 9.0, "limit": 12.0, "margin": 3.0}]}
    found[0][1]["tests"][1]["figures"] = {"margins": [{"check": "probe gap", "figure": 0.45, "limit": 0.5, "margin": 0.05}]}
    found[1][1]["tests"][0]["figures"] = {"margins": [{"check": "drain", "figure": 0.0, "limit": 1.0, "margin": 1.0}]}
    verdict = gate.aggregate(["failover", "nodes"], found, 0)
    assert verdict["tightest"] == {"check": "probe gap", "figure": 0.45, "limit": 0.5, "margin": 0.05, "test": "b"}
    assert verdict["suites"][1]["tightest"]["test"] == "c"


def test_the_run_says_where_the_time_went(tmp_path):
    found = [body("failover", ("kill", "passed"), ("manual", "passed")), body("static", ("lint", "passed"))]
    kill, manual = found[0][1]["tests"]
    kill.update(phases={"setup": 4.5, "call": 14.0, "teardown": 0.5}, figures={"recovery_s": 7.5})
    manual.update(phases={"setup": 0.1, "call": 6.0, "teardown": 0.1}, figures={"recovery_s": None})
    found[1][1]["tests"][0]["phases"] = {"setup": 0.0, "call": 0.2, "teardown": 0.0}
    verdict = gate.aggregate(["failover", "static"], found, 0)
    assert verdict["suites"][0]["phases"] == {"setup_s": 4.6, "call_s": 20.0, "teardown_s": 0.6}
    assert [t["test"] for t in verdict["slowest"]] == ["kill", "manual", "lint"]
    assert verdict["slowest"][0] == {
        "suite": "failover", "test": "kill", "setup_s": 4.5, "fault_to_recovery_s": 7.5,
        "rest_of_call_s": 6.5, "teardown_s": 0.5, "total_s": 19.0,
    }  # fmt: skip
    assert verdict["slowest"][1]["fault_to_recovery_s"] is None and verdict["slowest"][1]["rest_of_call_s"] == 6.0
    report = {"outcome": "pass", "started": "t", "duration_s": 20.0, "environment": found[0][1]["environment"], **verdict}
    page = html.write_run_html(tmp_path, report).read_text()
    assert "where the time goes" in page
    assert "<td>failover</td><td>kill</td><td>4.5</td>\n<td>7.5</td>" in page
