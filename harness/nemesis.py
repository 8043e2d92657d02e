"""The nemesis: the fault catalogue, expressed against the platform contract only.

Every fault picks its target from the live topology, injects, and registers its
heal before returning. `heal_all` undoes whatever is still in place — run it on
success, on failure and on Ctrl-C (the Nemesis is a context manager). A fault the
platform cannot do raises NotSupported naming the platform.
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness.cluster import Shard, node_of, shards, wait_for
from harness.errors import HarnessError, NotSupported
from harness.observe import snapshot, wait_healthy
from harness.platforms.base import Platform


@dataclass
class ActiveFault:
    name: str
    heal: Callable[[], None]
    details: dict[str, Any] = field(default_factory=dict)


class Nemesis:
    def __init__(self, platform: Platform, mark: Callable[..., float] | None = None, seed: int | None = None):
        self.platform = platform
        self.active: list[ActiveFault] = []
        self.log: list[dict[str, Any]] = []  # every fault and heal, with its result
        self._mark = mark
        self.seed = random.randrange(2**32) if seed is None else seed  # reported, so a run can be repeated
        self.random = random.Random(self.seed)

    # --- bookkeeping ---------------------------------------------------------------------
    def mark(self, name: str, **details: Any) -> None:
        self.log.append({"event": name, "at": time.time(), **details})
        if self._mark is not None:
            self._mark(name, **details)

    def _inject(self, name: str, inject: Callable[[], object], heal: Callable[[], None], **details: Any) -> dict[str, Any]:
        """Register the heal first, then inject: a fault that half-happened is healed too."""
        fault = ActiveFault(name, heal, details)
        self.active.append(fault)
        self.mark(f"fault:{name}", **details)
        try:
            inject()
        except BaseException:
            self.heal(name)
            raise
        return {"fault": name, **details}

    def heal(self, name: str | None = None) -> list[str]:
        """Heal the faults called `name` (all when None), newest first; returns what was healed.
        Every heal is tried even when one fails; the first failure is raised afterwards."""
        healed, failure = [], None
        for fault in reversed(list(self.active)):
            if name is not None and fault.name != name:
                continue
            try:
                fault.heal()
                self.mark(f"heal:{fault.name}", **fault.details)
                healed.append(fault.name)
            except Exception as exc:  # keep healing the others
                failure = failure or exc
                self.log.append({"event": f"heal-failed:{fault.name}", "error": str(exc)})
            self.active.remove(fault)
        if failure is not None:
            raise failure
        return healed

    def heal_all(self) -> list[str]:
        return self.heal(None)

    def __enter__(self) -> Nemesis:
        return self

    def __exit__(self, *exc) -> None:
        self.heal_all()

    # --- targets -------------------------------------------------------------------------
    def shard(self, index: int = 0) -> Shard:
        found = shards(snapshot(self.platform))
        if not found:
            raise HarnessError("no shard answers: the cluster is down")
        return found[index % len(found)]

    def _start_if_down(self, pod: str) -> Callable[[], None]:
        def heal() -> None:
            if not self.platform.pod(pod).running:
                self.platform.start(pod)

        return heal

    # --- process faults --------------------------------------------------------------------
    def kill_master(self, shard: int = 0) -> dict[str, Any]:
        pod = self.shard(shard).master
        return self._inject("kill_master", lambda: self.platform.kill(pod), self._start_if_down(pod), pod=pod)

    def kill_replica(self, shard: int = 0) -> dict[str, Any]:
        target = self.shard(shard)
        if not target.replicas:
            raise HarnessError(f"master {target.master} has no replica to kill")
        pod = target.replicas[0]
        return self._inject("kill_replica", lambda: self.platform.kill(pod), self._start_if_down(pod), pod=pod)

    def kill_random_pods(self, times: int = 5, timeout: float = 60.0) -> dict[str, Any]:
        """Redis's failover loop: kill a random pod, wait for the cluster to serve every slot
        again, bring the pod back, wait until healthy; `times` rounds."""
        rounds = []
        for i in range(times):
            pod = self.random.choice([p.name for p in self.platform.pods()])
            was_master = node_of(snapshot(self.platform), pod).is_master
            started = time.monotonic()
            kill = functools.partial(self.platform.kill, pod)
            self._inject("kill_random", kill, self._start_if_down(pod), pod=pod, round=i + 1, master=was_master)
            wait_for(
                lambda pod=pod: _survivors_serve_all(self.platform, pod),
                timeout,
                f"the pods other than {pod} to serve every slot",
            )
            serving = time.monotonic() - started
            self.heal("kill_random")
            healthy, _ = wait_healthy(self.platform, timeout=timeout)
            rounds.append({"pod": pod, "master": was_master, "serving_s": round(serving, 3), "healthy_s": round(healthy, 3)})
        return {"fault": "kill_random", "seed": self.seed, "rounds": rounds}

    def pause_master(self, seconds: float, shard: int = 0) -> dict[str, Any]:
        """Freeze the master (SIGSTOP locally) for `seconds`; it resumes by itself, or on heal."""
        pod = self.shard(shard).master
        pause = functools.partial(self.platform.pause, pod, seconds)
        return self._inject("pause_master", pause, lambda: self.platform.resume(pod), pod=pod, seconds=seconds)

    def restart_all(self, graceful: bool = True) -> dict[str, Any]:
        self.mark("fault:restart_all", graceful=graceful)
        self.platform.restart_all(graceful=graceful)
        self.mark("heal:restart_all")
        return {"fault": "restart_all", "graceful": graceful}

    def rolling_restart(self, timeout: float = 90.0) -> dict[str, Any]:
        """As a StatefulSet rolls: highest ordinal first, one pod at a time, each healthy before the next."""
        steps = []
        for pod in reversed([p.name for p in self.platform.pods()]):
            self.mark("fault:restart", pod=pod)
            started = time.monotonic()
            self.platform.restart(pod, graceful=True)
            wait_healthy(self.platform, timeout=timeout)
            steps.append({"pod": pod, "healthy_s": round(time.monotonic() - started, 3)})
            self.mark("heal:restart", pod=pod)
        return {"fault": "rolling_restart", "steps": steps}

    # --- network faults --------------------------------------------------------------------
    def partition_master(self, shard: int = 0) -> dict[str, Any]:
        """One master alone on its side; its clients still reach it (the documented minority case)."""
        pod = self.shard(shard).master
        address = self.platform.pod(pod).address
        cut = functools.partial(self.platform.partition, [[pod]])
        return self._inject("partition", cut, self.platform.heal, minority=[pod], master=pod, master_address=address)

    def partition_split(self, shard: int = 0) -> dict[str, Any]:
        """A minority of one master and another shard's replica against the majority of the rest."""
        found = shards(snapshot(self.platform))
        target = found[shard % len(found)]
        other = next((s for s in found if s.master != target.master and s.replicas), None)
        minority = [target.master] + ([other.replicas[0]] if other else [])
        address = self.platform.pod(target.master).address
        cut = functools.partial(self.platform.partition, [minority])
        return self._inject("partition", cut, self.platform.heal, minority=minority, master=target.master, master_address=address)

    def slow_network(
        self, shard: int = 0, delay_ms: float = 0, jitter_ms: float = 0, loss_percent: float = 0, rate_kbit: int | None = None
    ) -> dict[str, Any]:
        """Delay (± jitter), loss and a bandwidth limit at the master. Where the platform cannot
        delay (a kernel without tc netem) the rest is still applied and the result says so."""
        pod = self.shard(shard).master
        details: dict[str, Any] = {"pod": pod, "delay_ms": delay_ms, "jitter_ms": jitter_ms, "loss_percent": loss_percent}

        def degrade() -> None:
            try:
                self.platform.degrade_network(pod, delay_ms, jitter_ms, loss_percent, rate_kbit)
            except NotSupported as exc:
                if not delay_ms:
                    raise
                self.platform.degrade_network(pod, 0, 0, loss_percent, rate_kbit)
                details.update(delay_ms=0, jitter_ms=0, delay_not_applied=str(exc))

        result = self._inject("slow_network", degrade, lambda: self.platform.restore_network(pod), rate_kbit=rate_kbit, **details)
        return {**result, **details}

    # --- storage faults --------------------------------------------------------------------
    def fill_volume(self, shard: int = 0) -> dict[str, Any]:
        pod = self.shard(shard).master
        fill = functools.partial(self.platform.fill_volume, pod)
        return self._inject("full_volume", fill, lambda: self.platform.free_volume(pod), pod=pod)


def _survivors_serve_all(platform: Platform, dead: str) -> bool:
    """Every slot has a master other than `dead`, and every answering pod says cluster_state:ok."""
    states = [s for s in snapshot(platform) if s.pod != dead and s.error is None]
    if not states or any(s.cluster_info.get("cluster_state") != "ok" for s in states):
        return False
    dead_address = platform.pod(dead).address
    covered = sum(
        end - start + 1
        for n in states[0].nodes
        if n.is_master and n.ip != dead_address and not ({"fail", "fail?"} & n.flags)
        for start, end in n.slots
    )
    return covered == 16384
