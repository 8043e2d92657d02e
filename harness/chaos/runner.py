"""Run chaostoolkit experiments against a platform and judge them.

Each experiment runs through chaostoolkit-lib's `run_experiment` with rollbacks
always played; whatever the nemesis still holds is healed afterwards (also after
Ctrl-C or a crash of the experiment). The journal, the histories and the
checkers' figures land in reports/<timestamp>-chaos-<experiment>/.

    redis-harness chaos [--platform local|kind|kubernetes] [EXPERIMENT …]
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml

from harness import slo as slo_file
from harness.chaos import session as sessions
from harness.chaos.alerts import AlertExpectation, AlertWatcher, fault_and_heal, judge_alerts, wait_until_quiet
from harness.chaos.report import write_experiment_report, write_summary
from harness.chaos.result import ExperimentResult
from harness.chaos.verdict import Expectations, Verdict, judge, not_supported
from harness.errors import HarnessError
from harness.platforms.base import CAPABILITIES, Monitoring, Platform

CATALOGUE = Path(__file__).resolve().parents[2] / "scenarios" / "chaos"
# Experiments whose fault only Kubernetes can apply (chaostoolkit-kubernetes' actions): in the
# catalogue of kind and kubernetes, not of the local platform.
KUBERNETES_ONLY = CATALOGUE / "kubernetes"
ON_KUBERNETES = ("kind", "kubernetes")


def catalogue(directory: Path = CATALOGUE, platform: str = "local") -> list[Path]:
    extra = sorted(KUBERNETES_ONLY.glob("*.yaml")) if directory == CATALOGUE and platform in ON_KUBERNETES else []
    return sorted(directory.glob("*.yaml")) + extra


def resolve(names: list[str], platform: str = "local") -> list[Path]:
    """Experiments by catalogue name (`kill-master`) or file; none named: the platform's whole catalogue.
    Each is loaded, so a bad one (or one the platform cannot run) is refused before anything starts."""
    everything = {p.stem: p for p in catalogue(platform="kubernetes")}
    paths = []
    for name in names:
        if "/" in name or name.endswith((".yaml", ".yml")):
            paths.append(Path(name))
        elif name in everything:
            paths.append(everything[name])
        else:
            known = ", ".join(p.stem for p in catalogue(platform=platform))
            raise HarnessError(f"no experiment named '{name}' in scenarios/chaos: choose one of {known}, or give a file")
    if not paths:  # the platform's catalogue: what its faults can be applied on
        return [path for path in catalogue(platform=platform) if runs_on(path, platform)]
    for path in paths:
        if not runs_on(path, platform):
            only = ", ".join(Expectations.of(load(path)).platforms or [])
            raise HarnessError(f"experiment {path.stem} runs on {only} only, not on the {platform} platform")
    return paths


def runs_on(path: Path, platform: str) -> bool:
    """Whether the experiment's fault can be applied on `platform` (it names none: every platform)."""
    platforms = Expectations.of(load(path)).platforms
    return platforms is None or platform in platforms


def catalogue_names(paths: list[Path]) -> list[str]:
    """The catalogue names of these experiments, for a run in the cluster (the harness image carries
    scenarios/chaos, not the caller's files)."""
    names = []
    for path in paths:
        if path.resolve().parent not in (CATALOGUE.resolve(), KUBERNETES_ONLY.resolve()):
            raise HarnessError(
                f"{path} is not in scenarios/chaos: on kind and kubernetes the experiments run from the harness "
                "image, which carries the catalogue; add the file there and build the image"
            )
        names.append(path.stem)
    return names


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
    """The experiment's `configuration`: the platform by name, the options that rebuild it, and the
    reference's namespace (what chaostoolkit-kubernetes' actions take)."""
    from harness import reference

    options = {k: v for k, v in platform.options().items() if v is not None}
    return {"platform": platform.name, **options, "namespace": reference.render(platform.overlay).namespace()}


def run_one(path: Path, platform: Platform, reports_root: Path | None = None) -> ExperimentResult:
    """Run one experiment file against a live platform; heal and stop everything afterwards."""
    from chaoslib.experiment import run_experiment

    from harness.nemesis import wait_out_vote_window

    # Its actions fault a platform object of their own, which knows no vote window this one opened.
    wait_out_vote_window(platform)

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
    watch = AlertWatch.start(platform, AlertExpectation.parse(expect.alerts))
    if watch.watcher is not None:
        session.fired_since = watch.fired_since
    started = time.monotonic()
    interrupted = False
    try:
        journal = run_experiment(
            experiment, settings={"runtime": {"rollbacks": {"strategy": "always"}}}, event_handlers=[watch_from_the_method(watch)]
        )
        interrupted = journal.get("status") == "interrupted"
    finally:
        try:
            session.nemesis.heal_all()
        finally:
            if session.recording is not None and session.recording.stopped_at is None:
                session.recording.stop()
            sessions.finish(configuration)
            alert_reasons, alert_figures, alert_timeline = watch.finish(session.nemesis.log)
    if interrupted:
        raise KeyboardInterrupt  # chaostoolkit swallowed Ctrl-C after its rollbacks
    figures = session.figures.as_dict() if session.figures else {}
    if watch.expected:
        figures["alerts"] = alert_figures
    result = ExperimentResult(
        name=Path(path).stem,
        title=experiment["title"],
        journal=journal,
        figures=figures,
        verdict=judge(journal, session.figures, expect, slo, alert_reasons),
        expectations=expect,
        duration_s=round(time.monotonic() - started, 2),
        nemesis_log=session.nemesis.log,
        alerts=alert_timeline,
    )
    result.not_run = not_supported(journal)
    if result.not_run:
        result.verdict = Verdict(False, [f"not run: {result.not_run}"])
    if watch.note:
        result.verdict.notes.append(watch.note)
    result.log_events = failover_story(platform, session.nemesis.log)
    result.run_dir = write_experiment_report(result, platform, session.recording, reports_root)
    return result


