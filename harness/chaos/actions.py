"""chaostoolkit actions (provider type "python", module harness.chaos.actions).

Every function takes the experiment's `configuration` (which platform, which
cluster) and returns a JSON-able dict that lands in the journal."""

from __future__ import annotations

import time
from typing import Any

from harness.chaos.session import session
from harness.chaos.verdict import loss_window, recoveries
from harness.checkers import isolated_master_figures
from harness.errors import HarnessError
from harness.observe import wait_healthy
from harness.recording import check, final_read, start_recording

Configuration = dict[str, Any]
HOLD_POLL_SECONDS = 0.2


def start_workload(
    configuration: Configuration | None = None,
    shard: int = 0,
    waited_workers: int | None = None,
    unwaited_workers: int | None = None,
    rate: float = 70.0,
    max_seconds: float = 240.0,
) -> dict[str, Any]:
    """Writers (WAITed and not; by default one of each per shard) and a probe on `shard`'s master,
    recorded in the background until stop_workload (or max_seconds)."""
    s = session(configuration)
    if s.recording is not None:
        return {"started": False, "reason": "a workload is already recording"}
    s.target_shard = shard
    master = s.nemesis.shard(shard).master
    s.recording = start_recording(
        s.platform,
        probe_master_address=s.platform.pod(master).address,
        waited_workers=waited_workers,
        unwaited_workers=unwaited_workers,
        rate=rate,
        max_seconds=max_seconds,
    )
    return {"started": True, "probe_master": master}


def stop_workload(configuration: Configuration | None = None) -> dict[str, Any]:
    """Stop recording, read every key back and run the checkers; the figures go to the journal."""
    s = session(configuration)
    if s.recording is None:
        return {"stopped": False}
    s.recording.stop()
    history = s.recording.history
    faults = [e for e in history.events if e["name"].startswith("fault:")]
    present = final_read(s.recording)
    figures = check(s.recording, faults[0]["time"] if faults else None, present)
    if len(faults) > 1:
        # Several faults in a row: each one's recovery, the slowest is the experiment's.
        each = recoveries(s.recording.probe_history, [e["time"] for e in faults])
        figures.recoveries_s = [None if r is None else round(r, 3) for r in each]
        figures.recovery_s = None if None in each else round(max(r for r in each if r is not None), 3)
    power_loss = next((e for e in faults if e["name"] == "fault:lose_power"), None)
    if power_loss is not None:
        figures.loss_window_s = loss_window(history, power_loss["time"], present)
    partition = next((e for e in faults if e["name"] == "fault:partition"), None)
    if partition is not None:
        figures.isolated_master = isolated_master_figures(history, partition["time"], partition["master_address"], present)
    s.figures = figures
    return {"stopped": True, **figures.headline()}


def kill_master(configuration: Configuration | None = None) -> dict[str, Any]:
    s = session(configuration)
    return s.nemesis.kill_master(shard=s.target_shard)


def kill_replica(configuration: Configuration | None = None) -> dict[str, Any]:
    s = session(configuration)
    return s.nemesis.kill_replica(shard=s.target_shard)


def kill_random_pods(configuration: Configuration | None = None, times: int = 5) -> dict[str, Any]:
    return session(configuration).nemesis.kill_random_pods(times=times)


def pause_master(configuration: Configuration | None = None, seconds: float = 8.0) -> dict[str, Any]:
    s = session(configuration)
    return s.nemesis.pause_master(seconds=seconds, shard=s.target_shard)


def partition_master(configuration: Configuration | None = None) -> dict[str, Any]:
    s = session(configuration)
    return s.nemesis.partition_master(shard=s.target_shard)


def partition_split(configuration: Configuration | None = None) -> dict[str, Any]:
    s = session(configuration)
    return s.nemesis.partition_split(shard=s.target_shard)


def restart_all(configuration: Configuration | None = None, graceful: bool = True) -> dict[str, Any]:
    return session(configuration).nemesis.restart_all(graceful=graceful)


def rolling_restart(configuration: Configuration | None = None) -> dict[str, Any]:
    return session(configuration).nemesis.rolling_restart()


