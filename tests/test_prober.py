"""The kubelet's startup and liveness probes on the local platform (harness/platforms/local/prober.py):
when each is due, what a failure in a row means, and a Redis that stops answering restarted."""

from __future__ import annotations

import time

import pytest

from harness.cluster import wait_for
from harness.observe import wait_healthy
from harness.platforms.local.prober import Probe, ProbeClock

STARTUP = Probe(("startup",), period=2, failure_threshold=3)
LIVENESS = Probe(("liveness",), initial_delay=5, period=10, failure_threshold=3)


def test_the_startup_probe_gates_liveness_until_it_passes():
    clock = ProbeClock(0.0, STARTUP, LIVENESS)
    assert clock.due(0.0) is STARTUP
    assert clock.result(False, 0.0) is False and clock.due(1.0) is None and clock.due(2.0) is STARTUP
    assert clock.result(True, 2.0) is False  # started: liveness after its initial delay
    assert clock.due(6.0) is None and clock.due(7.0) is LIVENESS


def test_failure_threshold_failures_in_a_row_kill_and_a_success_starts_the_count_again():
    clock = ProbeClock(0.0, None, LIVENESS)
    assert clock.due(4.9) is None and clock.due(5.0) is LIVENESS
    assert [clock.result(False, t) for t in (5.0, 15.0)] == [False, False]
    assert clock.result(True, 25.0) is False
    assert [clock.result(False, t) for t in (35.0, 45.0, 55.0)] == [False, False, True]


def test_a_startup_probe_that_never_passes_kills_too():
    clock = ProbeClock(0.0, STARTUP, LIVENESS)
    assert [clock.result(False, t) for t in (0.0, 2.0, 4.0)] == [False, False, True]


def test_probes_come_from_the_container_spec_with_kubernetes_defaults():
    assert Probe.of({"exec": {"command": ["sh", "x"]}}) == Probe(("sh", "x"), 0.0, 10.0, 1.0, 3)
    assert Probe.of({"httpGet": {"path": "/"}}) is None and Probe.of(None) is None


@pytest.mark.cluster
def test_a_redis_that_stops_answering_is_restarted_by_its_liveness_probe(healthy):
    pod = healthy.pods()[-1].name
    before = healthy.ledger.pods[pod].pid
    # its startup probe has passed (it runs from the container's start, every 2 s): liveness from now on
    wait_for(lambda: pod in healthy._prober.clocks and healthy._prober.clocks[pod][1].started, 30, f"{pod}'s startup probe")
    healthy.pause(pod)  # SIGSTOP, until something else happens
    started = time.monotonic()
    wait_for(lambda: healthy.ledger.pods[pod].pid not in (None, before) and healthy.pod(pod).running, 90, f"{pod} restarted")
    liveness = Probe.of(healthy.manifests.redis_container()["livenessProbe"])
    assert time.monotonic() - started >= (liveness.failure_threshold - 1) * liveness.period
    log = (healthy.root / "pods" / pod / "log").read_text()
    assert f"Liveness probe failed {liveness.failure_threshold} times in a row" in log
    healthy.restart(pod)  # a new pod, no crash back-off left for the next test
    wait_healthy(healthy, timeout=90)
