"""Meta-test: every negative control (reference/overlays/broken-*) makes the tests its
expected-failures.yaml names fail — proof that the suites can fail, and fail for the right
reason: each named test must fail on an assertion (not error in set-up, not raise something
else) whose message contains the text the file gives as `breaks`, the check the test exists for.
A test the file lists as `not_judged` (with why: the break brings it to the edge of its limit,
where timing decides) must run to a verdict, pass or fail on an assertion, and that verdict is
not the control's.

Scope (`--control-scope`): `named` (the default, what `make test` runs) runs the tests that must
fail and nothing else; `suites` (`tox -e controls`, and the scheduled CI job) runs the whole
suites they belong to and also requires every test the file does not name to pass: that the
control breaks what it says and nothing more."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from harness import reference

ROOT = Path(__file__).resolve().parent.parent
BROKEN = [o for o in reference.overlays() if o.startswith("broken-")]


def _entries(overlay: str) -> tuple[Path, dict]:
    path = reference.overlay_path(overlay) / "expected-failures.yaml"
    body = yaml.safe_load(path.read_text())
    return path, body if isinstance(body, dict) else {}


def expected(overlay: str) -> dict[str, str]:
    """Test node id → the text its assertion's failure message must contain."""
    path, body = _entries(overlay)
    entries = body.get("must_fail")
    assert entries, f"{path} names no test that must fail"
    for entry in entries:
        assert isinstance(entry, dict) and set(entry) == {"test", "breaks"} and entry["breaks"], (
            f"{path}: each must_fail entry names a `test` and the assertion it `breaks`, not {entry!r}"
        )
    return {entry["test"]: str(entry["breaks"]) for entry in entries}


def unjudged(overlay: str) -> dict[str, str]:
    """Test node id → why this control's break leaves that test's verdict to timing (`not_judged`):
    it must still run to an outcome, but pass or fail is not the control's to say."""
    path, body = _entries(overlay)
    entries = body.get("not_judged") or []
    for entry in entries:
        assert isinstance(entry, dict) and set(entry) == {"test", "why"} and entry["why"], (
            f"{path}: each not_judged entry names a `test` and `why`, not {entry!r}"
        )
    return {entry["test"]: str(entry["why"]) for entry in entries}


def outcomes(junit: Path) -> dict[str, tuple[str, str]]:
    """Test name → (passed / failed / error / skipped, the failure's message and text), from junit.xml."""
    result = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        found = next((child for child in case if child.tag in ("failure", "error", "skipped")), None)
        kind = "passed" if found is None else {"failure": "failed"}.get(found.tag, found.tag)
        text = "" if found is None else f"{found.get('message', '')}\n{found.text or ''}"
        result[case.get("name")] = (kind, text)
    return result


def failed_on_assertion(text: str) -> bool:
    """pytest's junit message for a failed assert starts with the AssertionError (or the assert)."""
    return text.startswith(("AssertionError", "assert ")) or "\nE       AssertionError" in text


def test_every_broken_overlay_names_its_expected_failures():
    assert BROKEN, "there is no negative control"
    for overlay in BROKEN:
        assert not set(expected(overlay)) & set(unjudged(overlay)), f"{overlay}: a test both must fail and is not judged"
        for node_id in [*expected(overlay), *unjudged(overlay)]:
            file, _, name = node_id.partition("::")
            assert (ROOT / file).is_file() and f"def {name}(" in (ROOT / file).read_text(), f"{overlay}: no test {node_id}"


def selection(overlay: str, scope: str) -> list[str]:
    """What a control runs: the tests that must fail, or the whole suites of every test its file
    names (a `not_judged` test proves nothing about the control: it runs where the others do)."""
    if scope == "suites":
        return sorted({node_id.partition("::")[0] for node_id in [*expected(overlay), *unjudged(overlay)]})
    return list(expected(overlay))


def test_a_control_runs_its_named_tests_or_their_whole_suites():
    assert selection("broken-colocated", "named") == [
        "scenarios/test_nodes.py::test_no_replica_shares_a_node_with_its_master",
        "scenarios/test_nodes.py::test_losing_any_one_node_keeps_every_slot_served",
    ]  # its drain is not judged: it runs with the whole suite
    assert selection("broken-no-replicas", "suites") == ["scenarios/test_failover.py", "scenarios/test_sharding.py"]


@pytest.mark.parametrize("overlay", BROKEN)
def test_negative_control_fails_exactly_the_tests_it_names(overlay, tmp_path, evidence, request):
    named = expected(overlay)
    scope = request.config.getoption("--control-scope")
    suites = selection(overlay, scope)
    junit = tmp_path / "junit.xml"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *suites,
            "--overlay",
            overlay,
            "--cluster",
            f"rh-negative-{overlay}"[:40],  # a name per control: controls may run side by side
            # A cluster forms in about 5 s here; one that has not in 20 s will not (the bootstrap's
            # wait for a pod a broken policy keeps unreachable is this long).
            "--startup-timeout",
            "20",
            "--reports",
            str(tmp_path / "reports"),
            "-p",
            "no:cacheprovider",
            f"--junitxml={junit}",
            "-q",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    seen = outcomes(junit)
    evidence.figure(overlay=overlay, scope=scope, ran=suites, outcomes={name: kind for name, (kind, _) in seen.items()})
    must = {node_id.partition("::")[2]: breaks for node_id, breaks in named.items()}
    loose = {node_id.partition("::")[2] for node_id in unjudged(overlay)} if scope == "suites" else set()

    def off(name: str, kind: str, text: str) -> bool:
        if name in loose:  # ran to a verdict: passed, or failed on an assertion
            return not (kind == "passed" or (kind == "failed" and failed_on_assertion(text)))
        return kind != ("failed" if name in must else "passed")

    wrong = {name: kind for name, (kind, text) in seen.items() if off(name, kind, text)}
    missing = (set(must) | loose) - set(seen)
    assert not wrong and not missing, f"outcomes {wrong}, missing {missing}\n{proc.stdout[-3000:]}"
    for name, breaks in must.items():
        text = seen[name][1]
        assert failed_on_assertion(text), f"{overlay}: {name} failed, but not on an assertion:\n{text[:1500]}"
        assert breaks in text, f"{overlay}: {name} failed, but not where it must ({breaks!r}):\n{text[:1500]}"
