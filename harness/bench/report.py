"""A benchmark's run directory: report.json, the merged histogram, CSVs, plots and index.html."""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from harness.bench import histograms  # noqa: E402
from harness.report import style  # noqa: E402


def timeline(lines: list[dict]) -> list[dict]:
    """Per second of wall time: operations/s, errors, client CPU and latency percentiles over all
    processes. Every interval counts, the final one too (it is the run's last stretch, however
    short), so a run that measured anything has rows. An interval belongs to the second its middle
    falls in (processes flush on whole seconds of one clock, so their intervals line up); a
    second's throughput is the sum of each process's operations over its own measured time in it."""
    if not lines:
        return []
    t0 = math.floor(min(x["start"] for x in lines))
    seconds: dict[int, list[dict]] = defaultdict(list)
    for x in lines:
        seconds[int((x["start"] + x["end"]) / 2 - t0)].append(x)
    rows = []
    for second in sorted(seconds):
        group = seconds[second]
        per_process: dict[str, list[dict]] = defaultdict(list)
        for x in group:
            per_process[str(x["process"])].append(x)
        merged = histograms.percentiles_ms(histograms.merge(x["hist"] for x in group))
        rows.append(
            {
                "second": second,
                "ops": sum(x["ops"] for x in group),
                "throughput": sum(
                    sum(x["ops"] for x in xs) / max(sum(x["end"] - x["start"] for x in xs), 1e-3) for xs in per_process.values()
                ),
                "errors": sum(x["errors"] for x in group),
                "client_cpu_max": max(x["cpu"] for x in group),
                **{k: merged[k] for k in ("p50", "p90", "p99", "p99.9", "max")},
            }
        )
    return rows


