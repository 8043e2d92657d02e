"""A run whose instrument failed (every reason INCONCLUSIVE) is taken again, once, with the project's
own pytest settings; a run that found the deployment wanting never is, nor is a mix of the two."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from harness.judgement import INCONCLUSIVE, Inconclusive, assert_met

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
GAP = f"{INCONCLUSIVE}the probe went 0.51 s without an operation"

SUITE = f"""
from pathlib import Path

from harness.judgement import assert_met

GAP = {GAP!r}


def attempt(name):
    marker = Path(name)
    first = not marker.exists()
    marker.write_text("tried")
    return first


def test_starved_once():
    assert_met([GAP] if attempt("starved") else [])


def test_starved_always():
    assert_met([GAP])


def test_lost_writes_once():
    assert_met(["lost 3 WAITed writes"] if attempt("lost") else [])


def test_lost_writes_and_starved_once():
    assert_met(["lost 3 WAITed writes", GAP] if attempt("both") else [])
"""


def test_assert_met_names_the_instrument_only_when_every_reason_does():
    assert_met([])
    with pytest.raises(Inconclusive, match="0.51 s"):
        assert_met([GAP, f"{INCONCLUSIVE}the attacked shard had 0 replica-acknowledged writes"])
    with pytest.raises(AssertionError) as raised:
        assert_met([GAP, "recovery 12.50 s > SLO 12 s"])
    assert type(raised.value) is AssertionError and str(raised.value) == f"{GAP}; recovery 12.50 s > SLO 12 s"


def test_only_an_inconclusive_run_is_taken_again_and_the_report_keeps_the_first_attempt(pytester):
    ini = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    pytester.makeini(f"[pytest]\nreruns = {ini['reruns']}\nonly_rerun =\n" + "".join(f"    {p}\n" for p in ini["only_rerun"]))
    (pytester.path / "scenarios").mkdir()
    (pytester.path / "scenarios" / "test_retake.py").write_text(SUITE)
    reports = pytester.path / "reports"
    result = pytester.runpytest_subprocess("-p", "harness.report.pytest_plugin", "-p", "no:cacheprovider", "--reports", str(reports))
    # starved once: passes on its second attempt; starved always: fails after two; the others: once
    counts = result.parseoutcomes()
    assert (counts.get("passed"), counts.get("failed"), counts.get("rerun")) == (1, 3, 2), counts
    (found,) = reports.glob("*-retake/report.json")
    tests = {t["name"]: t for t in json.loads(found.read_text())["tests"]}
    assert tests["test_starved_once"]["outcome"] == "passed"
    assert len(tests["test_starved_once"]["retaken"]) == 1 and "0.51 s" in tests["test_starved_once"]["retaken"][0]
    assert tests["test_starved_always"]["outcome"] == "failed" and len(tests["test_starved_always"]["retaken"]) == 1
    assert tests["test_lost_writes_once"]["retaken"] == [] and tests["test_lost_writes_once"]["outcome"] == "failed"
    assert tests["test_lost_writes_and_starved_once"]["retaken"] == []
    assert "taken again: attempt 1 was inconclusive" in (found.parent / "index.html").read_text()
