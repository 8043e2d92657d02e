"""pytest plugin: every gating suite (a module under scenarios/) writes its run directory
reports/<UTC timestamp>-<suite>/ with report.json, junit.xml (pytest's own) and index.html.

Tests add evidence through the `evidence` fixture: figures (checker results, timings)
and histories (written as JSON lines, plotted as timelines).

A test (or one of its fixtures) that raises harness.errors.NotSupported is skipped with the
error's message as the reason and recorded as "not_supported": it did not run. A suite none of
whose tests ran is "not run", never "pass" (harness.report.outcomes)."""

from __future__ import annotations

import shutil
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness.errors import NotSupported
from harness.history import History
from harness.report import html, outcomes, rundir, timeline

SCENARIOS = "scenarios"
RECORDER = pytest.StashKey["Recorder"]()


@dataclass
class TestRecord:
    name: str
    outcome: str = "pending"
    duration_s: float = 0.0
    # seconds in pytest's set-up (fixtures: a cluster stood up or made healthy), the test's call, its tear-down
    phases: dict[str, float] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    plots: list[str] = field(default_factory=list)
    failure: str | None = None
    reason: str | None = None  # why it was skipped or not supported
    # the failures of earlier attempts, taken again because only the instrument had failed
    # (harness.judgement.Inconclusive; pytest-rerunfailures): the outcome is the last attempt's
    retaken: list[str] = field(default_factory=list)


@dataclass
class SuiteRun:
    name: str
    root: Path | None
    started: Any = field(default_factory=rundir.utc_now)
    finished: Any = None
    tests: dict[str, TestRecord] = field(default_factory=dict)
    _dir: Path | None = None

    @property
    def run_dir(self) -> Path:
        if self._dir is None:
            self._dir = rundir.new_run_dir(self.name, self.root, self.started)
        return self._dir


class Evidence:
    """What one test leaves in its suite's run directory."""

    def __init__(self, suite: SuiteRun, record: TestRecord):
        self.suite, self.record = suite, record

    def figure(self, **figures: Any) -> None:
        self.record.figures.update(figures)

    def path(self, name: str) -> Path:
        return self.suite.run_dir / f"{self.record.name}-{name}"

    def history(self, name: str, history: History, probe: History | None = None) -> None:
        history.write_jsonl(self.path(f"{name}.jsonl"))
        if probe is not None:
            probe.write_jsonl(self.path(f"{name}-probe.jsonl"))
        png = timeline.plot(history, self.path(f"{name}.png"), f"{self.record.name}: {name}", probe)
        self.record.plots.append(png.name)


class Recorder:
    def __init__(self, config: pytest.Config):
        self.config = config
        self.root = Path(config.getoption("--reports")) if config.getoption("--reports") else None
        self.suites: dict[str, SuiteRun] = {}
        self.environment: dict[str, Any] = {
            "platform": config.getoption("--platform", "local"),
            "overlay": config.getoption("--overlay", "kind"),
            "versions": {},
        }
        self.secrets: list[str] = []

    def suite_of(self, item: pytest.Item) -> SuiteRun | None:
        path = Path(str(item.fspath))
        if path.parent.name != SCENARIOS:
            return None
        name = path.stem.removeprefix("test_")
        return self.suites.setdefault(name, SuiteRun(name, self.root))

    def record_of(self, item: pytest.Item) -> tuple[SuiteRun, TestRecord] | None:
        suite = self.suite_of(item)
        if suite is None:
            return None
        if not suite.tests:
            suite.started = rundir.utc_now()  # the suite starts with its first test, not at collection
        return suite, suite.tests.setdefault(item.nodeid, TestRecord(item.name))

    def finish(self) -> None:
        from harness import slo

        try:
            slos = slo.load().raw
        except Exception as exc:  # the report still gets written
            slos = {"error": str(exc)}
        junit = self.config.getoption("xmlpath", None)
        for suite in self.suites.values():
            tests = list(suite.tests.values())
            if not tests:
                continue
            finished = suite.finished or rundir.utc_now()
            records = [t.__dict__ for t in tests]
            allow_skip = bool(self.config.getoption("--allow-skip", False))
            outcome, why = outcomes.suite_outcome(records, allow_skip)
            env = rundir.environment(self.environment["platform"], self.environment["overlay"], self.environment["versions"])
            report = {
                "kind": suite.name,
                "started": suite.started.isoformat(),
                "finished": finished.isoformat(),
                "duration_s": (finished - suite.started).total_seconds(),
                "environment": env,
                "slo": slos,
                "outcome": outcome,
                "not_run": why if outcome == outcomes.NOT_RUN else None,
                "why": why,
                "allow_skip": allow_skip,
                "counts": outcomes.counts(t.outcome for t in tests),
                "tests": records,
            }
            rundir.write_report(suite.run_dir, report, self.secrets)
            html.write_html(suite.run_dir, rundir.scrub(report, self.secrets))
            # pytest-xdist's workers write no junit.xml (the controller does, after them)
            if junit and Path(junit).is_file() and not hasattr(self.config, "workerinput"):
                shutil.copy(junit, suite.run_dir / "junit.xml")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("redis-harness")
    group.addoption("--reports", default=None, help="reports directory (default: reports/)")
    group.addoption(
        "--allow-skip", action="store_true", default=False, help="a skipped test does not fail its suite (exploratory runs)"
    )


