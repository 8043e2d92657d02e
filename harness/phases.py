"""Where a command's time goes: named phases, timed in order, and their summary over several runs."""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Iterator


class Phases:
    """(name, seconds) of each phase, in the order they ran."""

    def __init__(self) -> None:
        self.timed: list[tuple[str, float]] = []

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            self.timed.append((name, time.monotonic() - start))

    def as_dict(self) -> dict[str, float]:
        """Seconds by phase; a phase that ran twice counts both times."""
        out: dict[str, float] = {}
        for name, seconds in self.timed:
            out[name] = out.get(name, 0.0) + seconds
        return out


def summarize(runs: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per phase, over the runs: median, min, max (seconds), in the order the phases first ran."""
    names: list[str] = []
    for run in runs:
        names += [n for n in run if n not in names]
    return {
        name: {
            "median": round(statistics.median(values), 3),
            "min": round(min(values), 3),
            "max": round(max(values), 3),
            "runs": len(values),
        }
        for name in names
        for values in [[run[name] for run in runs if name in run]]
    }
