"""The kubelet's startup and liveness probes for the local platform's Redis containers, as declared:
the probe's command, `initialDelaySeconds`, `periodSeconds`, `timeoutSeconds` and
`failureThreshold` (https://kubernetes.io/docs/concepts/configuration/liveness-readiness-startup-probes/;
pkg/kubelet/prober/worker.go). A startup probe gates liveness until it succeeds; `failureThreshold`
failures in a row of either (a timeout is a failure) and the kubelet kills the container, gracefully,
and restarts it as its restart policy and crash back-off say. Readiness is not on this clock: the
platform asks the readiness probe itself whenever it waits for pods to be ready.

`ProbeClock` is the pure part (which probe is due, what a result means); `Prober` runs it on a
thread of its own over the platform's running pods.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Probe:
    command: tuple[str, ...]
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    failure_threshold: int = 3

    @classmethod
    def of(cls, spec: dict[str, Any] | None) -> Probe | None:
        """From a container's probe (Kubernetes' defaults where a field is absent); None for none.
        Only exec probes are modelled; another handler is refused by the caller's field list."""
        if not spec or "exec" not in spec:
            return None
        return cls(
            tuple(spec["exec"]["command"]),
            float(spec.get("initialDelaySeconds", 0)),
            float(spec.get("periodSeconds", 10)),
            float(spec.get("timeoutSeconds", 1)),
            int(spec.get("failureThreshold", 3)),
        )


@dataclass
class ProbeClock:
    """One container's startup and liveness probes from the moment it started."""

    started_at: float
    startup: Probe | None
    liveness: Probe | None
    started: bool = False
    failures: int = 0
    next_at: float | None = field(default=None)

    def __post_init__(self) -> None:
        self.started = self.startup is None
        current = self.current()
        self.next_at = None if current is None else self.started_at + current.initial_delay

    def current(self) -> Probe | None:
        return self.liveness if self.started else self.startup

    def due(self, now: float) -> Probe | None:
        probe = self.current()
        return probe if probe is not None and self.next_at is not None and now >= self.next_at else None

    def result(self, passed: bool, now: float) -> bool:
        """Record the due probe's result; True when the kubelet would now kill the container."""
        probe = self.current()
        assert probe is not None
        self.next_at = now + probe.period
        if passed:
            self.failures = 0
            if not self.started:  # the startup probe passed: liveness from now on, after its delay
                self.started = True
                self.next_at = None if self.liveness is None else now + self.liveness.initial_delay
            return False
        self.failures += 1
        return self.failures >= probe.failure_threshold


class Prober:
    """Runs each running pod's due probes on a thread of its own; `on_failure(pod, why)` when the
    kubelet would kill one. `pods()` gives (pod, pid, container spec) of the pods to probe now."""

    def __init__(
        self,
        pods: Callable[[], list[tuple[str, int, dict[str, Any]]]],
        run: Callable[[str, Probe], tuple[bool, str]],
        on_failure: Callable[[str, str], None],
        tick: float = 0.5,
    ):
        self.pods, self.run, self.on_failure, self.tick = pods, run, on_failure, tick
        self.clocks: dict[str, tuple[int, ProbeClock]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="kubelet-prober", daemon=True)

    def start(self) -> Prober:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(30)

    def _loop(self) -> None:
        while not self._stop.wait(self.tick):
            try:
                self.step(time.monotonic())
            except Exception:  # a pod that went away mid-probe: the next tick sees the new state
                continue

    def step(self, now: float) -> None:
        running = {name: (pid, container) for name, pid, container in self.pods()}
        for name in list(self.clocks):
            if name not in running or self.clocks[name][0] != running[name][0]:
                del self.clocks[name]  # gone, or a new container: its probes start over
        for name, (pid, container) in running.items():
            if name not in self.clocks:
                clock = ProbeClock(now, Probe.of(container.get("startupProbe")), Probe.of(container.get("livenessProbe")))
                self.clocks[name] = (pid, clock)
            clock = self.clocks[name][1]
            probe = clock.due(now)
            if probe is None or self._stop.is_set():
                continue
            kind = "Liveness" if clock.started else "Startup"
            passed, said = self.run(name, probe)
            if clock.result(passed, time.monotonic()):
                del self.clocks[name]
                self.on_failure(name, f"{kind} probe failed {probe.failure_threshold} times in a row: {said or 'no output'}")
