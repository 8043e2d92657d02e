"""Alerts an experiment expects, watched and judged: the reference's rules in a live Prometheus
(the platform's Monitoring), polled while the experiment runs; each expected alert must fire within
its stated time of the fault and reach the receiver (Alertmanager's webhook) within it, and, when
asked, be resolved within a stated time of the heal. What the watcher saw is the alert timeline the
report draws beside the workload's."""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass
from typing import Any

POLL_SECONDS = 0.5


@dataclass(frozen=True)
class AlertExpectation:
    alert: str
    fires_within_s: float  # from the fault to firing in Prometheus, and to the receiver
    resolves_within_s: float | None = None  # from the heal to resolved (None: not judged)

    @classmethod
    def parse(cls, raw: Any) -> list[AlertExpectation]:
        """The extension's `alerts:` list; ValueError in one sentence for anything else."""
        if raw is None:
            return []
        if not isinstance(raw, list):
            raise ValueError("alerts must be a list of {alert, fires_within_s[, resolves_within_s]}")
        out = []
        for item in raw:
            if not isinstance(item, dict) or not isinstance(item.get("alert"), str):
                raise ValueError(f"each alert needs a name ('alert'), not {item!r}")
            unknown = sorted(set(item) - {"alert", "fires_within_s", "resolves_within_s"})
            if unknown:
                raise ValueError(f"alert {item['alert']}: unknown key(s) {', '.join(unknown)}")
            within, resolves = item.get("fires_within_s"), item.get("resolves_within_s")
            if not isinstance(within, (int, float)) or within <= 0:
                raise ValueError(f"alert {item['alert']}: fires_within_s must be a positive number of seconds")
            if resolves is not None and (not isinstance(resolves, (int, float)) or resolves <= 0):
                raise ValueError(f"alert {item['alert']}: resolves_within_s must be a positive number of seconds")
            out.append(cls(item["alert"], float(within), None if resolves is None else float(resolves)))
        return out


def wait_until_quiet(stack, names: list[str], timeout: float = 90.0, resolves_within: dict[str, float] | None = None) -> list[str]:
    """Until none of these alerts fires (an earlier fault's, or a role repair's failover); returns
    those still firing when the wait ends. An alert with a resolve limit holds the wait no longer
    than that limit: a leftover resolves within it of its own heal, which was before the wait
    began, so one still firing after it stands on a condition of now (a shard without a replica),
    which no waiting ends."""
    limits = resolves_within or {}
    started = time.monotonic()
    while True:
        loud = sorted({a["labels"]["alertname"] for a in stack.alerts() if a["labels"].get("alertname") in names})
        waited = time.monotonic() - started
        if not [name for name in loud if waited < min(limits.get(name, timeout), timeout)]:
            return loud
        time.sleep(POLL_SECONDS)


def firing_since(alert: dict[str, Any], for_s: float, seen: float) -> float:
    """When Prometheus started firing `alert` (wall time): pending from its activeAt, firing once its
    rule's `for:` has passed — not when a poll happened to see it; never later than `seen`."""
    try:
        active = dt.datetime.fromisoformat(alert["activeAt"]).timestamp()
    except (KeyError, TypeError, ValueError):
        return seen
    return min(active + for_s, seen)


class AlertWatcher(threading.Thread):
    """Polls the stack's alerts; records each alert's firing spans (by alert name and labels), in wall
    time: from when Prometheus began firing it (activeAt + the rule's `for:`), to the first poll that
    no longer sees it."""

    def __init__(self, stack) -> None:
        super().__init__(daemon=True)
        self.stack = stack
        self.halt = threading.Event()
        self.spans: dict[tuple[str, tuple], dict[str, Any]] = {}  # open and closed firing spans
        self.closed: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.durations: dict[str, float] | None = None  # each alert rule's `for:`, from Prometheus

    def poll(self) -> None:
        now = time.time()
        if self.durations is None:
            self.durations = self.stack.alert_durations()
        firing = {}
        for a in self.stack.alerts():
            if a.get("state") == "firing":
                labels = {k: v for k, v in a["labels"].items() if k != "alertname"}
                name = a["labels"]["alertname"]
                firing[(name, tuple(sorted(labels.items())))] = (labels, firing_since(a, self.durations.get(name, 0.0), now))
        for key, (labels, since) in firing.items():
            if key not in self.spans:
                self.spans[key] = {"alert": key[0], "labels": labels, "from": since, "seen": now, "to": None}
        for key in [k for k in self.spans if k not in firing]:
            span = self.spans.pop(key)
            span["to"] = now
            self.closed.append(span)

    def run(self) -> None:
        while not self.halt.wait(POLL_SECONDS):
            try:
                self.poll()
            except Exception as exc:  # noqa: BLE001 - one failed poll is a gap, kept for the report
                self.errors.append(str(exc))

    def timeline(self) -> list[dict[str, Any]]:
        return sorted([*self.closed, *self.spans.values()], key=lambda s: s["from"])

    def finish(self, expected: list[AlertExpectation], healed_at: float | None) -> list[dict[str, Any]]:
        """Watch until every expected resolution is seen or its deadline has passed, then stop."""
        deadline = max((healed_at or time.time()) + (e.resolves_within_s or 0) for e in expected) if expected else 0
        while time.time() < deadline + POLL_SECONDS and any(
            e.resolves_within_s is not None and any(s["alert"] == e.alert for s in self.spans.values()) for e in expected
        ):
            time.sleep(POLL_SECONDS)
        self.halt.set()
        self.join(timeout=5)
        return self.timeline()


