"""reference/not-supported.yaml, the checks each platform may leave unrun, and the gate held to it:
an unrun check the list does not name fails the gate, and so does a listed one that ran."""

from __future__ import annotations

import importlib

import pytest
import yaml

from harness import gate, not_supported, reference
from harness.errors import HarnessError
from harness.platforms import registry
from harness.platforms.base import CAPABILITIES
from tests.test_gate_not_run import MESSAGE, body

ROOT = reference.REFERENCE_DIR.parent
POWER = "scenarios/test_persistence.py::test_kill9_loses_at_most_the_appendfsync_window"


def lacked(platform: str) -> list[str]:
    """The capabilities a platform's class does not declare, as their descriptions."""
    entry = registry.PLATFORMS[platform]
    cls = getattr(importlib.import_module(entry.module), entry.cls)
    return [description for cap, description in CAPABILITIES.items() if not issubclass(cls, cap)]


@pytest.mark.parametrize("platform", sorted(registry.PLATFORMS))
def test_each_platform_has_a_list_of_existing_tests_each_for_a_capability_it_lacks(platform):
    allowed = not_supported.declared(platform)
    missing = lacked(platform)
    for node_id, why in allowed.items():
        file, _, name = node_id.partition("::")
        assert (ROOT / file).is_file() and f"def {name}(" in (ROOT / file).read_text(), f"{platform}: no test {node_id}"
        assert any(why.startswith(f"{m}:") for m in missing), (
            f"{platform}: {node_id} is listed for {why.split(':')[0]!r}, which is not a capability the platform lacks ({missing})"
        )
    if not missing:
        assert allowed == {}, f"{platform} declares every capability, so it may leave no check unrun"


def test_the_local_platform_runs_every_check():
    assert not_supported.declared("local") == {}


def test_a_platform_the_list_does_not_name_is_refused_in_a_sentence(tmp_path, monkeypatch):
    (tmp_path / not_supported.LIST_NAME).write_text(yaml.safe_dump({"local": {}}))
    monkeypatch.setattr(reference, "REFERENCE_DIR", tmp_path)
    with pytest.raises(HarnessError, match="says nothing of the kind platform"):
        not_supported.declared("kind")
    (tmp_path / not_supported.LIST_NAME).write_text(yaml.safe_dump({"kind": {POWER: ""}}))
    with pytest.raises(HarnessError, match="maps each test node id to the reason"):
        not_supported.declared("kind")


def persistence(*tests):
    return body("persistence", *tests)


def test_unrun_checks_on_the_list_pass_and_are_listed_with_their_reason():
    allowed = not_supported.declared("kind")
    found = [persistence(("test_kill9_loses_at_most_the_appendfsync_window", "not_supported"), ("test_restart", "passed"))]
    verdict = gate.aggregate(["persistence"], found, 0, platform="kind", allowed=allowed)
    assert verdict["outcome"] == "pass", verdict["unrun_differences"]
    assert verdict["unrun_checks"] == [{"test": POWER, "reason": MESSAGE, "allowed": True}]


def test_an_unrun_check_off_the_list_fails_the_gate():
    found = [persistence(("test_kill9_loses_at_most_the_appendfsync_window", "not_supported"), ("test_restart", "passed"))]
    verdict = gate.aggregate(["persistence"], found, 0, platform="local", allowed=not_supported.declared("local"))
    assert verdict["outcome"] == "fail"
    assert verdict["unrun_differences"] == [
        f"{POWER} did not run ({MESSAGE}), and not-supported.yaml does not let the local platform leave it unrun"
    ]
    assert verdict["unrun_checks"][0]["allowed"] is False


def test_a_listed_check_that_ran_fails_the_gate_until_the_list_says_so():
    found = [persistence(("test_kill9_loses_at_most_the_appendfsync_window", "passed"))]
    verdict = gate.aggregate(["persistence"], found, 0, platform="kind", allowed=not_supported.declared("kind"))
    assert verdict["outcome"] == "fail"
    assert verdict["unrun_differences"] == [
        f"{POWER} ran on the kind platform (passed), which not-supported.yaml says it cannot: take it off the list"
    ]


def test_a_listed_check_of_a_suite_that_did_not_run_is_no_difference():
    found = [body("static", ("a", "passed"))]
    verdict = gate.aggregate(["static"], found, 0, platform="kind", allowed=not_supported.declared("kind"))
    assert verdict["outcome"] == "pass" and verdict["unrun_differences"] == []
