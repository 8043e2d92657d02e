"""The gating job behind `redis-harness run`: every gating suite (pytest over scenarios/,
in its own process) against one stood-up reference, then one run directory:
reports/<UTC timestamp>-run/ with report.json, junit.xml, index.html and each suite's own
run directory under suites/."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import reference
from harness.errors import HarnessError
from harness.report import html, rundir

ROOT = Path(__file__).resolve().parent.parent
SUITES = ("static", "sharding", "failover", "persistence", "security", "network_policy", "negative_controls")
RESULT_LINE = re.compile(r"^(scenarios/\S+::\S+) (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)")


@dataclass
class GateResult:
    run_dir: Path
    outcome: str  # pass | fail | error
    report: dict[str, Any]


def _default_sigint() -> None:
    """In the pytest child: SIGINT must interrupt even when this process was started with it ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def suite_paths(suites: list[str] | None) -> list[str]:
    chosen = list(suites or SUITES)
    unknown = [s for s in chosen if s not in SUITES]
    if unknown:
        raise HarnessError(f"unknown suite '{unknown[0]}': choose from {', '.join(SUITES)}")
    return [f"scenarios/test_{s}.py" for s in chosen]


def run_gate(
    platform: str,
    overlay: str,
    suites: list[str] | None = None,
    reports: Path | None = None,
    keep: bool = False,
    cluster: str = "redis-harness-run",
    subnet: str | None = None,
    progress: Callable[[str, int], None] = lambda test, done: None,
) -> GateResult:
    reference.overlay_path(overlay)
    paths = suite_paths(suites)
    if platform not in ("local", "kubernetes"):
        raise HarnessError(f"unknown platform '{platform}': choose one of local, kubernetes")
    run_dir = rundir.new_run_dir("run", reports)
    started = rundir.utc_now()
    argv = [
        sys.executable,
        "-m",
        "pytest",
        *paths,
        "-rA",
        "-v",
        "-p",
        "no:cacheprovider",
        "--platform",
        platform,
        "--overlay",
        overlay,
        "--cluster",
        cluster,
        "--reports",
        str(run_dir / "suites"),
        f"--junitxml={run_dir / 'junit.xml'}",
    ]
    if subnet:
        argv += ["--subnet", subnet]
    env = {**os.environ, **({"REDIS_HARNESS_KEEP": "1"} if keep else {})}
    log = open(run_dir / "pytest.log", "w")
    t = time.monotonic()
    # A session of its own: on Ctrl-C exactly one SIGINT reaches pytest (from us), and pytest
    # tears the cluster down on its way out.
    proc = subprocess.Popen(
        argv,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=_default_sigint,
    )
    done = 0
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            match = RESULT_LINE.match(line)
            if match:
                done += 1
                progress(match.group(1).split("::")[1], done)
        code = proc.wait()
    except BaseException:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=180)
        except subprocess.TimeoutExpired:
            proc.kill()
        raise
    finally:
        log.close()
    suites_report = []
    for path in sorted((run_dir / "suites").glob("*/report.json")):
        body = json.loads(path.read_text())
        failures = [
            {"test": t["name"], "outcome": t["outcome"], "failure": (t.get("failure") or "")[-1500:]}
            for t in body["tests"]
            if t["outcome"] in ("failed", "error")
        ]
        suites_report.append(
            {
                "suite": body["kind"],
                "outcome": body["outcome"],
                "counts": body["counts"],
                "duration_s": body["duration_s"],
                "index": str(path.parent.relative_to(run_dir) / "index.html"),
                "failures": failures,
                "environment": body["environment"],
            }
        )
    outcome = "pass" if code == 0 else ("error" if not suites_report or code not in (0, 1) else "fail")
    finished = rundir.utc_now()
    environment = suites_report[0]["environment"] if suites_report else rundir.environment(platform, overlay, {})
    report = {
        "kind": "run",
        "started": started.isoformat(),
        "finished": finished.isoformat(),
        "duration_s": round(time.monotonic() - t, 3),
        "environment": environment,
        "outcome": outcome,
        "pytest_exit_code": code,
        "suites": suites_report,
        "counts": {k: sum(s["counts"].get(k, 0) for s in suites_report) for k in ("passed", "failed", "error", "skipped")},
    }
    rundir.write_report(run_dir, report, [])
    html.write_run_html(run_dir, report)
    return GateResult(run_dir, outcome, report)
