"""Chaos reports: one run directory per experiment (journal, histories, timeline, verdict)
and a summary table across experiments (reports/<timestamp>-chaos/)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import slo as slo_file
from harness.chaos.result import ExperimentResult
from harness.report import rundir, style, timeline
from harness.report.outcomes import NOT_RUN

if TYPE_CHECKING:
    from harness.platforms.base import Platform
    from harness.recording import Recording

COLUMNS = (
    ("recovery_s", "recovery s"),
    ("conformance_limit_s", "its configuration's limit s"),
    ("unavailable_s", "longest outage s"),
    ("acknowledged", "acknowledged"),
    ("lost_waited", "lost WAITed"),
    ("lost_unwaited", "lost un-WAITed"),
    ("unexpected", "unexpected"),
    ("recovered", "recovered (info, present)"),
    ("fail_ops", "failed writes"),
    ("info_ops", "unknown writes"),
)

EXPERIMENT = """{{ head(r.name ~ " — " ~ r.outcome) }}<body class="wide">
<h1>{{ r.title }}: <span class="{{ r.outcome }}">{{ r.outcome }}</span></h1>
<p>{{ report.started }} ({{ "%.1f"|format(report.duration_s) }} s) on {{ report.environment.platform }}
({{ report.environment.overlay }}); Redis {{ report.environment.versions.get("redis_server", "?") }}.
chaostoolkit status: <b>{{ report.journal_status }}</b>{% if report.deviated %}, steady state <b>deviated</b>{% endif %}.</p>
{% if r.verdict.reasons %}<h2 class="fail">why it failed</h2><ul>{% for x in r.verdict.reasons %}<li>{{ x }}</li>{% endfor %}</ul>{% endif %}
{% if r.verdict.notes %}<h2>to note</h2><ul>{% for x in r.verdict.notes %}<li>{{ x }}</li>{% endfor %}</ul>{% endif %}
<table><tr>{% for k, label in columns %}<th>{{ label }}</th>{% endfor %}</tr>
<tr>{% for k, label in columns %}<td>{{ r.figures.get(k, "—") }}</td>{% endfor %}</tr></table>
{% if r.verdict.margins %}<h2>each figure beside its limit</h2><table><tr><th>check</th><th>figure</th><th>limit</th><th>margin</th></tr>
{% for m in r.verdict.margins %}<tr><td>{{ m.check }}</td><td>{{ m.figure }}</td><td>{{ m.limit }}</td>
<td>{{ "%+g"|format(m.margin) }}</td></tr>{% endfor %}</table>{% endif %}
{% if plot %}<img src="{{ plot }}" alt="timeline">{% endif %}
<h2>faults and heals</h2><pre>{{ nemesis }}</pre>
<h2>every figure</h2><pre>{{ figures }}</pre>
<p>Evidence: <a href="journal.json">chaostoolkit journal</a>, <a href="history.jsonl">history</a>,
<a href="probe.jsonl">probe history</a>, <a href="report.json">report.json</a>.</p>
</body></html>
"""

SUMMARY = """{{ head("chaos — " ~ report.outcome) }}<body class="wide">
<h1>chaos: <span class="{{ report.outcome }}">{{ report.outcome }}</span></h1>
<p>{{ report.started }} ({{ "%.0f"|format(report.duration_s) }} s) on {{ report.environment.platform }}
({{ report.environment.overlay }}); Redis {{ report.environment.versions.get("redis_server", "?") }}.</p>
<table><tr><th>experiment</th><th>verdict</th>{% for k, label in columns %}<th>{{ label }}</th>{% endfor %}<th>notes</th></tr>
{% for e in report.experiments %}<tr><td><a href="{{ e.link }}">{{ e.name }}</a></td><td class="{{ e.outcome }}">{{ e.outcome }}</td>
{% for k, label in columns %}<td>{{ e.figures.get(k, "—") }}</td>{% endfor %}<td>{{ (e.reasons + e.notes)|join("; ") }}</td></tr>{% endfor %}
</table></body></html>
"""


def _env(platform: Platform) -> dict[str, Any]:
    try:
        versions = platform.versions()
    except Exception:
        versions = {}
    return rundir.environment(platform.name, platform.overlay, versions)


def _secrets(platform: Platform) -> list[str]:
    try:
        return list(platform.credentials().passwords.values())
    except Exception:
        return []


def write_experiment_report(result: ExperimentResult, platform: Platform, recording: Recording | None, root: Path | None) -> Path:
    run_dir = rundir.new_run_dir(f"chaos-{result.name}", root)
    secrets = _secrets(platform)
    (run_dir / "journal.json").write_text(json.dumps(rundir.scrub(result.journal, secrets), indent=2, default=str))
    plot = None
    if recording is not None:
        recording.history.write_jsonl(run_dir / "history.jsonl")
        recording.probe_history.write_jsonl(run_dir / "probe.jsonl")
        spans = [
            {**a, "from": a["from"] - recording.history.wall_t0, "to": None if a["to"] is None else a["to"] - recording.history.wall_t0}
            for a in result.alerts
        ]
        logged = [{**e, "t": e["wall"] - recording.history.wall_t0} for e in result.log_events]
        plot = timeline.plot(
            recording.history, run_dir / "timeline.png", result.title, recording.probe_history, latency=True, alerts=spans,
            log_events=logged,
        ).name  # fmt: skip
    report = {
        "kind": f"chaos-{result.name}",
        "started": result.journal.get("start"),
        "finished": result.journal.get("end"),
        "duration_s": result.duration_s,
        "environment": _env(platform),
        "outcome": result.outcome,
        "journal_status": result.journal.get("status"),
        "deviated": bool(result.journal.get("deviated")),
        "reasons": result.verdict.reasons,
        "notes": result.verdict.notes,
        "expectations": result.expectations.__dict__,
        "figures": result.figures,
        "nemesis": result.nemesis_log,
        "alerts": result.alerts,
        "log_events": result.log_events,
        "slo": slo_file.load().raw,
    }
    rundir.write_report(run_dir, report, secrets)
    html = style.render(
        EXPERIMENT,
        r=result,
        report=report,
        columns=COLUMNS,
        plot=plot,
        nemesis=json.dumps(result.nemesis_log, indent=2, default=str),
        figures=json.dumps(rundir.scrub(result.figures, secrets), indent=2, default=str),
    )
    (run_dir / "index.html").write_text(html)
    return run_dir


def summary_rows(results: list[ExperimentResult], base: Path) -> list[dict[str, Any]]:
    return [
        {
            "name": r.name,
            "outcome": r.outcome,
            "figures": {k: r.figures.get(k) for k, _ in COLUMNS},
            "reasons": r.verdict.reasons,
            "notes": r.verdict.notes,
            "duration_s": r.duration_s,
            "link": f"../{r.run_dir.name}/index.html" if r.run_dir else "",
        }
        for r in results
    ]


def summary_outcome(results: list[ExperimentResult]) -> str:
    """fail when an experiment failed; else not run when one could not be applied (never a pass); else pass."""
    outcomes = {r.outcome for r in results}
    return "fail" if "fail" in outcomes else (NOT_RUN if NOT_RUN in outcomes else "pass")


def write_summary(results: list[ExperimentResult], platform: Platform, root: Path | None, started: Any = None) -> Path:
    run_dir = rundir.new_run_dir("chaos", root, started)
    report = {
        "kind": "chaos",
        "started": (started or rundir.utc_now()).isoformat(),
        "duration_s": sum(r.duration_s for r in results),
        "environment": _env(platform),
        "outcome": summary_outcome(results),
        "experiments": summary_rows(results, run_dir),
    }
    rundir.write_report(run_dir, report, _secrets(platform))
    (run_dir / "index.html").write_text(style.render(SUMMARY, report=report, columns=COLUMNS))
    return run_dir
