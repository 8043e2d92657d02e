"""index.html of a run directory: a summary table per suite, each test's figures, plots and failures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.report import style

TEMPLATE = """{{ head(report.kind ~ " — " ~ report.outcome) }}<body>
<h1>{{ report.kind }}: <span class="{{ report.outcome|css }}">{{ report.outcome }}</span></h1>
<p>{{ report.started }} — {{ report.finished }} ({{ "%.1f"|format(report.duration_s) }} s) on {{ report.environment.platform }}
({{ report.environment.overlay }}); Redis {{ report.environment.versions.get("redis_server", "?") }},
image {{ report.environment.versions.get("image", "?") }}.</p>
{% if report.not_run %}<p class="not-run">not run: {{ report.not_run }}</p>
{% elif report.outcome == "fail" and report.why %}<p class="fail">{{ report.why }}</p>{% endif %}
{% if report.allow_skip %}<p class="not-run">--allow-skip: skipped tests did not fail this suite</p>{% endif %}
<table><tr><th>test</th><th>outcome</th><th>seconds</th><th>key figures</th></tr>
{% for t in report.tests %}<tr><td><a href="#{{ t.name }}">{{ t.name }}</a></td><td class="{{ t.outcome }}">{{ t.outcome|replace("_", " ") }}
{%- if t.retaken %} (attempt {{ t.retaken|length + 1 }}){% endif %}</td>
<td>{{ "%.1f"|format(t.duration_s) }}</td><td>{{ t.headline or t.reason or "" }}</td></tr>{% endfor %}
</table>
{% for t in report.tests %}<h2 id="{{ t.name }}">{{ t.name }} <span class="{{ t.outcome }}">{{ t.outcome|replace("_", " ") }}</span></h2>
{% if t.reason %}<p class="{{ t.outcome }}">{{ t.reason }}</p>{% endif %}
{% for plot in t.plots %}<img src="{{ plot }}" alt="timeline of {{ t.name }}">{% endfor %}
{% if t.figures %}<pre>{{ t.figures_text }}</pre>{% endif %}
{% if t.failure %}<h3>failure</h3><pre>{{ t.failure }}</pre>{% endif %}
{% for earlier in t.retaken %}<h3>taken again: attempt {{ loop.index }} was inconclusive</h3><pre>{{ earlier }}</pre>{% endfor %}
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
    path = run_dir / "index.html"
    path.write_text(style.render(TEMPLATE, report=report))
    return path


RUN_TEMPLATE = """{{ head("gate — " ~ report.outcome) }}<body>
<h1>gate: <span class="{{ report.outcome|css }}">{{ report.outcome }}</span></h1>
<p>{{ report.started }} ({{ "%.0f"|format(report.duration_s) }} s) on {{ report.environment.platform }}
({{ report.environment.overlay }}); Redis {{ report.environment.versions.get("redis_server", "?") }},
image {{ report.environment.versions.get("image", "?") }}.</p>
{% if report.allow_skip %}<p class="not-run">--allow-skip: skipped tests did not fail their suites; an exploratory run, not a gating verdict</p>{% endif %}
{% for s in report.suites %}{% if s.outcome == "fail" and not s.failures and s.why %}
<p class="fail"><b>{{ s.suite }}</b>: {{ s.why }}</p>{% endif %}{% endfor %}
{% if report.tightest %}<p>tightest margin: <b>{{ report.tightest.test }}</b>: {{ report.tightest.check }}
{{ report.tightest.figure }} against {{ report.tightest.limit }} ({{ "%+g"|format(report.tightest.margin) }})</p>{% endif %}
{% for d in report.unrun_differences %}<p class="fail">{{ d }}</p>{% endfor %}
{% if report.unrun_checks %}<h2 class="not-run">checks not run</h2>
<p>What this platform cannot do; reference/not-supported.yaml lists what it may leave unrun.</p>
<ul>{% for c in report.unrun_checks %}<li class="{{ 'not-run' if c.allowed else 'fail' }}">{{ c.test }}: {{ c.reason }}
{% if not c.allowed %} (not on the list){% endif %}</li>{% endfor %}</ul>{% endif %}
{% if report.not_run %}<h2 class="not-run">not run</h2>
<ul>{% for s in report.not_run %}<li><b>{{ s.suite }}</b>: {{ s.reason }}</li>{% endfor %}</ul>{% endif %}
<table><tr><th>suite</th><th>outcome</th><th>passed</th><th>failed</th><th>error</th><th>skipped</th><th>not supported</th><th>seconds</th></tr>
{% for s in report.suites %}<tr><td>{% if s.index %}<a href="{{ s.index }}">{{ s.suite }}</a>{% else %}{{ s.suite }}{% endif %}</td>
<td class="{{ s.outcome|css }}">{{ s.outcome }}</td>
<td>{{ s.counts.passed }}</td><td>{{ s.counts.failed }}</td><td>{{ s.counts.error }}</td><td>{{ s.counts.skipped }}</td>
<td>{{ s.counts.get("not_supported", 0) }}</td><td>{{ "%.0f"|format(s.duration_s) }}</td></tr>{% endfor %}
</table>
{% if report.slowest %}<h2>where the time goes</h2>
<p>Suites: set-up / calls / tear-down, seconds.{% if report.lanes and report.lanes|length > 1 %} Lanes side by side:
{% for l in report.lanes %}{{ l.cluster }} ({{ l.suites|join(", ") }}){% if not loop.last %}; {% endif %}{% endfor %}.{% endif %}</p>
<table><tr><th>suite</th><th>set-up</th><th>calls</th><th>tear-down</th></tr>
{% for s in report.suites if s.phases %}<tr><td>{{ s.suite }}</td><td>{{ "%.1f"|format(s.phases.setup_s) }}</td>
<td>{{ "%.1f"|format(s.phases.call_s) }}</td><td>{{ "%.1f"|format(s.phases.teardown_s) }}</td></tr>{% endfor %}</table>
<p>The slowest tests: the call split at the fault's recovery where the test times one.</p>
<table><tr><th>suite</th><th>test</th><th>set-up</th><th>fault → recovery</th><th>rest of the call</th><th>tear-down</th><th>total</th></tr>
{% for t in report.slowest %}<tr><td>{{ t.suite }}</td><td>{{ t.test }}</td><td>{{ "%.1f"|format(t.setup_s) }}</td>
<td>{{ "%.1f"|format(t.fault_to_recovery_s) if t.fault_to_recovery_s is not none else "" }}</td>
<td>{{ "%.1f"|format(t.rest_of_call_s) }}</td><td>{{ "%.1f"|format(t.teardown_s) }}</td><td>{{ "%.1f"|format(t.total_s) }}</td></tr>{% endfor %}
</table>{% endif %}
{% for s in report.suites %}{% for f in s.failures %}<h2 class="fail">{{ s.suite }}: {{ f.test }} ({{ f.outcome }})</h2>
<pre>{{ f.failure }}</pre>{% endfor %}{% endfor %}
</body></html>
"""


def write_run_html(run_dir: Path, report: dict[str, Any]) -> Path:
    path = run_dir / "index.html"
    path.write_text(style.render(RUN_TEMPLATE, report=report))
    return path
