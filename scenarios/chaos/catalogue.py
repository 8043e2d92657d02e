"""The chaos catalogue as tests: every experiment file here, run through chaostoolkit
against the session's cluster and judged against the SLO file.

    tox -e chaos                   # the whole catalogue, with a summary report
    tox -e chaos -- -k partition   # a subset

Not collected by the default test run (the file name does not start with test_);
tests/test_chaos_smoke.py carries a small part of it there."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.chaos import runner
from harness.errors import NotSupported

EXPERIMENTS = runner.catalogue()

pytestmark = [pytest.mark.cluster, pytest.mark.netns]


@pytest.fixture(scope="session")
def results(platform, request):
    """Every experiment's result; the summary table is written when the session ends."""
    collected: list[runner.ExperimentResult] = []
    yield collected
    if collected:
        root = request.config.getoption("--reports")
        summary = runner.write_summary(collected, platform, root and Path(root))
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"\nchaos summary: {summary / 'index.html'}")


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[p.stem for p in EXPERIMENTS])
def test_experiment(path, platform, results, request):
    root = request.config.getoption("--reports")
    result = runner.run_in_turn(path, platform, root and Path(root))
    results.append(result)
    if result.not_run:  # the platform could not apply the fault: recorded as not supported, never passed
        raise NotSupported.said(result.not_run)
    assert result.verdict.passed, f"{result.title}: {'; '.join(result.verdict.reasons)} (report: {result.run_dir}/index.html)"
