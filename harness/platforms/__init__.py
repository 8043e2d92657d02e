"""Platforms stand the reference up and fault it: `local` (processes and namespaces) and
`kubernetes`. Build one with `registry.create` (or `from_config`); the contract is in base.py."""

from harness.platforms.registry import PLATFORMS, create, from_config

__all__ = ["PLATFORMS", "create", "from_config"]
