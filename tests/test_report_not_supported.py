"""The pytest plugin turns NotSupported into a skip recorded as "not_supported" (not run, never passed)."""

from __future__ import annotations

import json

import pytest

pytest_plugins = ["pytester"]

MESSAGE = "partitioning a pod is not supported on the kubernetes platform"

SUITE = """
import pytest

from harness.errors import NotSupported


@pytest.fixture(scope="module")
def partition():
    raise NotSupported("partitioning a pod", "kubernetes")


def test_in_the_body():
    raise NotSupported("partitioning a pod", "kubernetes")


def test_in_a_fixture(partition):
    pass


def test_in_that_fixture_again(partition):
    pass


def test_skipped_for_another_reason():
    pytest.skip("needs network namespaces")
"""

MIXED = """
import pytest

from harness.errors import NotSupported


def test_passes():
    pass


def test_not_supported():
    raise NotSupported("filling a volume", "local")


def test_fails_for_real():
    raise RuntimeError("boom")
"""


def run_suite(pytester: pytest.Pytester, name: str, body: str, *args: str):
    (pytester.path / "scenarios").mkdir(exist_ok=True)
    (pytester.path / "scenarios" / f"test_{name}.py").write_text(body)
    reports = pytester.path / f"reports-{len(list(pytester.path.glob('reports-*')))}"
    result = pytester.runpytest_subprocess(
        "-p", "harness.report.pytest_plugin", "-p", "no:cacheprovider", "-v", "-rA", "--reports", str(reports), *args
    )
    found = sorted(reports.glob(f"*-{name}/report.json"))
    assert len(found) == 1, result.stdout.str()
    return result, json.loads(found[0].read_text()), (found[0].parent / "index.html").read_text()


def test_not_supported_is_a_skip_recorded_as_not_supported(pytester):
    result, report, html = run_suite(pytester, "partition", SUITE)
    result.assert_outcomes(skipped=4)
    tests = {t["name"]: t for t in report["tests"]}
    assert tests["test_in_the_body"]["outcome"] == "not_supported"
    assert tests["test_in_the_body"]["reason"] == MESSAGE
    assert tests["test_in_a_fixture"]["outcome"] == "not_supported"
    assert tests["test_in_a_fixture"]["reason"] == MESSAGE
    assert tests["test_in_that_fixture_again"]["outcome"] == "not_supported"  # a cached fixture error, raised again
    assert tests["test_skipped_for_another_reason"]["outcome"] == "skipped"
    assert tests["test_skipped_for_another_reason"]["reason"] == "needs network namespaces"
    assert report["counts"] == {"passed": 0, "failed": 0, "error": 0, "skipped": 1, "not_supported": 3}
    # the other skip fails the suite; allowed, the suite did not run (three not supported, none passed)
    assert report["outcome"] == "fail" and report["not_run"] is None
    assert report["why"].startswith("1 test(s) skipped (needs network namespaces)")
    assert "1 test(s) skipped" in html
    _, allowed, html = run_suite(pytester, "partition", SUITE, "--allow-skip")
    assert allowed["outcome"] == "not run" and allowed["allow_skip"] is True
    assert MESSAGE in allowed["not_run"]
    # pytest's own output: a skip with the message as its reason, at the test's location
    result.stdout.fnmatch_lines(
        [
            "scenarios/test_partition.py::test_in_the_body SKIPPED*",
            f"SKIPPED [[]1[]] scenarios/test_partition.py:12: {MESSAGE}",
            f"SKIPPED [[]1[]] scenarios/test_partition.py:16: {MESSAGE}",
        ]
    )
    assert "not supported" in html and MESSAGE in html and 'class="not-run"' in html and "--allow-skip" in html


def test_a_suite_with_a_pass_is_judged_on_what_ran(pytester):
    result, report, _ = run_suite(pytester, "mixed", MIXED)
    result.assert_outcomes(passed=1, failed=1, skipped=1)
    assert report["counts"]["not_supported"] == 1
    assert report["outcome"] == "fail"
    assert report["not_run"] is None
    result, report, _ = run_suite(pytester, "mixed", MIXED, "-k", "not fails_for_real")
    assert report["outcome"] == "pass"
    assert [t["outcome"] for t in report["tests"]] == ["passed", "not_supported"]
