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
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from harness.cluster import Shard, node_of, node_timeout_s, shards, survivors_serve_all, wait_for
from harness.errors import HarnessError, NotSupported
from harness.observe import snapshot, wait_healthy
from harness.platforms.base import (
    Bootstrapping,
    DrainingNodes,
    FailingNodes,
    FillingVolumes,
    HoldingDown,
    Killing,
    LosingPower,
    Partitioning,
    Pausing,
    Platform,
    RestartingAll,
    ShapingNetwork,
    require,
)
from harness.topology import check_invariants


@dataclass
class ActiveFault:
    name: str
    heal: Callable[[], object]  # may return what the platform saw healing it
    details: dict[str, Any] = field(default_factory=dict)



# Two Redis rules (cluster.c) hold a shard's next failover back after one:
#  - voters: masters refuse to vote for a replica of master M within 2 × cluster-node-timeout of
#    their last vote about M;
#  - candidates: a replica that ran an election starts no other before twice its election timeout
#    (itself max(2 × cluster-node-timeout, 2 s)) has passed: 4 × node-timeout here. A graceful
#    failover to it keeps its master's writes paused until then (up to the 5 s a manual failover
#    may take): a drain's handover that costs 20 ms cost 0.4 s, 19.6 s after the same replica's
#    last election.
# The harness's own repair (restore_placement) fails roles over: it opens a voters' window on the
# pods of each shard it touched and a candidates' window on each pod whose role it saw move
# (elected, or demoted after an election). Whatever fails a master over next waits out the windows
# of that master and of its replicas first: every fault of the Nemesis, the chaos runner (its faults
# run in chaostoolkit's process, which knows no window of this one), and a test's own CLUSTER
# FAILOVER or graceful restart.
_vote_window_ends: weakref.WeakKeyDictionary[Any, dict[str, float]] = weakref.WeakKeyDictionary()
_election_window_ends: weakref.WeakKeyDictionary[Any, dict[str, float]] = weakref.WeakKeyDictionary()


def election_retry_s(node_timeout: float) -> float:
    """How long after its election a replica can start another (Redis's auth_retry_time)."""
    return 2 * max(2 * node_timeout, 2.0)


def open_vote_windows(platform, pods: Iterable[str], elected: Iterable[str] = ()) -> None:
    """A repair's last vote was cast now, about the shards of these pods; `elected`: the pods among
    them whose role moved (each ran an election, or was demoted after one)."""
    now, node_timeout = time.monotonic(), node_timeout_s(platform)
    _vote_window_ends.setdefault(platform, {}).update(dict.fromkeys(pods, now + 2 * node_timeout))
    _election_window_ends.setdefault(platform, {}).update(dict.fromkeys(elected, now + election_retry_s(node_timeout)))


def _windowed(platform) -> set[str]:
    """The pods on which a window was ever opened on this platform (passed or not)."""
    return {*_vote_window_ends.get(platform, {}), *_election_window_ends.get(platform, {})}


def window_end(platform, pod: str) -> float:
    """When the last window open on this pod ends (0.0: none was opened)."""
    return max(_vote_window_ends.get(platform, {}).get(pod, 0.0), _election_window_ends.get(platform, {}).get(pod, 0.0))


def wait_out_vote_window(platform, pods: Iterable[str] | None = None) -> float:
    """Sleep until the windows of these pods (all, when None) on this platform have passed — for a
    failover of a master: the master and its replicas; returns the seconds slept."""
    chosen = _windowed(platform) if pods is None else _windowed(platform) & set(pods)
    remaining = max((window_end(platform, p) for p in chosen), default=0.0) - time.monotonic()
    if remaining > 0:
        time.sleep(remaining)
    return max(remaining, 0.0)


def _roles(states) -> dict[str, tuple[bool, str | None]]:
    """Pod → (master?, whose replica) as each pod sees itself."""
    return {s.pod: (me.is_master, me.master_id) for s in states if (me := s.myself()) is not None}


