"""checkov (offline) over every rendered gated overlay and the harness's own manifests (runner Job,
node agent, the bench's Locust workers): no failed check, and every waived one carries its reason in the manifest
(`checkov.io/skipN: CKV_K8S_xx=reason` on the object). The broken inputs below show that each
assertion can fail."""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness import reference
from harness.reference import Manifests

GATED_OVERLAYS = [o for o in reference.overlays() if not o.startswith("broken-")]
NO_REASON = "No comment provided"  # what checkov records for a skip annotation without "=reason"


def checkov_command() -> list[str]:
    """checkov in this interpreter, else on PATH (or REDIS_HARNESS_CHECKOV). It has an extra of its own
    (`.[checkov]`): it pins packaging<24, which tox cannot live with, so `make test`'s tox environment
    carries it and a development virtualenv may not."""
    if importlib.util.find_spec("checkov") is not None:
        return [sys.executable, "-m", "checkov.main"]
    found = os.environ.get("REDIS_HARNESS_CHECKOV") or shutil.which("checkov")
    if found:
        return [found]
    message = "checkov is not installed: pip install '.[checkov]' (make test's tox environment has it)"
    if os.environ.get("TOX_ENV_NAME") or os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def scan(objects: list[dict[str, Any]], tmp_path: Path) -> dict[str, Any]:
    """checkov's verdict on these objects, offline (no guideline download, no platform mapping)."""
    path = tmp_path / "rendered.yaml"
    path.write_text(yaml.safe_dump_all(objects, sort_keys=False))
    proc = subprocess.run(
        [*checkov_command(), "--file", str(path), "--framework", "kubernetes", "--output", "json", "--skip-download"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_NO_OUTPUT_COLOR": "1"},
    )
    assert proc.returncode in (0, 1), f"checkov could not run (exit {proc.returncode}): {proc.stderr[-2000:]}"
    body = json.loads(proc.stdout)
    assert isinstance(body, dict) and body.get("check_type") == "kubernetes", proc.stdout[:500]
    assert body["results"]["parsing_errors"] == [], body["results"]["parsing_errors"]
    return body["results"]


def failed(results: dict[str, Any]) -> list[str]:
    return [f"{c['check_id']} {c['resource']}: {c['check_name']}" for c in results["failed_checks"]]


def unexplained(results: dict[str, Any]) -> list[str]:
    return [
        f"{c['check_id']} {c['resource']}"
        for c in results["skipped_checks"]
        if (c["check_result"].get("suppress_comment") or NO_REASON).strip() in ("", NO_REASON)
    ]


def harness_objects() -> list[dict[str, Any]]:
    """What a run applies besides the reference: the runner Job with its identity, the node agent, the
    bench's Locust workers."""
    from harness.platforms.kubernetes import runner

    namespace, image = reference.render("kind").namespace(), "redis-harness:run-1"
    return [
        *runner.runner_objects(namespace, image, runner.gate_args("kind")),
        *runner.agent_objects(image),
        *runner.loadgen_objects(namespace, image, 2),
    ]


TARGETS = {
    **{f"overlay-{o}": lambda o=o: reference.render(o).objects for o in GATED_OVERLAYS},
    "harness-manifests": harness_objects,
}


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_checkov_finds_no_failure_and_every_waiver_has_a_reason(target, tmp_path):
    results = scan(TARGETS[target](), tmp_path)
    assert failed(results) == [], "fix these, or waive each in its manifest with its reason:\n" + "\n".join(failed(results))
    assert unexplained(results) == [], "waived without a reason"
    assert results["passed_checks"], "checkov checked nothing"


# --- each assertion can fail ------------------------------------------------------------
def kind_objects() -> list[dict[str, Any]]:
    return copy.deepcopy(reference.render("kind").objects)


def test_checkov_flags_an_unselected_bootstrap_pod_and_a_container_without_liveness(tmp_path):
    objects = kind_objects()
    objects = [o for o in objects if not (o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "redis-cluster-bootstrap")]
    sts = Manifests(objects).redis_statefulset()
    for c in sts["spec"]["template"]["spec"]["containers"]:
        c.pop("livenessProbe", None)
    messages = failed(scan(objects, tmp_path))
    assert any(m.startswith("CKV2_K8S_6 ") and "bootstrap" in m for m in messages), messages
    assert any(m.startswith("CKV_K8S_8 StatefulSet.redis.redis-cluster") for m in messages), messages


def test_checkov_flags_a_waiver_removed(tmp_path):
    objects = kind_objects()
    Manifests(objects).redis_statefulset()["metadata"]["annotations"].pop("checkov.io/skip1")
    assert "CKV_K8S_11 StatefulSet.redis.redis-cluster: CPU limits should be set" in failed(scan(objects, tmp_path))


def test_a_waiver_without_its_reason_is_refused(tmp_path):
    objects = kind_objects()
    Manifests(objects).redis_statefulset()["metadata"]["annotations"]["checkov.io/skip1"] = "CKV_K8S_11"
    results = scan(objects, tmp_path)
    assert failed(results) == []
    assert unexplained(results) == ["CKV_K8S_11 StatefulSet.redis.redis-cluster"]
