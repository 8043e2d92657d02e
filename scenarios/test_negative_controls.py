"""Meta-test: every negative control (reference/overlays/broken-*) makes the tests it
names in its expected-failures.yaml fail — proof that the suites can fail."""

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


def expected_failures(overlay: str) -> list[str]:
    path = reference.overlay_path(overlay) / "expected-failures.yaml"
    must_fail = yaml.safe_load(path.read_text())["must_fail"]
    assert must_fail, f"{path} names no test"
    return must_fail


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
        for node_id in expected_failures(overlay):
            file, _, name = node_id.partition("::")
            assert (ROOT / file).is_file() and f"def {name}(" in (ROOT / file).read_text(), f"{overlay}: no test {node_id}"


@pytest.mark.parametrize("overlay", BROKEN)
def test_negative_control_fails_the_tests_it_names(overlay, tmp_path, evidence):
    must_fail = expected_failures(overlay)
    junit = tmp_path / "junit.xml"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *must_fail,
            "--overlay",
            overlay,
            "--cluster",
            "rh-negative",
            "--subnet",
            "198.18.6.0/24",
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
        timeout=1200,
    )
    seen = outcomes(junit)
    evidence.figure(overlay=overlay, outcomes=seen)
    names = [node_id.partition("::")[2] for node_id in must_fail]
    assert set(names) <= set(seen), proc.stdout[-2000:]
    assert {name: seen[name] for name in names} == {name: "failed" for name in names}, proc.stdout[-3000:]