def slow_network(
    configuration: Configuration | None = None,
    delay_ms: float = 0,
    jitter_ms: float = 0,
    loss_percent: float = 0,
    rate_kbit: int = 0,
) -> dict[str, Any]:
    s = session(configuration)
    return s.nemesis.slow_network(
        shard=s.target_shard, delay_ms=delay_ms, jitter_ms=jitter_ms, loss_percent=loss_percent, rate_kbit=rate_kbit or None
    )


def fill_volume(configuration: Configuration | None = None) -> dict[str, Any]:
    s = session(configuration)
    return s.nemesis.fill_volume(shard=s.target_shard)


def lose_power(configuration: Configuration | None = None) -> dict[str, Any]:
    """A power loss under the probed shard's master: its volume loses what was not fsynced."""
    s = session(configuration)
    return s.nemesis.lose_power(shard=s.target_shard)


def fail_node(configuration: Configuration | None = None) -> dict[str, Any]:
    """Lose the node that runs the probed shard's master."""
    s = session(configuration)
    return s.nemesis.fail_node(shard=s.target_shard)


def drain_node(configuration: Configuration | None = None, timeout: float = 300.0) -> dict[str, Any]:
    """Drain the node that runs the probed shard's master."""
    s = session(configuration)
    return s.nemesis.drain_node(shard=s.target_shard, timeout=timeout)


def hold(
    configuration: Configuration | None = None, at_least: float = 0.0, at_most: float = 0.0, until_fired: list[str] | None = None
) -> dict[str, Any]:
    """Keep the last fault in place `at_least` seconds from its start and, where the runner watches
    the experiment's alerts, until each of `until_fired` has begun firing after it, `at_most` seconds
    from its start in all: an alert about the fault's aftermath (a promoted master without a replica)
    must fire before the heal ends that aftermath, however late a loaded machine fails over. Where
    nothing watches the alerts, the fault is held `at_most` seconds."""
    s = session(configuration)
    fault = next((e for e in reversed(s.nemesis.log) if str(e.get("event", "")).startswith("fault:") and "at" in e), None)
    start = fault["at"] if fault is not None else time.time()
    wanted = set(until_fired or [])
    watched = s.fired_since is not None and wanted
    if not 0 <= at_least <= at_most:
        raise HarnessError(f"hold: at_least ({at_least:g} s) must lie between 0 and at_most ({at_most:g} s)")
    while time.time() < start + at_most:
        if watched and time.time() >= start + at_least and wanted <= s.fired_since(start):
            break
        time.sleep(HOLD_POLL_SECONDS)
    fired = sorted(s.fired_since(start) & wanted) if watched else []
    held = time.time() - start
    s.mark("held", seconds=round(held, 3), fired=fired)
    return {"held_s": round(held, 3), "fired": fired, "watched": bool(watched)}


def heal(configuration: Configuration | None = None, fault: str | None = None) -> dict[str, Any]:
    """Undo the named fault (every fault still in place when none is named)."""
    return {"healed": session(configuration).nemesis.heal(fault)}


def wait_until_healthy(configuration: Configuration | None = None, timeout: float = 90.0) -> dict[str, Any]:
    s = session(configuration)
    waited, _ = wait_healthy(s.platform, timeout=timeout)
    s.mark("healthy")
    return {"healthy_after_s": round(waited, 3)}


def restart_pod(configuration: Configuration | None = None, fault_pod_of: str = "full_volume") -> dict[str, Any]:
    """Restart the pod an earlier fault hit (it must come back from its own data)."""
    s = session(configuration)
    entry = next((e for e in reversed(s.nemesis.log) if e["event"] == f"fault:{fault_pod_of}" and "pod" in e), None)
    if entry is None:
        return {"restarted": None}
    s.nemesis.restart_pod(entry["pod"], graceful=True)
    return {"restarted": entry["pod"]}


def rollback(configuration: Configuration | None = None) -> dict[str, Any]:
    """The rollback of every experiment: heal everything, stop the workload."""
    s = session(configuration)
    healed = s.nemesis.heal_all()
    running = s.recording is not None and s.recording.stopped_at is None
    # The checkers' figures land in the journal here, for `chaos run` without the runner.
    return {"healed": healed, **({"workload": stop_workload(configuration)} if running else {})}