def failover_story(platform: Platform, nemesis_log: list[dict[str, Any]], before_s: float = 5.0) -> list[dict[str, Any]]:
    """The Redis log lines that tell a failover's story (a node marked failing, FAIL received, the
    election, cluster state changes), from every pod's log, from shortly before the fault on: what a
    log pipeline would index, on the report's timeline."""
    from harness import failover_timeline

    fault_at, _healed = fault_and_heal(nemesis_log)
    if fault_at is None:
        return []
    events = []
    for pod in platform.pods():
        try:
            text = platform.logs(pod.name)
        except HarnessError:
            continue
        events += [e for e in failover_timeline.parse(pod.name, text) if e.wall >= fault_at - before_s]
    return [{"wall": e.wall, "pod": e.pod, "event": e.name, "detail": list(e.detail)} for e in sorted(events, key=lambda e: e.wall)]


def watch_from_the_method(watch: AlertWatch):
    """A chaostoolkit run event handler that begins the alert watch when the method starts, which
    chaostoolkit does only once the steady state has held."""
    from chaoslib.run import RunEventHandler  # here, as run_one imports chaoslib: only a run needs it

    class WatchFromTheMethod(RunEventHandler):
        def start_method(self, experiment: dict[str, Any]) -> None:  # noqa: ARG002 - chaostoolkit's signature
            watch.begin()

    return WatchFromTheMethod()


class AlertWatch:
    """The experiment's expected alerts, watched on the platform's monitoring for its duration: the
    stack is started before the experiment and stopped after it; the watch itself begins when the
    method does (`begin`, once the steady state has held), after waiting until none of them fires.
    An experiment whose steady state fails first runs no method and waits for no alert (a cluster
    without replicas held it 30 s for RedisMasterWithoutReplica, which fired all along)."""

    def __init__(self, expected: list[AlertExpectation], stack=None, note: str = ""):
        self.expected, self.stack, self.note = expected, stack, note
        self.watcher = AlertWatcher(stack) if stack is not None else None
        self.failed = ""

    @classmethod
    def start(cls, platform: Platform, expected: list[AlertExpectation]) -> AlertWatch:
        if not expected:
            return cls([])
        if not isinstance(platform, Monitoring):
            return cls([], note=f"alerts not judged: {CAPABILITIES[Monitoring]} is not supported on the {platform.name} platform")
        return cls(expected, platform.monitoring())

    def begin(self) -> None:
        """Wait until none of the expected alerts fires (an earlier fault's), then watch."""
        if self.watcher is None or self.watcher.is_alive():
            return
        limits = {e.alert: e.resolves_within_s for e in self.expected if e.resolves_within_s is not None}
        try:
            still = wait_until_quiet(self.stack, [e.alert for e in self.expected], resolves_within=limits)
        except Exception as exc:  # chaostoolkit would swallow it: kept for the verdict instead
            self.failed = f"the alert watch could not begin: {exc}"
            return
        if still:
            self.note = f"{', '.join(still)} still fired from before the fault; only what fired after it counts"
        self.watcher.start()

    def fired_since(self, since: float) -> set[str]:
        """The alerts that began firing at or after `since` (wall time) and have reached the receiver
        since, as the watch has seen them so far: what the verdict asks of each within its time."""
        if self.watcher is None:
            return set()
        fired = {span["alert"] for span in self.watcher.timeline() if span["from"] >= since}
        delivered = {a["labels"].get("alertname", "") for d in self.stack.deliveries() if d.received >= since for a in d.alerts
                     if a.get("status") == "firing"}  # fmt: skip
        return fired & delivered

    def finish(self, nemesis_log: list[dict[str, Any]]) -> tuple[list[str], dict[str, Any], list[dict[str, Any]]]:
        """(reasons, figures per alert, the alert timeline); the stack is stopped."""
        if self.watcher is None:
            return [], {}, []
        try:
            fault_at, healed_at = fault_and_heal(nemesis_log)
            timeline = self.watcher.finish(self.expected, healed_at) if self.watcher.is_alive() else []
            deliveries = [(d.received, a["labels"].get("alertname", ""), a.get("status", "")) for d in self.stack.deliveries() for a in d.alerts]
            reasons, figures = judge_alerts(self.expected, timeline, deliveries, fault_at, healed_at)
            return [self.failed] if self.failed else reasons, figures, timeline
        finally:
            self.stack.stop()


def run_in_turn(path: Path, platform: Platform, reports_root: Path | None = None) -> ExperimentResult:
    """One experiment of a series: it starts from a healthy cluster with its roles where the reference
    puts them (an earlier failover moved them), and a failed one leaves a fresh cluster behind, so
    that what it broke does not decide the next experiment. (Inside the cluster, where the runner pod
    lives in the reference's namespace, the next experiment's repair and health wait stand in.)"""
    from harness.nemesis import Nemesis

    Nemesis(platform).restore_placement(timeout=120, strict=False)  # waits until healthy first
    result = run_one(path, platform, reports_root)
    if not result.verdict.passed and platform.stands_up_from_here():
        platform.down()
        platform.up()
    return result


def run_catalogue(paths: list[Path], platform: Platform, reports_root: Path | None = None) -> tuple[list[ExperimentResult], Path]:
    results = [run_in_turn(path, platform, reports_root) for path in paths]
    return results, write_summary(results, platform, reports_root)
