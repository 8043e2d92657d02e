"""Where a failover's time goes, read from the Redis logs of the pods: detection (the fault until
a node declares the master FAIL), the election delay the replica waits, the election, and the
client's part (the promotion until the probe's first write that lasted). Pure parsing; the
logs and the times come from the caller."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

# "<pid>:<role> 27 Nov 2026 10:44:21.995 <level> <message>" — local time, millisecond precision.
LINE = re.compile(r"^\d+:[A-Z] (\d{1,2} \w{3} \d{4} \d{2}:\d{2}:\d{2})\.(\d{3}) [.\-*#] (.*)$")
EVENTS = {
    "fail": re.compile(r"Marking node (\w+) .*as failing|FAIL message received from \w+ about (\w+)"),
    "election_delayed": re.compile(r"Start of election delayed for (\d+) milliseconds \(rank #(\d+)"),
    "election_started": re.compile(r"Starting a failover election for epoch (\d+)"),
    "election_won": re.compile(r"Failover election won"),
    "state_fail": re.compile(r"Cluster state changed: fail"),
    "state_ok": re.compile(r"Cluster state changed: ok"),
}


@dataclass(frozen=True)
class Event:
    wall: float  # seconds since the epoch
    pod: str
    name: str
    detail: tuple[str, ...]


def parse(pod: str, log: str) -> list[Event]:
    events = []
    for line in log.splitlines():
        match = LINE.match(line)
        if not match:
            continue
        stamp, millis, message = match.groups()
        for name, pattern in EVENTS.items():
            found = pattern.search(message)
            if found:
                wall = time.mktime(time.strptime(stamp, "%d %b %Y %H:%M:%S")) + int(millis) / 1000
                events.append(Event(wall, pod, name, tuple(g for g in found.groups() if g)))
    return events


def breakdown(events: list[Event], fault_wall: float, master_id: str, replica: str, recovered_wall: float | None) -> dict:
    """Seconds of each phase of one failover (None where the logs do not tell)."""
    after = sorted((e for e in events if e.wall >= fault_wall - 0.01), key=lambda e: e.wall)

    def first(name: str, pod: str | None = None, about: str | None = None) -> Event | None:
        return next((e for e in after if e.name == name and pod in (None, e.pod) and (about is None or about in e.detail)), None)

    failed = first("fail", about=master_id)
    delayed = first("election_delayed", replica)
    started = first("election_started", replica)
    won = first("election_won", replica)
    span = lambda a, b: None if a is None or b is None else round(b - a, 3)  # noqa: E731
    cluster_down = [(e.pod, round(e.wall - fault_wall, 3)) for e in after if e.name == "state_fail" and e.pod != replica]
    return {
        "detection_s": span(fault_wall, failed.wall if failed else None),
        "detected_by": failed.pod if failed else None,
        "election_delay_s": span(failed.wall if failed else None, started.wall if started else None),
        "delay_announced_ms": int(delayed.detail[0]) if delayed else None,
        "rank": int(delayed.detail[1]) if delayed else None,
        "election_s": span(started.wall if started else None, won.wall if won else None),
        "client_s": span(won.wall if won else None, recovered_wall),
        "cluster_state_fail_at_s": cluster_down,
    }
