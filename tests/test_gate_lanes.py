"""`redis-harness run --jobs 2` for real: two lanes, each a cluster of its own, one verdict. A negative
control that breaks one lane's suite fails the gate while the other lane passes, and nothing is
left running afterwards."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.platforms.local.platform import LocalPlatform
from tests.test_local_platform import interrupt_once_started, leftovers

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.cluster
@pytest.mark.netns
def test_a_failure_in_one_lane_fails_the_gate_and_every_lane_is_reported(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", "--overlay", "broken-no-auth", "--suite", "security",
         "--suite", "network_policy", "--jobs", "2", "--cluster", "rh-lanes", "--reports", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    run_dir = next(tmp_path.glob("*-run"))
    report = json.loads((run_dir / "report.json").read_text())
    assert report["outcome"] == "fail"
    assert sorted(lane["cluster"] for lane in report["lanes"]) == ["rh-lanes-1", "rh-lanes-2"]
    assert sorted(s for lane in report["lanes"] for s in lane["suites"]) == ["network_policy", "security"]
    verdicts = {s["suite"]: s["outcome"] for s in report["suites"]}
    assert verdicts == {"security": "fail", "network_policy": "pass"}
    failed = {f["test"] for s in report["suites"] for f in s["failures"]}
    assert failed == {"test_no_or_wrong_password_is_refused", "test_default_user_is_off"}
    cases = [c.get("name") for c in ET.parse(run_dir / "junit.xml").getroot().iter("testcase")]
    assert "test_default_user_is_off" in cases and "test_redis_pods_reach_each_other_on_data_and_bus_ports" in cases
    log = (run_dir / "pytest.log").read_text()
    assert "===== lane 1" in log and "===== lane 2" in log
    # rh-lanes-<n> only: rh-lanes-int-<n> is the interrupt test's, which may run beside this one
    left = subprocess.run(["pgrep", "-af", "rh-lanes-[0-9]"], capture_output=True, text=True).stdout
    assert left == "", f"processes of the lanes' clusters left running: {left}"
    bridges = [f"rh{hashlib.sha256(name.encode()).hexdigest()[:4]}br" for name in ("rh-lanes-1", "rh-lanes-2")]
    links = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
    assert not [b for b in bridges if b in links], f"the lanes' bridges are left: {links}"


@pytest.mark.cluster
@pytest.mark.netns
def test_ctrl_c_ends_every_lane_and_leaves_nothing(tmp_path):
    state = tmp_path / "state"
    env = {**os.environ, "REDIS_HARNESS_STATE_DIR": str(state)}
    # Where this suite runs in the background, SIGINT arrives ignored; a terminal's Ctrl-C does not.
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", "--suite", "security", "--suite", "network_policy",
         "--jobs", "2", "--cluster", "rh-lanes-int", "--reports", str(tmp_path / "reports")],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    lanes = [LocalPlatform(cluster=f"rh-lanes-int-{n}", state_dir=state) for n in (1, 2)]
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not all(sum(x.startswith("process") for x in leftovers(p)) >= 6 for p in lanes):
            time.sleep(0.1)
        assert all(leftovers(p) for p in lanes), "the lanes' clusters never started"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 130, err
        assert [x for p in lanes for x in leftovers(p)] == [], err
    finally:
        proc.kill()
        proc.wait()
        for p in lanes:
            p.down()


@pytest.mark.cluster
@pytest.mark.netns
def test_ctrl_c_while_the_cluster_stands_up_beside_the_static_suite_leaves_nothing(tmp_path):
    """A lane that starts with the static suite stands its cluster up on a thread meanwhile
    (harness/background_up.py): a Ctrl-C then, before any test has the cluster, must still end
    with every process, namespace and rule of it gone."""
    state = tmp_path / "state"
    env = {**os.environ, "REDIS_HARNESS_STATE_DIR": str(state)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", "--suite", "static", "--suite", "security",
         "--cluster", "rh-early-up", "--reports", str(tmp_path / "reports")],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    interrupt_once_started(proc, LocalPlatform(cluster="rh-early-up", state_dir=state))
