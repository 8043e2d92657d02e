"""Platforms stand the reference up and fault it: `local` (processes and namespaces) and `kubernetes`."""

from __future__ import annotations

from harness.errors import HarnessError
from harness.platforms.base import Platform

PLATFORMS = ("local", "kubernetes")


def get_platform(name: str, **options) -> Platform:
    if name == "local":
        from harness.platforms.local.platform import LocalPlatform

        return LocalPlatform(**options)
    if name == "kubernetes":
        from harness.platforms.kubernetes import KubernetesPlatform

        return KubernetesPlatform(**options)
    raise HarnessError(f"unknown platform '{name}': choose one of {', '.join(PLATFORMS)}")