def _interrupt(signum, frame):  # noqa: ARG001
    raise KeyboardInterrupt


def pytest_configure(config: pytest.Config) -> None:
    # SIGTERM (a CI timeout, `kill`) tears clusters down like Ctrl-C instead of leaving them behind.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    config.stash[RECORDER] = Recorder(config)
    if not config.getoption("xmlpath", None):
        # pytest's own junit.xml, copied into every suite's run directory at the end
        config.option.xmlpath = str(Path(config.rootpath) / ".pytest-junit.xml")


def _not_supported_is_a_skip(item: pytest.Item):
    try:
        return (yield)
    except NotSupported as exc:
        # reported at the test's own location, like a skip mark
        raise pytest.skip.Exception(str(exc), _use_item_location=True) from exc


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    return (yield from _not_supported_is_a_skip(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    return (yield from _not_supported_is_a_skip(item))


def _skip_reason(report: pytest.TestReport) -> str | None:
    if isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and call.excinfo is not None and isinstance(call.excinfo.value.__cause__, NotSupported):
        report.not_supported = True
    found = item.config.stash[RECORDER].record_of(item)
    if found is None:
        return
    suite, rec = found
    suite.finished = rundir.utc_now()
    if report.when == "setup" and getattr(item, "execution_count", 1) > len(rec.retaken) + 1:
        rec.retaken.append(rec.failure or rec.outcome)
        rec.outcome, rec.failure = "pending", None
    rec.phases[report.when] = round(rec.phases.get(report.when, 0.0) + report.duration, 3)
    if report.when == "call" or (report.when == "setup" and not report.passed):
        rec.duration_s += report.duration
        if report.skipped:
            rec.outcome = "not_supported" if getattr(report, "not_supported", False) else "skipped"
            rec.reason = _skip_reason(report)
        elif report.when == "setup" and report.failed:
            rec.outcome = "error"
        else:
            rec.outcome = "passed" if report.passed else "failed"
        if report.failed:
            rec.failure = report.longreprtext[-6000:]
    elif report.when == "teardown" and report.failed and rec.outcome == "passed":
        rec.outcome, rec.failure = "error", report.longreprtext[-6000:]


@pytest.fixture
def evidence(request: pytest.FixtureRequest) -> Evidence:
    found = request.config.stash[RECORDER].record_of(request.node)
    if found is None:
        suite = SuiteRun("adhoc", request.config.stash[RECORDER].root)
        found = (suite, TestRecord(request.node.name))
    started = time.monotonic()
    ev = Evidence(*found)
    yield ev
    ev.figure(test_s=round(time.monotonic() - started, 3))


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    session.config.stash[RECORDER].finish()


def note_platform(config: pytest.Config, platform) -> None:
    """Called by the platform fixture: versions for the report, passwords to scrub."""
    recorder = config.stash[RECORDER]
    try:
        recorder.environment["versions"] = platform.versions()
        recorder.secrets = list(platform.credentials().passwords.values())
    except Exception:
        pass
