"""The one factory: options → platform. Everything that needs a platform (the CLI, the
pytest session, chaos configurations, benchmark load processes) builds it here, by
name and options, and never reaches into one platform's own module."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from harness.errors import HarnessError
from harness.platforms.base import Platform


@dataclass(frozen=True)
class Entry:
    module: str
    cls: str
    options: tuple[str, ...]  # every option the platform takes
    summary: str


PLATFORMS: dict[str, Entry] = {
    "local": Entry(
        "harness.platforms.local.platform",
        "LocalPlatform",
        ("overlay", "cluster", "state_dir", "network", "subnet", "startup_timeout", "restart_delay"),
        "redis-server processes on this machine, one network namespace per pod",
    ),
    "kubernetes": Entry(
        "harness.platforms.kubernetes.platform",
        "KubernetesPlatform",
        ("overlay", "context", "kubeconfig"),
        "any cluster in a kubeconfig (--kubeconfig, --context)",
    ),
    "kind": Entry(
        "harness.platforms.kubernetes.platform",
        "KindPlatform",
        ("overlay", "kind_bin", "keep_cluster"),
        "a kind cluster made from reference/kind/cluster.yaml (--kind-bin, --keep-cluster)",
    ),
}


def create(name: str, **options: Any) -> Platform:
    """Build a platform; None-valued options mean "the platform's default". Unknown
    platforms and options are refused in one sentence."""
    entry = PLATFORMS.get(name)
    if entry is None:
        raise HarnessError(f"unknown platform '{name}': choose one of {', '.join(PLATFORMS)}")
    given = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(set(given) - set(entry.options))
    if unknown:
        raise HarnessError(f"the {name} platform takes no option '{unknown[0]}': it takes {', '.join(entry.options)}")
    return getattr(importlib.import_module(entry.module), entry.cls)(**given)


def from_config(config: dict[str, Any], **overrides: Any) -> Platform:
    """From a mapping such as a chaos experiment's `configuration` or a tool's defaults: `platform`
    names it (default local); the keys that platform takes are its options, other keys (another
    platform's defaults) are not its business."""
    name = str(overrides.pop("platform", None) or config.get("platform") or "local")
    entry = PLATFORMS.get(name)
    if entry is None:
        raise HarnessError(f"unknown platform '{name}': choose one of {', '.join(PLATFORMS)}")
    options = {k: config[k] for k in entry.options if config.get(k) not in (None, "")}
    return create(name, **{**options, **overrides})


def again(platform: Platform, **overrides: Any) -> Platform:
    """The same platform built anew (in this process or another), with some options changed."""
    return create(platform.name, **{**platform.options(), **overrides})
