"""The CI workflows: actionlint and zizmor (offline, pedantic) find nothing in them; the kind
workflow gates pull requests that touch reference/ with pinned actions, the harness image built
and loaded into kind, the gate run in the cluster and its report and JUnit uploaded; the test
workflow runs `make test`. The broken workflows below show each linter catching what it must."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def tool(name: str) -> str:
    """The linter installed with the test extra, next to this interpreter or on PATH."""
    found = shutil.which(name, path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if found is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[test]'")
    return found


def actionlint(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [tool("actionlint"), "-no-color", "-shellcheck=", "-pyflakes=", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def zizmor(*paths: Path) -> list[dict]:
    proc = subprocess.run(
        [tool("zizmor"), "--offline", "--persona", "pedantic", "--format", "json", "--no-progress", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert proc.stdout.strip().startswith("["), f"zizmor could not run (exit {proc.returncode}): {proc.stderr[-1500:]}"
    return json.loads(proc.stdout)


def load(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def steps(workflow: dict) -> list[dict]:
    return [s for job in workflow["jobs"].values() for s in job["steps"]]


# --- the linters find nothing ---------------------------------------------------------------
def test_workflows_pass_actionlint():
    proc = actionlint(*sorted(WORKFLOWS.glob("*.yml")))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_workflows_pass_zizmor_offline():
    findings = zizmor(WORKFLOWS)
    assert findings == [], "\n".join(f"{f['ident']}: {f['desc']}" for f in findings)


# --- what the workflows do --------------------------------------------------------------------
def test_kind_workflow_gates_pull_requests_that_touch_the_reference():
    wf = load("kind.yml")
    on = wf[True] if True in wf else wf["on"]  # YAML 1.1 reads the key `on` as true
    assert list(on) == ["pull_request"] and on["pull_request"]["paths"] == ["reference/**"]
    uses = [s["uses"] for s in steps(wf) if "uses" in s]
    assert all(PINNED.match(u) for u in uses), uses
    assert any(u.startswith("helm/kind-action@") for u in uses)
    kind = next(s for s in steps(wf) if s.get("uses", "").startswith("helm/kind-action@"))
    assert kind["with"]["config"] == "reference/kind/cluster.yaml"
    assert kind["with"]["cluster_name"] == yaml.safe_load((ROOT / "reference/kind/cluster.yaml").read_text())["name"]
    runs = "\n".join(s.get("run", "") for s in steps(wf))
    assert 'docker build --tag "$IMAGE"' in runs and 'kind load docker-image "$IMAGE"' in runs
    assert 'redis-harness run --platform kind --image "$IMAGE"' in runs
    assert "${{ github.run_id }}" in wf["jobs"]["gate"]["env"]["IMAGE"], "a unique tag per run"
    uploads = [s for s in steps(wf) if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert {u["with"]["name"] for u in uploads} == {"gate-report", "gate-junit", "gate-diagnostics"}
    reports = [u for u in uploads if u["with"]["name"] != "gate-diagnostics"]
    assert all(u["if"] == "${{ !cancelled() }}" for u in reports), "the report of a failed gate is uploaded too"
    # A failed run leaves what it stood up (--keep) for the collection step, which takes events, pod
    # states, every container's log and kind's node logs, and uploads them.
    collect = next(s for s in steps(wf) if "kind export logs" in s.get("run", ""))
    assert collect["if"] == "${{ failure() }}" and "get events --all-namespaces" in collect["run"]
    assert "logs" in collect["run"] and "--previous" in collect["run"] and "describe pods" in collect["run"]
    names = [s.get("name") for s in steps(wf)]
    assert names.index(collect["name"]) > names.index("Gate")
    assert next(u for u in uploads if u["with"]["name"] == "gate-diagnostics")["if"] == "${{ failure() }}"
    gate = next(s for s in steps(wf) if "redis-harness run" in s.get("run", ""))
    assert "continue-on-error" not in gate and "|| true" not in gate["run"], "a failed gate fails the job"
    assert "--keep" in gate["run"], "what a failed gate stood up stays for the diagnostics"


def test_test_workflow_runs_make_test():
    wf = load("test.yml")
    assert any(re.search(r"\bmake test\b", s.get("run", "")) for s in steps(wf))


def test_controls_workflow_runs_the_controls_against_whole_suites():
    wf = load("controls.yml")
    assert any(re.search(r"\bmake controls\b", s.get("run", "")) for s in steps(wf))
    triggers = wf[True] if True in wf else wf["on"]  # YAML 1.1 reads the key `on` as true
    assert "schedule" in triggers and "reference/**" in triggers["pull_request"]["paths"]
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^controls:.*\n\t.*tox -e controls", makefile, re.M)
    assert "--control-scope suites" in (ROOT / "tox.ini").read_text()


# --- each linter can fail -------------------------------------------------------------------------
BROKEN = """\
name: broken
on:
  pull_request:
jobs:
  gate:
    name: gate
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/checkout@v4
      - uses: helm/kind-action@v1
      - run: echo "${{ github.event.pull_request.title }}"
      - run: echo ${{ steps.nope.outputs.x }}
"""


def test_actionlint_catches_a_broken_workflow(tmp_path):
    path = tmp_path / "broken.yml"
    path.write_text(BROKEN)
    proc = actionlint(path)
    assert proc.returncode == 1
    assert "steps.nope" in proc.stdout or 'property "nope"' in proc.stdout, proc.stdout


def test_zizmor_catches_unpinned_actions_injection_and_default_permissions(tmp_path):
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    path = tmp_path / ".github" / "workflows" / "broken.yml"
    path.write_text(BROKEN)
    idents = {f["ident"] for f in zizmor(path)}
    assert {"unpinned-uses", "template-injection", "excessive-permissions", "artipacked"} <= idents, idents
