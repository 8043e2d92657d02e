"""The gating job behind `redis-harness run`: every gating suite (pytest over scenarios/,
in its own process) against one stood-up reference, then one run directory:
reports/<UTC timestamp>-run/ with report.json, junit.xml, index.html and each suite's own
run directory under suites/. A chosen suite that ran no test (none collected, or every one not
supported on the platform) is "not run", and the gate does not pass."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import judgement, lanes, not_supported, reference, slo
from harness.errors import HarnessError
from harness.platforms import registry
from harness.report import html, outcomes, rundir

ROOT = Path(__file__).resolve().parent.parent
# What a change to the deployment is gated on (`redis-harness run`).
GATING = ("static", "sharding", "failover", "nodes", "persistence", "security", "network_policy", "observability")
# The negative controls prove the harness, not the deployment: `make test` runs them, and
# `redis-harness run --suite negative_controls` on demand.
SUITES = (*GATING, "negative_controls")
RESULT_LINE = re.compile(r"^(scenarios/\S+::\S+) (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)")


@dataclass
class GateResult:
    run_dir: Path
    outcome: str  # pass | fail | not run | error
    report: dict[str, Any]


def _default_sigint() -> None:
    """In the pytest child: SIGINT must interrupt even when this process was started with it ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def suite_paths(suites: list[str] | None) -> list[str]:
    chosen = list(suites or GATING)
    unknown = [s for s in chosen if s not in SUITES]
    if unknown:
        raise HarnessError(f"unknown suite '{unknown[0]}': choose from {', '.join(SUITES)}")
    return [f"scenarios/test_{s}.py" for s in chosen]


SLOWEST = 10  # tests listed in the gate report's "where the time goes"


def test_time(test: dict[str, Any]) -> dict[str, Any]:
    """Where one test's time went: set-up, call (for a fault test split at the fault's recovery into
    fault → recovery and the rest: load before the fault, heal, settle), tear-down."""
    phases = test.get("phases") or {}
    call = phases.get("call", 0.0)
    recovery = (test.get("figures") or {}).get("recovery_s")
    recovery = float(recovery) if isinstance(recovery, int | float) and recovery <= call else None
    return {
        "test": test["name"],
        "setup_s": round(phases.get("setup", 0.0), 3),
        "fault_to_recovery_s": recovery,
        "rest_of_call_s": round(call - (recovery or 0.0), 3),
        "teardown_s": round(phases.get("teardown", 0.0), 3),
        "total_s": round(sum(phases.values()), 3),
    }


def time_spent(tests: list[dict[str, Any]]) -> dict[str, float]:
    """A suite's seconds in set-up, calls and tear-down, summed over its tests."""
    return {
        f"{when}_s": round(sum((t.get("phases") or {}).get(when, 0.0) for t in tests), 3) for when in ("setup", "call", "teardown")
    }


