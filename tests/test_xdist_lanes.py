"""The light lane (harness/xdist_lanes.py): a real pytest-xdist session over a small suite puts
the tests without a cluster on the last worker, niced, and every other test on the others."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The niceness the small suite starts at: root may lower it back to 0 from a niced light lane.
BASE = 0 if os.geteuid() == 0 else os.getpriority(os.PRIO_PROCESS, 0)
SUITE = '''
import os

import pytest


def ran(name):
    with open("ran", "a") as f:
        f.write(f"{name} {os.environ['PYTEST_XDIST_WORKER']} nice={os.getpriority(os.PRIO_PROCESS, 0)}\\n")


@pytest.mark.parametrize("n", range(6))
def test_with_a_cluster(platform, n):
    ran(f"cluster-{n}")


@pytest.mark.netns
def test_in_namespaces():
    ran("netns")


@pytest.mark.parametrize("n", range(6))
def test_pure(n):
    ran(f"pure-{n}")
'''


CONFTEST = '''
import pytest


@pytest.fixture
def platform():
    return "the session's cluster"
'''

# A module's own `platform` (an emulated API, say) stands no Redis up: light.
EMULATED = '''
import pytest

from test_suite import ran


@pytest.fixture
def platform():
    return "an emulated API"


def test_against_an_emulator(platform):
    ran("emulated")
'''


def ran(tmp_path, *args: str) -> dict[str, str]:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_suite.py").write_text(textwrap.dedent(SUITE))
    (tmp_path / "test_emulated.py").write_text(EMULATED)
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    netns: namespaces\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "harness.xdist_lanes", "-p", "no:cacheprovider", "-q", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: os.setpriority(os.PRIO_PROCESS, 0, BASE),  # this test itself may run in a light lane
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return dict(line.split(" ", 1) for line in (tmp_path / "ran").read_text().splitlines())


def test_the_last_worker_runs_the_tests_without_a_cluster_niced(tmp_path):
    seen = ran(tmp_path, "-n", "3", "--light-lane")
    assert len(seen) == 14, seen
    assert {seen[f"pure-{n}"] for n in range(6)} | {seen["emulated"]} == {"gw2 nice=19"}
    heavy = {seen[name] for name in seen if name.startswith(("cluster-", "netns"))}
    assert heavy <= {f"gw0 nice={BASE}", f"gw1 nice={BASE}"}, seen


def test_without_the_option_every_worker_runs_anything_unniced(tmp_path):
    seen = ran(tmp_path, "-n", "3")
    assert len(seen) == 14 and all(w.endswith(f"nice={BASE}") for w in seen.values()), seen


ORDER_DUMP = '''
import os


def pytest_collection_finish(session):
    with open(os.path.join(os.environ["ORDER_DIR"], os.environ.get("PYTEST_XDIST_WORKER", "controller")), "w") as f:
        f.write("\\n".join(item.nodeid for item in session.items))
'''


def test_workers_deal_out_the_negative_controls_first_heaviest_first(tmp_path):
    """The workers' collection is what xdist deals out, so they are the ones that must order it."""
    import conftest

    (tmp_path / "order_dump.py").write_text(ORDER_DUMP)
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "ORDER_DIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "order_dump", "-p", "no:cacheprovider", "-n", "2", "--setup-only", "-q",
         "--reports", str(tmp_path / "reports"),
         "tests/test_netpol.py", "scenarios/test_negative_controls.py"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:]
    order = (tmp_path / "gw0").read_text().splitlines()
    controls = [n for n in order if "[broken-" in n]
    assert len(controls) >= 2 and order[: len(controls)] == controls, order[:20]
    weights = [conftest.control_weight(n.split("[")[1].rstrip("]")) for n in controls]
    assert weights == sorted(weights, reverse=True), dict(zip(controls, weights, strict=True))
