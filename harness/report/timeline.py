"""Timeline plots of a history: successful and failed operations per 100 ms, with faults marked."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

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


def plot(history: History, path: Path, title: str, probe: History | None = None) -> Path:
    fig, ax = plt.subplots(figsize=(10, 3.2), dpi=90)
    t, ok, bad = buckets(history)
    ax.plot(t, [v / BUCKET for v in ok], color="tab:green", linewidth=1, label="ok ops/s")
    ax.plot(t, [v / BUCKET for v in bad], color="tab:red", linewidth=1, label="fail/info ops/s")
    if probe is not None:
        pt, pok, pbad = buckets(probe)
        ax.plot(pt, [v / BUCKET for v in pok], color="tab:blue", linewidth=0.8, alpha=0.7, label="probe ok/s")
    for event in history.events:
        ax.axvline(event["time"], color="black", linestyle="--", linewidth=0.8)
        ax.annotate(event["name"], (event["time"], ax.get_ylim()[1] * 0.92), fontsize=8, rotation=90, ha="right")
    ax.set_xlabel("seconds")
    ax.set_ylabel("operations / s")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
