"""Outcomes of tests and suites, shared by the pytest plugin (a suite's report.json) and the gating run.

A test is passed, failed, error, skipped, or not_supported: the platform declared the capability
the test needs missing (harness.errors.NotSupported), so the test did not run. A suite is
  fail     a test failed or errored, or was skipped for any other reason (a gate that skips a
           check has not made it) unless skips are allowed (`--allow-skip`, for exploratory runs);
  not run  no test ran: the suite has no test, or none passed and at least one was not supported;
  pass     otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

TEST_OUTCOMES = ("passed", "failed", "error", "skipped", "not_supported")
NOT_RUN = "not run"


def counts(outcomes: Iterable[str]) -> dict[str, int]:
    outcomes = list(outcomes)
    return {o: outcomes.count(o) for o in TEST_OUTCOMES}


def suite_outcome(tests: Iterable[Mapping[str, Any]], allow_skip: bool = False) -> tuple[str, str | None]:
    """A suite's outcome from its tests ({"outcome", "reason"}), and why it did not run or failed
    without a failing test (None when neither)."""
    tests = list(tests)
    tally = counts(t["outcome"] for t in tests)
    if tally["failed"] or tally["error"]:
        return "fail", None
    if not tests:
        return NOT_RUN, "no test of this suite ran"
    if tally["skipped"] and not allow_skip:
        reasons = "; ".join(dict.fromkeys(t.get("reason") or "no reason given" for t in tests if t["outcome"] == "skipped"))
        return (
            "fail",
            f"{tally['skipped']} test(s) skipped ({reasons}); a skipped check is not a passed one (--allow-skip for exploratory runs)",
        )
    if tally["not_supported"] and not tally["passed"]:
        reasons = "; ".join(dict.fromkeys(t.get("reason") or "not supported" for t in tests if t["outcome"] == "not_supported"))
        n = tally["not_supported"]
        if n == len(tests):
            return NOT_RUN, f"{'the only test' if n == 1 else f'all {n} tests'} not supported: {reasons}"
        return NOT_RUN, f"no test passed: {n} not supported ({reasons}), {tally['skipped']} skipped"
    return "pass", None
