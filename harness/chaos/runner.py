"""Run chaostoolkit experiments against a platform and judge them.

Each experiment runs through chaostoolkit-lib's `run_experiment` with rollbacks
always played; whatever the nemesis still holds is healed afterwards (also after
Ctrl-C or a crash of the experiment). The journal, the histories and the
checkers' figures land in reports/<timestamp>-chaos-<experiment>/.

    python -m harness.chaos.runner [--cluster NAME] [--overlay kind] scenarios/chaos/*.yaml
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from harness import slo as slo_file
from harness.chaos import session as sessions
from harness.chaos.report import write_experiment_report, write_summary
from harness.chaos.result import ExperimentResult
from harness.chaos.verdict import Expectations, judge
from harness.errors import HarnessError
from harness.platforms.base import Platform

CATALOGUE = Path(__file__).resolve().parents[2] / "scenarios" / "chaos"


def catalogue(directory: Path = CATALOGUE) -> list[Path]:
    return sorted(directory.glob("*.yaml"))


def load(path: Path) -> dict[str, Any]:
    """An experiment file, checked for what the runner needs; bad files are one clear error."""
    try:
        experiment = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise HarnessError(f"experiment file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise HarnessError(f"experiment file {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(experiment, dict) or not experiment.get("title") or not isinstance(experiment.get("method"), list):
        raise HarnessError(f"experiment file {path} needs a 'title' and a 'method' list (chaostoolkit format)")
    try:
        Expectations.of(experiment)
    except (TypeError, ValueError) as exc:
        raise HarnessError(f"experiment file {path}: bad redis-harness extension: {exc}") from None
    return experiment


def configuration_for(platform: Platform) -> dict[str, Any]:
    """The experiment's `configuration`: the platform by name and the options that rebuild it."""
    return {"platform": platform.name, **{k: v for k, v in platform.options().items() if v is not None}}


def run_one(path: Path, platform: Platform, reports_root: Path | None = None) -> ExperimentResult:
    """Run one experiment file against a live platform; heal and stop everything afterwards."""
    from chaoslib.experiment import run_experiment

    experiment = load(path)
    expect = Expectations.of(experiment)
    slo = slo_file.load()
    configuration = {
        **(experiment.get("configuration") or {}),
        **configuration_for(platform),
    }
    experiment["configuration"] = configuration
    sessions.register(platform, configuration)
    session = sessions.session(configuration)
    started = time.monotonic()
    interrupted = False
    try:
        journal = run_experiment(experiment, settings={"runtime": {"rollbacks": {"strategy": "always"}}})
        interrupted = journal.get("status") == "interrupted"
    finally:
        try:
            session.nemesis.heal_all()
        finally:
            if session.recording is not None and session.recording.stopped_at is None:
                session.recording.stop()
            sessions.finish(configuration)
    if interrupted:
        raise KeyboardInterrupt  # chaostoolkit swallowed Ctrl-C after its rollbacks
    result = ExperimentResult(
        name=Path(path).stem,
        title=experiment["title"],
        journal=journal,
        figures=session.figures.as_dict() if session.figures else {},
        verdict=judge(journal, session.figures, expect, slo),
        expectations=expect,
        duration_s=round(time.monotonic() - started, 2),
        nemesis_log=session.nemesis.log,
    )
    result.run_dir = write_experiment_report(result, platform, session.recording, reports_root)
    return result


def run_in_turn(path: Path, platform: Platform, reports_root: Path | None = None) -> ExperimentResult:
    """One experiment of a series: it starts from a healthy cluster with its roles where the reference
    puts them (an earlier failover moved them), and a failed one leaves a fresh cluster behind, so
    that what it broke does not decide the next experiment."""
    from harness.nemesis import Nemesis

    Nemesis(platform).restore_placement(timeout=120, strict=False)  # waits until healthy first
    result = run_one(path, platform, reports_root)
    if not result.verdict.passed:
        platform.down()
        platform.up()
    return result


def run_catalogue(paths: list[Path], platform: Platform, reports_root: Path | None = None) -> tuple[list[ExperimentResult], Path]:
    results = [run_in_turn(path, platform, reports_root) for path in paths]
    return results, write_summary(results, platform, reports_root)


def main(argv: list[str] | None = None) -> int:
    from harness.platforms import registry

    parser = argparse.ArgumentParser(prog="python -m harness.chaos.runner", description=__doc__.splitlines()[0])
    parser.add_argument("experiments", nargs="*", type=Path, help="experiment files (default: the whole catalogue)")
    parser.add_argument("--platform", default="local")
    parser.add_argument("--overlay", default="kind")
    parser.add_argument("--cluster", default="rh-chaos")
    parser.add_argument("--subnet", default="198.18.40.0/24")
    parser.add_argument("--reports", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        paths = args.experiments or catalogue()
        for path in paths:
            load(path)
        platform = registry.from_config(
            {"platform": args.platform, "overlay": args.overlay, "cluster": args.cluster, "subnet": args.subnet}
        )
        platform.up()
        try:
            results, summary = run_catalogue(paths, platform, args.reports)
        finally:
            platform.down()
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: faults healed, cluster removed", file=sys.stderr)
        return 130
    for r in results:
        print(
            f"{r.outcome:4}  {r.name:28} {json.dumps({k: r.figures.get(k) for k in ('recovery_s', 'lost_waited', 'lost_unwaited')})}"
        )
    print(f"summary: {summary / 'index.html'}")
    return 0 if all(r.verdict.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
