"""Operation histories: every operation a workload sends, with when it was
invoked, when it completed and how — the evidence checkers judge.

Outcomes, as Jepsen names them:
  ok    the operation surely took effect (the server acknowledged it)
  fail  the operation surely did not take effect (the server refused it)
  info  unknown: a timeout or a dropped connection; it may or may not have applied
Times are seconds on the monotonic clock, relative to the history's start.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

OK, FAIL, INFO = "ok", "fail", "info"


@dataclass
class Op:
    process: int  # the worker that sent it
    f: str  # "write", "read", "incr", "probe"
    key: str
    value: str | int | None
    invoke: float
    complete: float | None = None
    outcome: str | None = None  # ok / fail / info; None while in flight
    error: str | None = None
    waited: bool = False  # sent with WAIT
    acks: int | None = None  # replicas that acknowledged a WAITed write
    node: str | None = None  # address of the node that answered (or was last tried)
    shard: int | None = None  # the shard a per-shard writer aimed at (its index at the start)

    @property
    def latency(self) -> float | None:
        return None if self.complete is None else self.complete - self.invoke


@dataclass
class History:
    """Append-only and thread-safe; `t0` anchors relative times to the monotonic clock."""

    t0: float = field(default_factory=time.monotonic)
    wall_t0: float = field(default_factory=time.time)
    ops: list[Op] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)  # faults and heals: {"time", "name", ...}
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def now(self) -> float:
        return time.monotonic() - self.t0

    def invoke(self, process: int, f: str, key: str, value=None, waited: bool = False, shard: int | None = None) -> Op:
        op = Op(process=process, f=f, key=key, value=value, invoke=self.now(), waited=waited, shard=shard)
        with self._lock:
            self.ops.append(op)
        return op

    def complete(self, op: Op, outcome: str, error: str | None = None, acks: int | None = None, node: str | None = None) -> Op:
        op.complete, op.outcome, op.error, op.acks, op.node = self.now(), outcome, error, acks, node
        return op

    def mark(self, name: str, **details) -> float:
        """Record a fault or heal at this instant; returns its time."""
        t = self.now()
        with self._lock:
            self.events.append({"time": t, "name": name, **details})
        return t

    def completed(self) -> Iterator[Op]:
        return (op for op in list(self.ops) if op.outcome is not None)

    def write_jsonl(self, path: Path) -> None:
        with open(path, "w") as f:
            f.write(json.dumps({"t0_wall": self.wall_t0, "events": self.events}) + "\n")
            for op in list(self.ops):
                f.write(json.dumps(asdict(op)) + "\n")

    @classmethod
    def read_jsonl(cls, path: Path) -> History:
        lines = path.read_text().splitlines()
        header = json.loads(lines[0])
        h = cls(t0=0.0, wall_t0=header["t0_wall"], events=header["events"])
        h.ops = [Op(**json.loads(line)) for line in lines[1:]]
        return h

    @classmethod
    def of(cls, ops: Iterable[Op], events: list[dict] | None = None) -> History:
        """A history from given operations (for checkers' tests)."""
        return cls(t0=0.0, ops=list(ops), events=list(events or []))
