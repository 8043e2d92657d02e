"""A graceful stop on the local platform spends one budget, terminationGracePeriodSeconds, on the
preStop hook and SIGTERM together, as the kubelet does, with SIGTERM's share never below 2 s."""

from __future__ import annotations

import os
import time

import pytest

from harness.platforms.local.ledger import PodRecord, process_start_time
from harness.platforms.local.pods import PodProcesses


def stopping(grace: float, hook_seconds: float) -> float:
    """The grace SIGTERM gets after a preStop hook that took `hook_seconds`."""
    pods = PodProcesses.__new__(PodProcesses)
    record = PodRecord(name="redis-cluster-0", address="", labels={}, namespace="redis", pid=os.getpid(), start_time=process_start_time(os.getpid()))
    given: list[float] = []
    pods._grace_seconds = lambda: grace
    pods._record = lambda name: record
    pods._pre_stop = lambda rec, budget: time.sleep(hook_seconds)
    pods._terminate = lambda recs, share: given.append(share)
    pods._gone = lambda recs: None
    pods._stop(["redis-cluster-0"], graceful=True)
    return given[0]


def test_what_the_prestop_hook_takes_is_taken_from_sigterms_share():
    assert stopping(grace=10, hook_seconds=0.5) == pytest.approx(9.5, abs=0.3)


def test_sigterm_keeps_two_seconds_however_long_the_hook_took():
    assert stopping(grace=1, hook_seconds=0.5) == 2.0
