"""Open-loop timing: a fixed arrival schedule per user, latency from each request's intended
start (no coordinated omission), and how far behind the schedule the generator fell.

A capacity plan steps the target rate: rate(step) = start × factor^step, `step_seconds` each.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.errors import HarnessError

FLUSH_SECONDS = 1.0  # each load process reports an interval line at this cadence
LATE_SECONDS = 0.001  # a batch sent later than this after its intended start counts as late


class RateError(HarnessError):
    """A rate or capacity plan that cannot be run."""


@dataclass(frozen=True)
class CapacityPlan:
    start_rate: float
    factor: float = 1.5
    step_seconds: float = 4.0
    max_steps: int = 10
    slo_p99_ms: float = 5.0

    def __post_init__(self):
        if not self.start_rate > 0:
            raise RateError(f"capacity search start rate must be a positive number of ops/s, not {self.start_rate!r}")
        if not self.factor > 1:
            raise RateError(f"capacity search factor must be greater than 1, not {self.factor!r}")
        if not self.step_seconds >= 2:
            raise RateError(f"capacity search steps must last at least 2 s, not {self.step_seconds!r}")
        if not 1 <= self.max_steps <= 100:
            raise RateError(f"capacity search needs 1 to 100 steps, not {self.max_steps!r}")
        if not self.slo_p99_ms > 0:
            raise RateError(f"the p99 objective must be a positive number of milliseconds, not {self.slo_p99_ms!r}")

    def rate(self, step: int) -> float:
        return self.start_rate * self.factor ** min(step, self.max_steps - 1)

    def step_at(self, elapsed: float) -> int:
        return max(0, int(elapsed // self.step_seconds))

    @property
    def duration(self) -> float:
        return self.step_seconds * self.max_steps

    @classmethod
    def parse(cls, text: str, slo_p99_ms: float) -> CapacityPlan:
        """'START[:FACTOR[:STEP_SECONDS[:MAX_STEPS]]]', e.g. '2000:1.5:4:8'."""
        try:
            parts = [float(p) for p in text.split(":")]
        except ValueError:
            raise RateError(f"capacity plan '{text}' must look like START[:FACTOR[:STEP_SECONDS[:MAX_STEPS]]]") from None
        if not 1 <= len(parts) <= 4:
            raise RateError(f"capacity plan '{text}' must look like START[:FACTOR[:STEP_SECONDS[:MAX_STEPS]]]")
        names = ("start_rate", "factor", "step_seconds", "max_steps")
        values = dict(zip(names, parts, strict=False))
        if "max_steps" in values:
            values["max_steps"] = int(values["max_steps"])
        return cls(slo_p99_ms=slo_p99_ms, **values)


class OpenLoopSchedule:
    """Intended start times of one user's batches at `rate` batches per second (changeable)."""

    def __init__(self, start: float, rate: float):
        if not rate > 0:
            raise RateError(f"rate must be a positive number of operations per second, not {rate!r}")
        self.interval = 1.0 / rate
        self.next = start
        self.late = 0
        self.sent = 0
        self.max_lag = 0.0

    def set_rate(self, rate: float) -> None:
        self.interval = 1.0 / rate

    def wait(self, now: float) -> float:
        """Seconds to sleep before the next batch is due (0 when it is due or late)."""
        return max(0.0, self.next - now)

    def start(self, now: float) -> float:
        """The batch starts at `now`: returns its intended start and books any lag."""
        intended = self.next
        lag = now - intended
        if lag > LATE_SECONDS:
            self.late += 1
        self.max_lag = max(self.max_lag, lag)
        self.sent += 1
        self.next = intended + self.interval
        return intended

    @staticmethod
    def latency(intended: float, completed: float) -> float:
        """Coordinated-omission-free latency: from when the request should have started."""
        return completed - intended


def next_boundary(now: float, anchor: float, every: float = FLUSH_SECONDS) -> float:
    """The first anchor + k × every strictly after now (k may be negative: the anchor can lie ahead)."""
    return anchor + (math.floor((now - anchor) / every) + 1) * every
