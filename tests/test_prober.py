"""The kubelet's startup and liveness probes on the local platform (harness/platforms/local/prober.py):
when each is due, what a failure in a row means, and a Redis that stops answering restarted."""

from __future__ import annotations

import time

import pytest

from harness import reference
from harness.cluster import wait_for
from harness.observe import wait_healthy
from harness.platforms.local.platform import LocalPlatform
from harness.platforms.local.prober import Probe, ProbeClock
from tests.reference_copy import reference_with_overlay

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


def quick_liveness() -> list[dict]:
    """A liveness probe as quick as a manifest may declare it, and a short grace period: the kubelet's
    sequence (failures in a row, the graceful stop, the restart) in seconds rather than a minute."""
    containers = reference.render("kind").redis_statefulset()["spec"]["template"]["spec"]["containers"]
    redis = f"/spec/template/spec/containers/{[c['name'] for c in containers].index('redis')}/livenessProbe"
    return [
        {"op": "replace", "path": f"{redis}/periodSeconds", "value": 2},
        {"op": "replace", "path": f"{redis}/timeoutSeconds", "value": 1},
        {"op": "replace", "path": f"{redis}/failureThreshold", "value": 2},
        {"op": "replace", "path": "/spec/template/spec/terminationGracePeriodSeconds", "value": 3},
    ]


@pytest.mark.cluster
def test_a_redis_that_stops_answering_is_restarted_by_its_liveness_probe(tmp_path, monkeypatch):
    monkeypatch.setattr(reference, "REFERENCE_DIR", reference_with_overlay(tmp_path, "quick-liveness", quick_liveness()))
    platform = LocalPlatform(overlay="quick-liveness", cluster="rh-liveness", state_dir=tmp_path / "state")
    platform.up()
    try:
        container = platform.manifests.redis_container()
        liveness = Probe.of(container["livenessProbe"])
        assert liveness == Probe(liveness.command, 0.0, 2.0, 1.0, 2), "the overlay's probe as declared"
        pod = platform.pods()[-1].name
        before = platform.ledger.pods[pod].pid
        # its startup probe has passed (it runs from the container's start): liveness from now on
        wait_for(lambda: pod in platform._prober.clocks and platform._prober.clocks[pod][1].started, 30, f"{pod}'s startup probe")
        platform.pause(pod)  # SIGSTOP, until something else happens
        started = time.monotonic()
        wait_for(lambda: platform.ledger.pods[pod].pid not in (None, before) and platform.pod(pod).running, 60, f"{pod} restarted")
        took = time.monotonic() - started
        grace = platform.manifests.redis_statefulset()["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        # no sooner than the declared failures in a row allow, and far sooner than the defaults
        # (10 s period, 3 failures) would: the probe runs as declared, not as the platform likes
        assert (liveness.failure_threshold - 1) * liveness.period <= took
        assert took <= liveness.failure_threshold * (liveness.period + liveness.timeout) + grace + 8, f"restarted after {took:.1f} s"
        log = (platform.root / "pods" / pod / "log").read_text()
        assert f"Liveness probe failed {liveness.failure_threshold} times in a row" in log
        wait_healthy(platform, timeout=60)
    finally:
        platform.down()
