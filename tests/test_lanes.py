"""Lanes of the gate (`redis-harness run --jobs N`): the plan, the address ranges, the names, one exit
code and one JUnit file from several pytest processes."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from harness import gate, lanes
from harness.errors import HarnessError


def test_every_suite_runs_in_exactly_one_lane_and_the_heaviest_are_apart():
    plan = lanes.plan(list(gate.GATING), 2)
    assert sorted(s for lane in plan for s in lane) == sorted(gate.GATING)
    assert len(plan) == 2
    lane_of = {s: n for n, lane in enumerate(plan) for s in lane}
    first, second = sorted(gate.GATING, key=lambda s: -lanes.WEIGHTS[s])[:2]
    assert lane_of[first] != lane_of[second], f"the two heaviest suites, {first} and {second}, share a lane"
    weights = [sum(lanes.WEIGHTS[s] for s in lane) for lane in plan]
    assert max(weights) - min(weights) <= max(lanes.WEIGHTS[s] for s in gate.GATING)


def test_a_lane_keeps_the_order_the_suites_were_given_in():
    given = ["static", "sharding", "persistence", "security", "network_policy"]
    for lane in lanes.plan(given, 2):
        assert lane == [s for s in given if s in lane]


def test_no_more_lanes_than_suites_and_one_lane_is_the_plain_run():
    assert lanes.plan(["security"], 4) == [["security"]]
    assert lanes.plan(["static", "nodes"], 1) == [["static", "nodes"]]
    with pytest.raises(HarnessError, match="--jobs must be at least 1"):
        lanes.plan(["static"], 0)


def test_a_given_range_is_split_and_none_leaves_each_lane_to_find_its_own():
    assert lanes.subnets(None, 3) == [None, None, None]
    assert lanes.subnets("198.18.8.0/24", 1) == ["198.18.8.0/24"]
    assert lanes.subnets("198.18.8.0/24", 3) == ["198.18.8.0/26", "198.18.8.64/26", "198.18.8.128/26"]
    with pytest.raises(HarnessError, match="too small for 4 lanes"):
        lanes.subnets("198.18.8.0/28", 4)


def test_lane_clusters_have_names_of_their_own_within_forty_characters():
    assert lanes.cluster_names("rh", 1) == ["rh"]
    names = lanes.cluster_names("a" * 40, 3)
    assert len(set(names)) == 3 and all(len(n) <= 40 for n in names)


@pytest.mark.parametrize(
    "codes, expected",
    [([0, 0], 0), ([0, 1], 1), ([1, 2], 2), ([5, 0], 0), ([5, 5], 5), ([4, 1], 4), ([0, 5, 1], 1)],
)
def test_one_exit_code_for_the_lanes(codes, expected):
    assert lanes.exit_code(codes) == expected


def test_the_lanes_junit_files_become_one(tmp_path):
    one = tmp_path / "junit-lane1.xml"
    two = tmp_path / "junit-lane2.xml"
    one.write_text('<testsuites><testsuite name="pytest" tests="1"><testcase name="a"/></testsuite></testsuites>')
    two.write_text('<testsuite name="pytest" tests="2"><testcase name="b"/><testcase name="c"><failure/></testcase></testsuite>')
    lanes.merge_junit([one, two, tmp_path / "missing.xml"], tmp_path / "junit.xml")
    root = ET.parse(tmp_path / "junit.xml").getroot()
    assert root.tag == "testsuites"
    assert [c.get("name") for c in root.iter("testcase")] == ["a", "b", "c"]
    assert len(list(root.iter("failure"))) == 1


def test_no_more_lanes_than_cores():
    lanes.check_jobs(2, cores=2)
    with pytest.raises(HarnessError, match="--jobs 3 asks for more lanes than this machine's 2 cores"):
        lanes.check_jobs(3, cores=2)
    with pytest.raises(HarnessError, match="--jobs must be at least 1"):
        lanes.check_jobs(0, cores=2)


def test_each_parallel_test_worker_gets_a_cluster_and_range_of_its_own():
    from conftest import worker_share

    assert worker_share("rh-test", None, None) == ("rh-test", None)
    assert worker_share("rh-test", "198.18.8.0/24", None) == ("rh-test", "198.18.8.0/24")
    shares = [worker_share("rh-test", "198.18.8.0/24", {"workerid": f"gw{n}", "workercount": 3}) for n in range(3)]
    assert [name for name, _ in shares] == ["rh-test-1", "rh-test-2", "rh-test-3"]
    assert [net for _, net in shares] == ["198.18.8.0/26", "198.18.8.64/26", "198.18.8.128/26"]
    assert worker_share("rh-test", None, {"workerid": "gw1", "workercount": 2}) == ("rh-test-2", None)