def fault_and_heal(nemesis_log: list[dict[str, Any]]) -> tuple[float | None, float | None]:
    """Wall times of the first fault and the last heal in the nemesis's log."""
    faults = [e["at"] for e in nemesis_log if str(e.get("event", "")).startswith("fault:") and "at" in e]
    heals = [e["at"] for e in nemesis_log if str(e.get("event", "")).startswith("heal:") and "at" in e]
    return (min(faults) if faults else None), (max(heals) if heals else None)


def judge_alerts(
    expected: list[AlertExpectation],
    timeline: list[dict[str, Any]],
    deliveries: list[tuple[float, str, str]],
    fault_at: float | None,
    healed_at: float | None,
) -> tuple[list[str], dict[str, dict[str, float | None]]]:
    """(reasons, figures per alert). `deliveries` are (received, alertname, status) from the receiver."""
    reasons: list[str] = []
    figures: dict[str, dict[str, float | None]] = {}
    if not expected:
        return reasons, figures
    if fault_at is None:
        return ["no fault was injected, so no alert could be judged"], figures
    for e in expected:
        # Only what fired after the fault counts: one already firing says nothing about this fault.
        spans = [s for s in timeline if s["alert"] == e.alert and s["from"] >= fault_at]
        fired = min((s["from"] for s in spans), default=None)
        sent = min((t for t, name, status in deliveries if name == e.alert and status == "firing" and t >= fault_at), default=None)
        if sent is not None:  # the watcher polls; a delivery bounds the firing from above
            fired = sent if fired is None else min(fired, sent)
        open_after_heal = [s for s in spans if healed_at is not None and (s["to"] is None or s["to"] > healed_at)]
        resolved = None
        if healed_at is not None and spans:
            resolved = None if any(s["to"] is None for s in open_after_heal) else max((s["to"] for s in spans), default=None)
        figure = {
            "fired_after_s": None if fired is None else round(fired - fault_at, 2),
            "delivered_after_s": None if sent is None else round(sent - fault_at, 2),
            "resolved_after_heal_s": None if resolved is None or healed_at is None else round(max(resolved - healed_at, 0.0), 2),
        }
        figures[e.alert] = figure
        if fired is None:
            reasons.append(f"alert {e.alert} did not fire (expected within {e.fires_within_s:g} s of the fault)")
            continue
        if figure["fired_after_s"] > e.fires_within_s:  # type: ignore[operator]
            reasons.append(f"alert {e.alert} fired {figure['fired_after_s']:g} s after the fault (limit {e.fires_within_s:g} s)")
        elif sent is None:
            reasons.append(f"alert {e.alert} fired but never reached the receiver")
        elif figure["delivered_after_s"] > e.fires_within_s:  # type: ignore[operator]
            reasons.append(
                f"alert {e.alert} reached the receiver {figure['delivered_after_s']:g} s after the fault (limit {e.fires_within_s:g} s)"
            )
        if e.resolves_within_s is not None and healed_at is not None:
            if resolved is None:
                reasons.append(f"alert {e.alert} was still firing {e.resolves_within_s:g} s after the heal")
            elif figure["resolved_after_heal_s"] > e.resolves_within_s:  # type: ignore[operator]
                reasons.append(
                    f"alert {e.alert} resolved {figure['resolved_after_heal_s']:g} s after the heal (limit {e.resolves_within_s:g} s)"
                )
    return reasons, figures