def aggregate(
    chosen: list[str],
    found: list[tuple[str, dict[str, Any]]],
    exit_code: int,
    allow_skip: bool = False,
    platform: str | None = None,
    allowed: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The gate's verdict from the chosen suites, the suites' report.json bodies (with the path of each
    one's index.html) and pytest's exit code: every suite's row, the suites that did not run and why,
    the counts, and the outcome. A chosen suite without a report, or whose tests were all not supported,
    did not run; the gate then does not pass: fail when a suite failed, error when pytest itself broke
    (exit code other than 0, 1 and 5: no test collected), else "not run". With `allowed` (the checks
    reference/not-supported.yaml lets `platform` leave unrun) every unrun check is listed with its
    reason, and the gate fails when they differ from that list."""
    rows: dict[str, dict[str, Any]] = {}
    for index, body in found:
        tests = body.get("tests", [])
        outcome, why = outcomes.suite_outcome(tests, allow_skip)
        if body.get("outcome") == "fail" and outcome != "fail":
            outcome, why = "fail", body.get("why")
        rows[body["kind"]] = {
            "suite": body["kind"],
            "outcome": outcome,
            "not_run": why if outcome == outcomes.NOT_RUN else None,
            "why": why,
            "counts": outcomes.counts(t["outcome"] for t in tests),
            "duration_s": body.get("duration_s", 0.0),
            "index": index,
            "failures": [
                {"test": t["name"], "outcome": t["outcome"], "failure": (t.get("failure") or "")[-1500:]}
                for t in tests
                if t["outcome"] in ("failed", "error")
            ],
            "environment": body.get("environment"),
            "phases": time_spent(tests),
            "tightest": judgement.tightest(
                [{**m, "test": t["name"]} for t in tests for m in (t.get("figures") or {}).get("margins") or []]
            ),
        }
    if exit_code == 5:
        missing = "pytest collected no test"
    elif exit_code in (0, 1):
        missing = "no test of this suite ran"
    else:
        missing = f"pytest stopped (exit code {exit_code}) before any test of this suite ran; see pytest.log"
    for suite in chosen:
        if suite not in rows:
            rows[suite] = {
                "suite": suite,
                "outcome": outcomes.NOT_RUN,
                "not_run": missing,
                "why": missing,
                "counts": outcomes.counts([]),
                "duration_s": 0.0,
                "index": None,
                "failures": [],
                "environment": None,
            }
    order = {name: n for n, name in enumerate(chosen)}
    suites = sorted(rows.values(), key=lambda r: (order.get(r["suite"], len(order)), r["suite"]))
    not_run = [{"suite": r["suite"], "reason": r["not_run"]} for r in suites if r["outcome"] == outcomes.NOT_RUN]
    reported = [(body["kind"], body.get("tests", [])) for _, body in found]
    unrun = [{**t, "allowed": allowed is not None and t["test"] in allowed} for t in not_supported.unrun(reported)]
    differences = [] if allowed is None else not_supported.differences(platform or "?", allowed, reported)
    if exit_code not in (0, 1, 5) or (exit_code == 1 and not found):
        outcome = "error"
    elif exit_code == 1 or differences or any(r["outcome"] == "fail" for r in suites):
        outcome = "fail"
    elif not_run:
        outcome = outcomes.NOT_RUN
    else:
        outcome = "pass"
    counts = {k: sum(r["counts"].get(k, 0) for r in suites) for k in outcomes.TEST_OUTCOMES}
    slowest = sorted(
        ({"suite": body["kind"], **test_time(t)} for _, body in found for t in body.get("tests", [])),
        key=lambda t: -t["total_s"],
    )[:SLOWEST]
    tightest = judgement.tightest([r["tightest"] for r in suites if r.get("tightest")])
    return {
        "outcome": outcome,
        "suites": suites,
        "not_run": not_run,
        "unrun_checks": unrun,
        "unrun_differences": differences,
        "counts": counts,
        "allow_skip": allow_skip,
        "tightest": tightest,
        "slowest": slowest,
    }


def check_input(
    platform: str,
    overlay: str,
    suites: list[str] | None,
    cluster: str,
    subnet: str | None,
    options: dict[str, Any] | None = None,
) -> list[str]:
    """Everything about the input that can be checked before anything starts — the suites, the
    overlay, the platform and its options (a cluster name, a subnet, a kubeconfig), the SLO file the
    suites judge against — refused in one sentence (HarnessError: exit 2) before a cluster is stood up.
    Returns the suites' paths."""
    paths = suite_paths(suites)
    reference.overlay_path(overlay)
    given = {"cluster": cluster, "subnet": subnet} if platform == "local" else {}
    registry.create(platform, overlay=overlay, **given, **(options or {}))  # builds, starts nothing
    slo.load()
    return paths


def run_in_cluster(
    platform: str,
    overlay: str,
    image: str | None,
    suites: list[str] | None = None,
    reports: Path | None = None,
    keep: bool = False,
    options: dict[str, Any] | None = None,
    say: Callable[[str], None] = lambda line: None,
    allow_skip: bool = False,
) -> GateResult:
    """The gate as a Job in the cluster (harness/platforms/kubernetes/incluster.py): the reference stood up
    from here, the suites run in a `role: client` pod, the report brought back to `reports`, the
    reference torn down (unless `keep`). The verdict is the Job's report's."""
    from harness.platforms.kubernetes import incluster, runner

    options = {k: v for k, v in (options or {}).items() if v is not None}
    check_input(platform, overlay, suites, "", None, options)
    args = runner.gate_args(overlay, suites, allow_skip)
    code, run_dir = incluster.run(platform, overlay, image, args, reports, options, say, stand_up=True, keep=keep)
    if run_dir is None:
        raise HarnessError(f"the runner Job finished (exit code {code}) without a report; see its log above")
    report = json.loads((run_dir / "report.json").read_text())
    return GateResult(run_dir, report.get("outcome", "error"), report)


def run_gate(
    platform: str,
    overlay: str,
    suites: list[str] | None = None,
    reports: Path | None = None,
    keep: bool = False,
    cluster: str = "redis-harness-run",
    subnet: str | None = None,
    progress: Callable[[str, int], None] = lambda test, done: None,
    allow_skip: bool = False,
    echo: Callable[[str], None] | None = None,
    jobs: int = 1,
) -> GateResult:
    """`echo`, when given, gets each test's result line ("scenarios/test_x.py::test_y PASSED"): the
    progress of a run whose output is a log (the runner Job's pod), not a terminal. With `jobs` above
    1 on the local platform the suites run in that many lanes side by side (harness/lanes.py), each
    against a cluster of its own; one report all the same."""
    paths = check_input(platform, overlay, suites, cluster, subnet)
    allowed = not_supported.declared(platform)  # read before the run: a broken list stops it at once
    if platform == "local":
        lanes.check_jobs(jobs)
    names = [Path(p).stem.removeprefix("test_") for p in paths]
    plan = lanes.plan(names, jobs if platform == "local" else 1)
    ranges = lanes.subnets(subnet, len(plan))
    clusters = lanes.cluster_names(cluster, len(plan))
    run_dir = rundir.new_run_dir("run", reports)
    started = rundir.utc_now()
    env = {**os.environ, **({"REDIS_HARNESS_KEEP": "1"} if keep else {})}
    junits = [run_dir / ("junit.xml" if len(plan) == 1 else f"junit-lane{n}.xml") for n in range(1, len(plan) + 1)]
    logs = [run_dir / ("pytest.log" if len(plan) == 1 else f"pytest-lane{n}.log") for n in range(1, len(plan) + 1)]
    t = time.monotonic()
    procs: list[subprocess.Popen] = []
    done = 0
    lock = threading.Lock()

    def follow(proc: subprocess.Popen, log_path: Path) -> None:
        nonlocal done
        assert proc.stdout is not None
        with open(log_path, "w") as log:
            for line in proc.stdout:
                log.write(line)
                match = RESULT_LINE.match(line)
                if match:
                    with lock:
                        done += 1
                        progress(match.group(1).split("::")[1], done)
                        if echo is not None:
                            echo(f"{match.group(1)} {match.group(2)}")

    readers = []
    try:
        for lane, lane_cluster, lane_subnet, junit, log_path in zip(plan, clusters, ranges, junits, logs, strict=True):
            argv = [
                sys.executable, "-m", "pytest", *suite_paths(lane), "-rA", "-v",
                "-p", "no:cacheprovider", "--platform", platform, "--overlay", overlay, "--cluster", lane_cluster,
                "--reports", str(run_dir / "suites"), f"--junitxml={junit}",
                *(["--subnet", lane_subnet] if lane_subnet else []), *(["--allow-skip"] if allow_skip else []),
            ]  # fmt: skip
            # A session of its own: on Ctrl-C exactly one SIGINT reaches pytest (from us), and pytest
            # tears its cluster down on its way out.
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
            procs.append(proc)
            reader = threading.Thread(target=follow, args=(proc, log_path), daemon=True)
            reader.start()
            readers.append(reader)
        while any(r.is_alive() for r in readers):
            for r in readers:
                r.join(timeout=0.5)
        code = lanes.exit_code([p.wait() for p in procs])
    except BaseException:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in procs:
            try:
                proc.wait(timeout=180)
            except subprocess.TimeoutExpired:
                proc.kill()
        raise
    if len(plan) > 1:
        lanes.merge_junit(junits, run_dir / "junit.xml")
        with open(run_dir / "pytest.log", "w") as joined:
            for n, (lane, log_path) in enumerate(zip(plan, logs, strict=True), 1):
                joined.write(f"===== lane {n} ({clusters[n - 1]}): {', '.join(lane)} =====\n")
                joined.write(log_path.read_text() if log_path.exists() else "")
    found = [
        (str(path.parent.relative_to(run_dir) / "index.html"), json.loads(path.read_text()))
        for path in sorted((run_dir / "suites").glob("*/report.json"))
    ]
    verdict = aggregate(names, found, code, allow_skip, platform, allowed)
    suites_report, outcome = verdict["suites"], verdict["outcome"]
    finished = rundir.utc_now()
    environment = next((s["environment"] for s in suites_report if s.get("environment")), None)
    environment = environment or rundir.environment(platform, overlay, {})
    report = {
        "kind": "run",
        "started": started.isoformat(),
        "finished": finished.isoformat(),
        "duration_s": round(time.monotonic() - t, 3),
        "environment": environment,
        "outcome": outcome,
        "pytest_exit_code": code,
        "lanes": [{"cluster": c, "suites": lane} for c, lane in zip(clusters, plan, strict=True)],
        "not_run": verdict["not_run"],
        "unrun_checks": verdict["unrun_checks"],
        "unrun_differences": verdict["unrun_differences"],
        "allow_skip": allow_skip,
        "suites": suites_report,
        "counts": verdict["counts"],
        "tightest": verdict["tightest"],
        "slowest": verdict["slowest"],
    }
    rundir.write_report(run_dir, report, [])
    html.write_run_html(run_dir, report)
    return GateResult(run_dir, outcome, report)
