"""What the providers of one experiment share: the platform, the recording workload and
the nemesis. chaostoolkit calls providers as plain functions, so they meet here.

The runner registers the platform it stood up; `chaos run` alone builds one from the
experiment's configuration (a local cluster already up, or the kubernetes context)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.errors import HarnessError
from harness.judgement import Figures
from harness.nemesis import Nemesis
from harness.platforms import registry
from harness.platforms.base import Platform
from harness.recording import Recording

PLATFORM_KEYS = ("platform", "cluster", "overlay", "context")


@dataclass
class Session:
    platform: Platform
    nemesis: Nemesis
    recording: Recording | None = None
    target_shard: int = 0
    figures: Figures | None = None  # what stop_workload judged
    # Where the runner watches the experiment's alerts: the names of those that began firing at or
    # after a wall time (None: nothing watches them, as under a plain `chaos run`).
    fired_since: Callable[[float], set[str]] | None = None

    def mark(self, name: str, **details: Any) -> float | None:
        return self.recording.mark(name, **details) if self.recording is not None else None


_lock = threading.Lock()
_platforms: dict[tuple, Platform] = {}
_sessions: dict[tuple, Session] = {}


def _key(configuration: dict[str, Any] | None) -> tuple:
    configuration = configuration or {}
    return tuple(str(configuration.get(k, "")) for k in PLATFORM_KEYS)


def register(platform: Platform, configuration: dict[str, Any]) -> None:
    """Use this live platform for experiments whose configuration names it."""
    with _lock:
        _platforms[_key(configuration)] = platform
        _sessions.pop(_key(configuration), None)


def session(configuration: dict[str, Any] | None) -> Session:
    key = _key(configuration)
    with _lock:
        if key not in _sessions:
            conf = dict(configuration or {})
            platform = _platforms.get(key)
            if platform is None:
                platform = registry.from_config(conf)
                if not platform.reaches_pods():  # `chaos run` from outside a cluster
                    raise HarnessError(
                        f"experiments on {platform.name} run inside the cluster, where the pods' addresses are "
                        f"reachable: `redis-harness chaos --platform {platform.name} EXPERIMENT`"
                    )
            seed = conf.get("seed")  # kill_random_pods: the same seed kills the same pods
            s = Session(platform, Nemesis(platform, seed=None if seed is None else int(seed)))
            s.nemesis.attach(s.mark)
            _sessions[key] = s
        return _sessions[key]


def finish(configuration: dict[str, Any] | None) -> Session | None:
    """Forget the experiment's session (the next experiment starts afresh); returns it."""
    with _lock:
        return _sessions.pop(_key(configuration), None)
