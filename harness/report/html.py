"""index.html of a run directory: a summary table per suite, each test's figures, plots and failures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, select_autoescape

TEMPLATE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{{ report.kind }} — {{ report.outcome }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em; max-width: 1100px; }
table { border-collapse: collapse; margin: 1em 0; } td, th { border: 1px solid #ccc; padding: 4px 8px; text-align: left; }
.pass { color: #17803d; } .fail, .error { color: #b3261e; font-weight: bold; } .skip { color: #777; }
pre { background: #f6f6f6; padding: 8px; overflow-x: auto; font-size: 12px; }
</style></head><body>
<h1>{{ report.kind }}: <span class="{{ report.outcome }}">{{ report.outcome }}</span></h1>
<p>{{ report.started }} — {{ report.finished }} ({{ "%.1f"|format(report.duration_s) }} s) on {{ report.environment.platform }}
({{ report.environment.overlay }}); Redis {{ report.environment.versions.get("redis_server", "?") }},
image {{ report.environment.versions.get("image", "?") }}.</p>
<table><tr><th>test</th><th>outcome</th><th>seconds</th><th>key figures</th></tr>
{% for t in report.tests %}<tr><td><a href="#{{ t.name }}">{{ t.name }}</a></td><td class="{{ t.outcome }}">{{ t.outcome }}</td>
<td>{{ "%.1f"|format(t.duration_s) }}</td><td>{{ t.headline }}</td></tr>{% endfor %}
</table>
{% for t in report.tests %}<h2 id="{{ t.name }}">{{ t.name }} <span class="{{ t.outcome }}">{{ t.outcome }}</span></h2>
{% for plot in t.plots %}<img src="{{ plot }}" alt="timeline of {{ t.name }}">{% endfor %}
{% if t.figures %}<pre>{{ t.figures_text }}</pre>{% endif %}
{% if t.failure %}<h3>failure</h3><pre>{{ t.failure }}</pre>{% endif %}
{% endfor %}
</body></html>
"""


def headline(figures: dict[str, Any]) -> str:
    keys = ("recovery_s", "lost_waited", "lost_unwaited", "lost", "unavailable_s", "ok_fraction", "loss_window_s")
    parts = [f"{k}={figures[k]:.3g}" if isinstance(figures[k], float) else f"{k}={figures[k]}" for k in keys if k in figures]
    return ", ".join(parts)


def write_html(run_dir: Path, report: dict[str, Any]) -> Path:
    import json

    for t in report["tests"]:
        t["headline"] = headline(t.get("figures", {}))
        t["figures_text"] = json.dumps(t.get("figures", {}), indent=2, default=str)
    env = Environment(autoescape=select_autoescape(default=True))
    path = run_dir / "index.html"
    path.write_text(env.from_string(TEMPLATE).render(report=report))
    return path


RUN_TEMPLATE = """<!doctype html>
<html><head><meta charset="utf-8"><title>gate — {{ report.outcome }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em; max-width: 1100px; }
table { border-collapse: collapse; margin: 1em 0; } td, th { border: 1px solid #ccc; padding: 4px 8px; text-align: left; }
.pass, .passed { color: #17803d; } .fail, .failed, .error { color: #b3261e; font-weight: bold; }
pre { background: #f6f6f6; padding: 8px; overflow-x: auto; font-size: 12px; }
</style></head><body>
<h1>gate: <span class="{{ report.outcome }}">{{ report.outcome }}</span></h1>
<p>{{ report.started }} ({{ "%.0f"|format(report.duration_s) }} s) on {{ report.environment.platform }}
({{ report.environment.overlay }}); Redis {{ report.environment.versions.get("redis_server", "?") }},
image {{ report.environment.versions.get("image", "?") }}.</p>
<table><tr><th>suite</th><th>outcome</th><th>passed</th><th>failed</th><th>error</th><th>skipped</th><th>seconds</th></tr>
{% for s in report.suites %}<tr><td><a href="{{ s.index }}">{{ s.suite }}</a></td><td class="{{ s.outcome }}">{{ s.outcome }}</td>
<td>{{ s.counts.passed }}</td><td>{{ s.counts.failed }}</td><td>{{ s.counts.error }}</td><td>{{ s.counts.skipped }}</td>
<td>{{ "%.0f"|format(s.duration_s) }}</td></tr>{% endfor %}
</table>
{% for s in report.suites %}{% for f in s.failures %}<h2 class="fail">{{ s.suite }}: {{ f.test }} ({{ f.outcome }})</h2>
<pre>{{ f.failure }}</pre>{% endfor %}{% endfor %}
</body></html>
"""


def write_run_html(run_dir: Path, report: dict[str, Any]) -> Path:
    path = run_dir / "index.html"
    path.write_text(Environment(autoescape=select_autoescape(default=True)).from_string(RUN_TEMPLATE).render(report=report))
    return path