class Nemesis:
    def __init__(self, platform: Platform, mark: Callable[..., float] | None = None, seed: int | None = None):
        self.platform = platform
        self.active: list[ActiveFault] = []
        self.log: list[dict[str, Any]] = []  # every fault and heal, with its result
        self._mark = mark
        self.seed = random.randrange(2**32) if seed is None else seed  # reported, so a run can be repeated
        self.random = random.Random(self.seed)

    # --- bookkeeping ---------------------------------------------------------------------
    def attach(self, mark: Callable[..., float | None]) -> None:
        """Mark every fault and heal in a recording's timeline too."""
        self._mark = mark

    def mark(self, name: str, **details: Any) -> float | None:
        """Log the event; returns its time on the attached recording's clock (None without one)."""
        self.log.append({"event": name, "at": time.time(), **details})
        return self._mark(name, **details) if self._mark is not None else None

    def _inject(
        self, name: str, inject: Callable[[], object], heal: Callable[[], object], hits: Iterable[str] | None = None, **details: Any
    ) -> dict[str, Any]:
        """Register the heal first, then inject: a fault that half-happened is healed too. `hits`:
        the pods the fault may fail over (None: any), whose vote windows it waits out first."""
        self._past_vote_windows(hits)
        fault = ActiveFault(name, heal, details)
        self.active.append(fault)
        at = self.mark(f"fault:{name}", **details)
        try:
            seen = inject()
        except BaseException:
            self.heal(name)
            raise
        if isinstance(seen, dict) and seen:  # what the platform saw doing it (a Redis killed twice, say)
            self.mark(f"applied:{name}", **{**details, **seen})
            return {"fault": name, "at": at, **details, "applied": seen}
        return {"fault": name, "at": at, **details}

    def heal(self, name: str | None = None) -> list[str]:
        """Heal the faults called `name` (all when None), newest first; returns what was healed.
        Every heal is tried even when one fails; the first failure is raised afterwards."""
        healed, failure = [], None
        for fault in reversed(list(self.active)):
            if name is not None and fault.name != name:
                continue
            try:
                seen = fault.heal()
                self.mark(f"heal:{fault.name}", **{**fault.details, **(seen if isinstance(seen, dict) else {})})
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

    def _past_vote_windows(self, hits: Iterable[str] | None) -> None:
        """Before a fault that may fail over these pods (None: any): their windows, waited out."""
        waited = wait_out_vote_window(self.platform, None if hits is None else self._failing_over(hits))
        if waited:
            self.mark("vote window passed", waited_s=round(waited, 3))

    # --- targets -------------------------------------------------------------------------
    def free_master(self) -> str:
        """A master whose shard may fail over at once: the first shard's, unless a window is still
        open on its master or a replica; then the master whose shard's windows end first."""
        now = time.monotonic()
        found = shards(snapshot(self.platform))
        return min(found, key=lambda s: max(max(window_end(self.platform, p) for p in (s.master, *s.replicas)) - now, 0.0)).master

    def quiet_first(self, nodes: Iterable[str]) -> list[str]:
        """These nodes in the order their loss may fail over soonest: by when the last window on the
        shards whose masters they run ends (a node losing no master first); ties keep the order given.
        A test that loses every node in turn waits out no window it could have let pass meanwhile."""
        node_of = {p.name: p.node for p in self.platform.pods()}
        found = shards(snapshot(self.platform))

        def ready_at(node: str) -> float:
            return max((window_end(self.platform, p) for s in found if node_of.get(s.master) == node for p in (s.master, *s.replicas)), default=0.0)

        return sorted(nodes, key=ready_at)

    def _failing_over(self, pods: Iterable[str]) -> list[str]:
        """The pods whose windows hold back a fault on these: each master among them (only a
        master's loss fails its shard over) and its replicas, the candidates."""
        pods, now = set(pods), time.monotonic()
        if not any(window_end(self.platform, p) > now for p in _windowed(self.platform)):
            return []  # no window open: no need to ask
        return [p for s in shards(snapshot(self.platform)) if s.master in pods for p in (s.master, *s.replicas)]

    def shard(self, index: int = 0) -> Shard:
        found = shards(snapshot(self.platform))
        if not found:
            raise HarnessError("no shard answers: the cluster is down")
        return found[index % len(found)]

    # --- process faults --------------------------------------------------------------------
    def _hold(self, name: str, pod: str, **details: Any) -> dict[str, Any]:
        """SIGKILL the pod and keep it down until healed (pod-failure)."""
        platform = require(self.platform, HoldingDown)
        return self._inject(name, lambda: platform.hold_down(pod), lambda: platform.release(pod), [pod], pod=pod, **details)

    def kill_master(self, shard: int = 0) -> dict[str, Any]:
        """The shard's master killed (SIGKILL) and held down until healed: its replica must take over."""
        return self._hold("kill_master", self.shard(shard).master)

    def kill_replica(self, shard: int = 0) -> dict[str, Any]:
        target = self.shard(shard)
        if not target.replicas:
            raise HarnessError(f"master {target.master} has no replica to kill")
        return self._hold("kill_replica", target.replicas[0])

    def kill_shard(self, shard: int = 0) -> dict[str, Any]:
        """A master and every replica of it killed and held down together: its slots have no one left."""
        platform = require(self.platform, HoldingDown)
        target = self.shard(shard)
        pods = [target.master, *target.replicas]

        def release() -> None:
            for pod in pods:
                platform.release(pod)

        def hold() -> None:
            for pod in pods:
                platform.hold_down(pod)

        return self._inject("kill_shard", hold, release, pods, pods=pods)

    def crash_pod(self, pod: str) -> dict[str, Any]:
        """SIGKILL and nothing else: the platform restarts the container itself, as kubelet does."""
        platform = require(self.platform, Killing)
        self._past_vote_windows([pod])
        at = self.mark("fault:crash", pod=pod)
        platform.kill(pod)
        return {"fault": "crash", "at": at, "pod": pod}

    def lose_power(self, pod: str | None = None, shard: int = 0) -> dict[str, Any]:
        """A power loss under one pod (by default `shard`'s master): SIGKILL, and its volume loses
        whatever was not fsynced; the platform restarts it as after a kill. Nothing to heal."""
        platform = require(self.platform, LosingPower)
        pod = pod or self.shard(shard).master
        self._past_vote_windows([pod])
        at = self.mark("fault:lose_power", pod=pod)
        lost = platform.lose_power(pod)
        self.log.append({"event": "lost", "pod": pod, **lost})
        return {"fault": "lose_power", "at": at, "pod": pod, "volume_lost": lost}

    def kill_random_pods(self, times: int = 5, timeout: float = 60.0) -> dict[str, Any]:
        """Redis's failover loop: kill a random pod and hold it down, wait for the cluster to serve
        every slot again, bring the pod back, wait until healthy; `times` rounds."""
        rounds = []
        for i in range(times):
            pod = self.random.choice([p.name for p in self.platform.pods()])
            was_master = node_of(snapshot(self.platform), pod).is_master
            started = time.monotonic()
            self._hold("kill_random", pod, round=i + 1, master=was_master)
            wait_for(
                lambda pod=pod: survivors_serve_all(self.platform, [pod]),
                timeout,
                f"the pods other than {pod} to serve every slot",
            )
            serving = time.monotonic() - started
            self.heal("kill_random")
            healthy, _ = wait_healthy(self.platform, timeout=timeout)
            rounds.append({"pod": pod, "master": was_master, "serving_s": round(serving, 3), "healthy_s": round(healthy, 3)})
        return {"fault": "kill_random", "seed": self.seed, "rounds": rounds}

    def pause_master(self, seconds: float | None = None, shard: int = 0) -> dict[str, Any]:
        """Freeze the master (SIGSTOP) for `seconds` (until healed when None); it resumes by itself, or on heal."""
        platform = require(self.platform, Pausing)
        pod = self.shard(shard).master
        pause = functools.partial(platform.pause, pod, seconds)
        return self._inject("pause_master", pause, lambda: platform.resume(pod), [pod], pod=pod, seconds=seconds)

    def restart_pod(self, pod: str, graceful: bool = True) -> dict[str, Any]:
        """Delete the pod (graceful or grace 0); its replacement answers at a new address."""
        self._past_vote_windows([pod])
        at = self.mark("fault:restart", pod=pod, graceful=graceful)
        self.platform.restart(pod, graceful=graceful)
        self.mark("heal:restart", pod=pod)
        return {"fault": "restart", "at": at, "pod": pod, "graceful": graceful}

    def restart_all(self, graceful: bool = True) -> dict[str, Any]:
        platform = require(self.platform, RestartingAll)
        self._past_vote_windows(None)
        self.mark("fault:restart_all", graceful=graceful)
        platform.restart_all(graceful=graceful)
        self.mark("heal:restart_all")
        return {"fault": "restart_all", "graceful": graceful}

    def rolling_restart(self, timeout: float = 90.0) -> dict[str, Any]:
        """As a StatefulSet rolls: highest ordinal first, one pod at a time, each healthy before the next."""
        steps = []
        for pod in reversed([p.name for p in self.platform.pods()]):
            started = time.monotonic()
            self.restart_pod(pod, graceful=True)
            wait_healthy(self.platform, timeout=timeout)
            steps.append({"pod": pod, "healthy_s": round(time.monotonic() - started, 3)})
        return {"fault": "rolling_restart", "steps": steps}

    # --- node faults ---------------------------------------------------------------------------
    def node_of_master(self, shard: int = 0) -> str:
        return self.platform.pod(self.shard(shard).master).node

    def fail_node(self, node: str | None = None, shard: int = 0) -> dict[str, Any]:
        """Lose a node (by default the one running `shard`'s master): its pods die at once and stay
        down until healed, when the node returns."""
        platform = require(self.platform, FailingNodes)
        node = node or self.node_of_master(shard)
        pods = sorted(p.name for p in self.platform.pods() if p.node == node)

        def recover() -> None:
            platform.recover_node(node)
            self.restore_placement(strict=False, lazy=True)

        return self._inject("node_failure", lambda: platform.fail_node(node), recover, pods, node=node, pods=pods)

    def drain_node(self, node: str | None = None, shard: int = 0, timeout: float = 300.0) -> dict[str, Any]:
        """`kubectl drain`: cordon, evict the node's pods one at a time as the PodDisruptionBudget
        allows, masters first: the order that asks most of the cluster (a master whose replica shares
        the node hands over to it, and that one must hand over again in turn). The heal uncordons it
        (pods waiting for it, their volumes bound to it, start there again) and restores placement
        (restore_placement). Returns the fault with `moved`, `waiting` and `kept` (DrainingNodes.drain)."""
        platform = require(self.platform, DrainingNodes)
        node = node or self.node_of_master(shard)
        masters = {s.master for s in shards(snapshot(self.platform))}
        drained: dict[str, dict[str, str]] = {}

        def drain() -> None:
            drained.update(platform.drain(node, timeout=timeout, first=masters).as_dict())

        def uncordon() -> None:
            platform.uncordon(node)
            self.restore_placement(strict=False, lazy=True)

        on_node = [p.name for p in self.platform.pods() if p.node == node]
        result = self._inject("drain", drain, uncordon, on_node, node=node)
        return {**result, "pods": on_node, **drained}

    def restore_placement(self, timeout: float = 90.0, strict: bool = True, lazy: bool = False) -> bool:
        """What a platform team does once a node is back: spread the pods over the nodes again (a
        descheduler's eviction of pods beyond the topology spread, replicas first), then, when roles
        sit wrong (a master sharing a node, a replica on its master's node), re-run the reference's
        bootstrap Job, which repairs them. Waits until every invariant holds — placement included
        when strict — and, when roles moved, until the failovers' vote window has passed. Returns
        whether anything moved; a well-placed cluster is left alone. With lazy (a heal), the vote
        window is not slept here but by whatever fails a master over next."""
        _, states = wait_healthy(self.platform, timeout=timeout)
        before, evicted = _roles(states), set()
        if isinstance(self.platform, DrainingNodes):
            while True:
                wait_healthy(self.platform, timeout=timeout)
                schedulable = [n.name for n in self.platform.nodes() if n.schedulable and n.ready]
                pods = self.platform.pods()
                count = {n: sum(p.node == n for p in pods) for n in schedulable}
                fullest = max(count, key=lambda n: count[n])
                if count[fullest] - min(count.values()) <= 1:
                    break
                roles = {s.pod: s.myself() for s in snapshot(self.platform)}
                on_it = sorted((p.name for p in pods if p.node == fullest), key=lambda p: not (roles[p] and roles[p].is_replica))
                self.mark("evict", pod=on_it[0], reason="topology spread")
                went = self.platform.evict(on_it[0])  # its preStop hands a master over: a vote
                evicted.add(on_it[0])
                if went in (fullest, None):  # its volume binds it there: no eviction can spread them
                    self.mark("spread impossible", pod=on_it[0], node=fullest)
                    break
        _, states = wait_healthy(self.platform, timeout=timeout)
        masters, replicas = self.platform.layout()
        misplaced = any(v.code == "co-located" for v in check_invariants(states, masters, replicas))
        repaired = False
        if misplaced and isinstance(self.platform, Bootstrapping):
            self.mark("bootstrap", reason="repair roles")
            repaired = "nothing to do" not in self.platform.run_bootstrap()
        if evicted or repaired:  # the last vote was cast by now
            _, states = wait_healthy(self.platform, timeout=timeout)
            moved = {pod for pod, role in _roles(states).items() if role != before.get(pod)}
            touched = evicted | moved
            open_vote_windows(
                self.platform, {p for s in shards(states) if touched & {s.master, *s.replicas} for p in (s.master, *s.replicas)}, elected=moved
            )
        wait_healthy(self.platform, timeout=timeout, placement=strict)
        if not lazy:
            wait_out_vote_window(self.platform)
        return bool(evicted or repaired)

    # --- network faults --------------------------------------------------------------------
    def partition_master(self, shard: int = 0) -> dict[str, Any]:
        """One master alone on its side; its clients still reach it (the documented minority case)."""
        pod = self.shard(shard).master
        address = self.platform.pod(pod).address
        platform = require(self.platform, Partitioning)
        cut = functools.partial(platform.partition, [[pod]])
        return self._inject("partition", cut, platform.heal, [pod], minority=[pod], master=pod, master_address=address)

    def partition_split(self, shard: int = 0) -> dict[str, Any]:
        """A minority of one master and another shard's replica against the majority of the rest."""
        found = shards(snapshot(self.platform))
        target = found[shard % len(found)]
        other = next((s for s in found if s.master != target.master and s.replicas), None)
        minority = [target.master] + ([other.replicas[0]] if other else [])
        address = self.platform.pod(target.master).address
        platform = require(self.platform, Partitioning)
        cut = functools.partial(platform.partition, [minority])
        return self._inject(
            "partition", cut, platform.heal, minority, minority=minority, master=target.master, master_address=address
        )

    def slow_network(
        self, shard: int = 0, delay_ms: float = 0, jitter_ms: float = 0, loss_percent: float = 0, rate_kbit: int | None = None
    ) -> dict[str, Any]:
        """Delay (± jitter), loss and a bandwidth limit at the master. Where the platform cannot
        delay (a kernel without tc netem) the rest is still applied and the result says so."""
        platform = require(self.platform, ShapingNetwork)
        pod = self.shard(shard).master
        details: dict[str, Any] = {"pod": pod, "delay_ms": delay_ms, "jitter_ms": jitter_ms, "loss_percent": loss_percent}

        def degrade() -> None:
            try:
                platform.degrade_network(pod, delay_ms, jitter_ms, loss_percent, rate_kbit)
            except NotSupported as exc:
                if not delay_ms:
                    raise
                platform.degrade_network(pod, 0, 0, loss_percent, rate_kbit)
                details.update(delay_ms=0, jitter_ms=0, delay_not_applied=str(exc))

        result = self._inject("slow_network", degrade, lambda: platform.restore_network(pod), [pod], rate_kbit=rate_kbit, **details)
        return {**result, **details}

    # --- storage faults --------------------------------------------------------------------
    def fill_volume(self, shard: int = 0) -> dict[str, Any]:
        platform = require(self.platform, FillingVolumes)
        pod = self.shard(shard).master
        fill = functools.partial(platform.fill_volume, pod)
        return self._inject("full_volume", fill, lambda: platform.free_volume(pod), [pod], pod=pod)