def write_csv(path: Path, rows: list[dict]) -> None:
    if not rows:
        path.write_text("")
        return
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[k for k in rows[0] if not isinstance(rows[0][k], dict)], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def plot_timeline(rows: list[dict], path: Path, title: str) -> Path:
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 5.5), dpi=90, sharex=True)
    t = [r["second"] for r in rows]
    top.plot(t, [r["throughput"] for r in rows], color="tab:green", linewidth=1.2)
    top.set_ylabel("operations / s")
    top.set_title(title, fontsize=10)
    for key, colour in (("p50", "tab:blue"), ("p90", "tab:cyan"), ("p99", "tab:orange"), ("p99.9", "tab:red")):
        bottom.plot(t, [r[key] for r in rows], color=colour, linewidth=1, label=key)
    bottom.set_yscale("log")
    bottom.set_ylabel("latency, ms")
    bottom.set_xlabel("seconds")
    bottom.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_capacity(points: list[dict], knee: dict | None, slo_p99_ms: float, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(8, 4), dpi=90)
    x = [p["throughput"] for p in points]
    for key, colour in (("p50", "tab:blue"), ("p99", "tab:orange"), ("p99.9", "tab:red")):
        ax.plot(x, [p[key] for p in points], marker="o", color=colour, linewidth=1, label=key)
    ax.axhline(slo_p99_ms, color="black", linestyle=":", linewidth=0.8, label=f"p99 objective {slo_p99_ms:g} ms")
    if knee:
        ax.axvline(knee["throughput"], color="tab:purple", linestyle="--", linewidth=1)
        ax.annotate(f"knee {knee['throughput']:.0f} ops/s", (knee["throughput"], ax.get_ylim()[1] * 0.6), rotation=90, fontsize=8)
    ax.set_yscale("log")
    ax.set_xlabel("achieved operations / s")
    ax.set_ylabel("latency, ms (from intended start)")
    ax.set_title("latency vs throughput (capacity search)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


TEMPLATE = """{{ head(r.kind) }}<body>
<h1>{{ r.kind }}: <span class="{{ r.outcome }}">{{ r.outcome }}</span></h1>
<p>{{ r.started }} ({{ "%.0f"|format(r.duration_s) }} s) on {{ r.environment.platform }} ({{ r.environment.cpus }} CPUs);
Redis {{ r.environment.versions.get("redis_server", "?") }}. Workload <b>{{ r.workload.name }}</b>: {{ r.workload.description }};
pipeline {{ r.workload.pipeline }}, {{ r.workload.users }} users × {{ r.processes }} processes… see report.json.</p>
<p>Latency: per operation, the latency of its batch (send → last reply); open loop and capacity search count from each
batch's intended start (no coordinated omission).</p>
<h2>Phases</h2>
<table class="numbers"><tr><th>phase</th><th>mode</th><th>ops/s</th><th>errors</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th>
<th>client CPU (peak/core)</th><th>late batches</th></tr>
{% for p in r.phases %}<tr><td>{{ p.name }}</td><td>{{ p.mode }}</td><td>{{ "%.0f"|format(p.throughput) }}</td><td>{{ p.errors }}</td>
{% for k in ["p50", "p90", "p99", "p99.9", "max"] %}<td>{{ "%.3f"|format(p.latency_ms[k]) }} ms</td>{% endfor %}
<td>{{ "%.0f"|format(100 * p.client_cpu_peak) }} %</td><td>{{ "%.1f"|format(100 * p.late_fraction) }} %</td></tr>{% endfor %}
</table>
{% for img in r.plots.timelines %}<img src="{{ img }}" alt="throughput and latency over time">{% endfor %}
{% if r.capacity %}<h2>Capacity search</h2>
<p>Capacity at p99 ≤ {{ r.capacity.plan.slo_p99_ms }} ms: <b>{{ "%.0f"|format(r.capacity.capacity_at_slo) }} ops/s</b>;
knee: {% if r.capacity.knee %}<b>{{ "%.0f"|format(r.capacity.knee.throughput) }} ops/s</b>
(p99 {{ "%.2f"|format(r.capacity.knee.p99) }} ms){% else %}none{% endif %}.
Stopped: {{ r.capacity.stop_reason }}. Limited by: <b>{{ r.capacity.saturation.limited_by }}</b> — {{ r.capacity.saturation.why }}.</p>
<img src="{{ r.plots.capacity }}" alt="latency vs throughput">
<table class="numbers">
<tr><th>step</th><th>offered</th><th>achieved</th><th>p50</th><th>p99</th><th>p99.9</th><th>errors</th><th>client CPU</th><th>machine CPU</th></tr>
{% for p in r.capacity.points %}<tr><td>{{ p.step }}</td><td>{{ "%.0f"|format(p.target_rate) }}</td><td>{{ "%.0f"|format(p.throughput) }}</td>
<td>{{ "%.3f"|format(p.p50) }}</td><td>{{ "%.3f"|format(p.p99) }}</td><td>{{ "%.3f"|format(p["p99.9"]) }}</td><td>{{ p.errors }}</td>
<td>{{ "%.0f"|format(100 * p.client_cpu_max) }} %</td><td>{{ "%.0f"|format(100 * p.machine_cpu) }} %</td></tr>{% endfor %}
</table>{% endif %}
{% if r.baseline %}<h2>Baseline (same target, same run)</h2>
<table class="numbers">
<tr><th>tool</th><th>connections</th><th>threads</th><th>pipeline</th><th>keys (prefilled)</th><th>GET hits</th>
<th>ops/s</th><th>p50</th><th>p99</th><th>harness / tool ops/s</th><th>harness / tool p50</th></tr>
{% for name, b in r.baseline.tools.items() %}<tr><td>{{ name }}</td><td>{{ b.clients }}</td><td>{{ b.threads }}</td><td>{{ b.pipeline }}</td>
<td>{{ b.key_space }} ({{ b.prefilled }})</td>
<td>{% if b.get_hit_ratio is not none %}{{ "%.1f"|format(100 * b.get_hit_ratio) }} %{% endif %}</td><td>{{ "%.0f"|format(b.rps) }}</td>
<td>{{ "%.3f"|format(b.p50_ms) }} ms</td><td>{{ "%.3f"|format(b.p99_ms) }} ms</td>
<td>{{ "%.2f"|format(r.baseline.ratios[name].throughput) }}</td><td>{{ "%.2f"|format(r.baseline.ratios[name].p50) }}</td></tr>{% endfor %}
</table><p>{{ r.baseline.note }}</p>{% endif %}
{% if r.error_samples %}<h2 class="fail">Errors</h2><pre>{{ r.error_samples }}</pre>{% endif %}
</body></html>
"""


def write_html(run_dir: Path, report: dict[str, Any]) -> Path:
    path = run_dir / "index.html"
    path.write_text(style.render(TEMPLATE, r=report))
    return path
