"""The kubelet's crash back-off (harness/platforms/local/backoff.py): at once, then 10 s doubling to
300 s, afresh after 10 quiet minutes; and the local platform restarting a killed Redis by it."""

from __future__ import annotations

import time

import pytest

from harness.cluster import wait_for
from harness.platforms.local import backoff

IMMEDIATE = 1.0


def crashes(times: list[float]) -> list[float]:
    """The delay before each restart, for crashes at these times."""
    delays, current, at = [], 0.0, 0.0
    for now in times:
        delay, current, at = backoff.after_crash(current, at, now, IMMEDIATE)
        delays.append(delay)
    return delays


def test_the_first_crash_restarts_at_once_and_later_ones_wait_10_s_doubling_to_300_s():
    assert crashes([0, 30, 60, 120, 200, 300, 400, 500, 590]) == [IMMEDIATE, 10, 20, 40, 80, 160, 300, 300, 300]


def test_a_crash_ten_quiet_minutes_after_the_last_starts_afresh():
    assert crashes([0, 30, 30 + 601, 30 + 620]) == [IMMEDIATE, 10, IMMEDIATE, 10]
    assert crashes([0, 30, 30 + 599]) == [IMMEDIATE, 10, 20]


@pytest.mark.cluster
def test_a_pod_killed_twice_waits_out_the_back_off_the_second_time(healthy):
    pod = healthy.pods()[-1].name
    healthy.kill(pod)
    wait_for(lambda: healthy.pod(pod).running, 30, f"{pod} to restart at once")
    killed = time.monotonic()
    healthy.kill(pod)
    wait_for(lambda: healthy.pod(pod).running, 60, f"{pod} to restart after its back-off")
    assert time.monotonic() - killed >= backoff.INITIAL_SECONDS - 0.5
    assert f"back-off 10s restarting failed container=redis pod={pod}" in (healthy.root / "pods" / pod / "log").read_text()
    healthy.restart(pod)  # a new pod: its container starts with no back-off (and the next test finds none)
    assert healthy.ledger.pods[pod].backoff_s == 0
