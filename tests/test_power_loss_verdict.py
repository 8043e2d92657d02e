"""The power-loss experiment's verdict: lost writes, WAITed or not, are judged by how long
before the power loss they were acknowledged (persistence.max_loss_window_seconds), not by
their count; every other fault keeps the count rules."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from harness import slo
from harness.chaos.runner import CATALOGUE
from harness.chaos.verdict import Expectations, judge, loss_window
from harness.history import OK, History, Op
from harness.judgement import Figures

COMPLETED = {"status": "completed", "deviated": False}
POWER_LOSS = Expectations(slo="power_loss", loss_window=True, one_shard=True, platforms=["local"])


@pytest.fixture
def reference_slo():
    return slo.load()


def figures_with(**changes) -> Figures:
    """A power loss that lost the last half second of writes, WAITed ones too."""
    base = Figures(
        writes=5000, acknowledged=5000, lost=60, lost_waited=20, lost_unwaited=40, unexpected=0, recovered=0,
        failed_but_present=0, fail_ops=0, info_ops=12, ok_fraction=0.97, unavailable_s=4.0, probe_hz=180.0, recovery_s=4.2,
        loss_window_s=0.5,
    )  # fmt: skip
    return dataclasses.replace(base, **changes)


def test_a_loss_inside_the_window_passes_and_is_stated(reference_slo):
    verdict = judge(COMPLETED, figures_with(), POWER_LOSS, reference_slo)
    assert verdict.passed, verdict.reasons
    assert any("60 acknowledged writes lost (20 WAITed), the last 0.50 s before the power loss" in n for n in verdict.notes)


def test_a_loss_older_than_the_window_fails(reference_slo):
    verdict = judge(COMPLETED, figures_with(loss_window_s=2.7), POWER_LOSS, reference_slo)
    assert not verdict.passed
    assert verdict.reasons == ["lost writes acknowledged 2.70 s before the power loss (SLO 2 s)"]


def test_the_same_loss_fails_a_fault_judged_by_count(reference_slo):
    verdict = judge(COMPLETED, figures_with(), Expectations(slo="kill_master"), reference_slo)
    assert any("20 WAITed writes lost" in r for r in verdict.reasons), verdict.reasons


def test_loss_window_is_measured_from_the_oldest_lost_acknowledgement():
    ops = [
        Op(0, "write", "a", 1, invoke=1.0, complete=1.1, outcome=OK, node="10.0.0.1"),  # kept
        Op(0, "write", "b", 2, invoke=9.0, complete=9.2, outcome=OK, node="10.0.0.1"),  # lost, 0.8 s before
        Op(1, "write", "c", 3, invoke=9.5, complete=9.6, outcome=OK, node="10.0.0.1"),  # lost, 0.4 s before
    ]
    assert loss_window(History.of(ops), fault_time=10.0, present={"a": "1"}) == 0.8
    assert loss_window(History.of(ops), fault_time=10.0, present={"a": "1", "b": "2", "c": "3"}) == 0.0


def test_the_power_loss_experiment_asks_for_the_window_and_has_slos(reference_slo):
    experiment = yaml.safe_load((CATALOGUE / "power-loss.yaml").read_text())
    expect = Expectations.of(experiment)
    assert expect == POWER_LOSS
    assert reference_slo.recovery("power_loss") > 0 and reference_slo.unavailability("power_loss") > 0
