"""Meta-test: every negative control (reference/overlays/broken-*) makes exactly the tests
its expected-failures.yaml names fail — and every other test of those suites pass —
proof that the suites can fail, and fail for the right reason."""

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


def expected(overlay: str) -> dict[str, list[str]]:
    """{"must_fail": [node ids], "must_error": [node ids]}"""
    path = reference.overlay_path(overlay) / "expected-failures.yaml"
    body = yaml.safe_load(path.read_text())
    assert body.get("must_fail"), f"{path} names no test that must fail"
    return {"must_fail": body["must_fail"], "must_error": body.get("must_error", [])}


def outcomes(junit: Path) -> dict[str, str]:
    """Test name → passed / failed / error / skipped, from pytest's junit.xml."""
    result = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        kind = next((child.tag for child in case if child.tag in ("failure", "error", "skipped")), "passed")
        result[case.get("name")] = {"failure": "failed"}.get(kind, kind)
    return result


def test_every_broken_overlay_names_its_expected_failures():
    assert BROKEN, "there is no negative control"
    for overlay in BROKEN:
        for node_id in sum(expected(overlay).values(), []):
            file, _, name = node_id.partition("::")
            assert (ROOT / file).is_file() and f"def {name}(" in (ROOT / file).read_text(), f"{overlay}: no test {node_id}"


@pytest.mark.parametrize("overlay", BROKEN)
def test_negative_control_fails_exactly_the_tests_it_names(overlay, tmp_path, evidence):
    named = expected(overlay)
    suites = sorted({node_id.partition("::")[0] for node_id in sum(named.values(), [])})
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
            "rh-negative",
            "--subnet",
            "198.18.6.0/24",
            "--startup-timeout",
            "45",
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
    evidence.figure(overlay=overlay, suites=suites, outcomes=seen)
    want = {name: "passed" for name in seen}
    want.update({node_id.partition("::")[2]: "failed" for node_id in named["must_fail"]})
    want.update({node_id.partition("::")[2]: "error" for node_id in named["must_error"]})
    assert seen == want, proc.stdout[-3000:]
