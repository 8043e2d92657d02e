"""Timeline plots of a history: successful and failed operations per 100 ms, optionally p99
latency per second, with faults and heals marked."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from harness.checkers import p99  # noqa: E402
from harness.history import OK, History  # noqa: E402

BUCKET = 0.1


def buckets(history: History, bucket: float = BUCKET) -> tuple[list[float], list[int], list[int]]:
    """(bucket start times, ok counts, non-ok counts) by completion time."""
    done = [op for op in history.completed() if op.complete is not None]
    if not done:
        return [], [], []
    end = max(op.complete for op in done)  # type: ignore[type-var]
    n = int(end / bucket) + 1
    ok, bad = [0] * n, [0] * n
    for op in done:
        i = int(op.complete / bucket)  # type: ignore[operator]
        if op.outcome == OK:
            ok[i] += 1
        else:
            bad[i] += 1
    return [i * bucket for i in range(n)], ok, bad


def p99_per_second(history: History) -> tuple[list[float], list[float]]:
    """(second, p99 latency in ms of the operations that succeeded in that second)."""
    by_second: dict[int, list[float]] = {}
    for op in history.completed():
        if op.outcome == OK and op.complete is not None:
            by_second.setdefault(int(op.complete), []).append(op.complete - op.invoke)
    seconds = sorted(by_second)
    return [float(sec) for sec in seconds], [p99(by_second[sec]) * 1000 for sec in seconds]


def _mark_events(ax, history: History, label: bool) -> None:
    for event in history.events:
        colour = "tab:red" if event["name"].startswith("fault") else "tab:green" if event["name"].startswith("heal") else "black"
        ax.axvline(event["time"], color=colour, linestyle="--", linewidth=0.8)
        if label:
            ax.annotate(event["name"], (event["time"], ax.get_ylim()[1] * 0.92), fontsize=8, rotation=90, ha="right")


def plot(
    history: History,
    path: Path,
    title: str,
    probe: History | None = None,
    latency: bool = False,
    alerts: list[dict] | None = None,
    log_events: list[dict] | None = None,
) -> Path:
    """Operations per second (ok and not) in 100 ms buckets, faults and heals marked;
    with `latency`, a second panel of p99 latency per second; with `alerts` (firing spans, seconds
    on the history's clock) and `log_events` (the Redis logs' failover story, `t` on that clock),
    a panel of them below: one lane per alert, one per kind of log line."""
    rows = sorted({a["alert"] for a in alerts or []}) + [f"log: {n}" for n in sorted({e["event"] for e in log_events or []})]
    if latency:
        ratios = [3, 2, *([max(1, len(rows)) * 0.4] if rows else [])]
        fig, axes = plt.subplots(len(ratios), 1, figsize=(10, 5.2 + 0.3 * len(rows)), dpi=90, sharex=True,
                                 gridspec_kw={"height_ratios": ratios})  # fmt: skip
        ax, lax = axes[0], axes[1]
        if rows:
            _alert_lanes(axes[2], alerts or [], log_events or [], rows, history)
    else:
        fig, ax = plt.subplots(figsize=(10, 3.2), dpi=90)
    t, ok, bad = buckets(history)
    ax.plot(t, [v / BUCKET for v in ok], color="tab:green", linewidth=1, label="ok ops/s")
    ax.plot(t, [v / BUCKET for v in bad], color="tab:red", linewidth=1, label="fail/info ops/s")
    if probe is not None:
        pt, pok, pbad = buckets(probe)
        ax.plot(pt, [v / BUCKET for v in pok], color="tab:blue", linewidth=0.8, alpha=0.7, label="probe ok/s")
    _mark_events(ax, history, label=True)
    ax.set_ylabel("operations / s")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="lower left", fontsize=8)
    if latency:
        seconds, p99_ms = p99_per_second(history)
        lax.step(seconds, p99_ms, where="post", color="tab:purple", linewidth=1, label="write p99 (ms), per second")
        lax.set_yscale("log")
        lax.set_ylabel("p99 ms")
        lax.legend(loc="upper left", fontsize=8)
        _mark_events(lax, history, label=False)
        (axes[-1] if rows else lax).set_xlabel("seconds")
    else:
        ax.set_xlabel("seconds")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _alert_lanes(ax, alerts: list[dict], log_events: list[dict], rows: list[str], history: History) -> None:
    """One lane per alert name, its firing spans (an open span runs to the end of the history); one per
    kind of Redis log line, a tick where a pod logged it."""
    end = max((op.complete or op.invoke for op in history.ops), default=0.0)
    for i, name in enumerate(rows):
        if name.startswith("log: "):
            times = [e["t"] for e in log_events if e["event"] == name.removeprefix("log: ")]
            ax.plot(times, [i] * len(times), "|", color="tab:gray", markersize=9)
            continue
        spans = [(a["from"], (a["to"] if a["to"] is not None else end) - a["from"]) for a in alerts if a["alert"] == name]
        ax.broken_barh(spans, (i - 0.35, 0.7), color="tab:orange")
    ax.set_yticks(range(len(rows)), rows, fontsize=7)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    _mark_events(ax, history, label=False)
